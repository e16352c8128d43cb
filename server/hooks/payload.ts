import type { IncomingMessage } from 'node:http'
import path from 'node:path'
import type { Upload } from '@tus/utils'
import { isFinalUpload, isPartialUpload, partialIdsOf, visibleMetadata } from '../core/records.js'
import type { AccessMode, HookHTTPRequest, HookRequest, HookType, HookUpload } from './types.js'

/** `upload-metadata` as Go's http.CanonicalHeaderKey writes it: `Upload-Metadata`. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_m, dash: string, letter: string) => dash + letter.toUpperCase())
}

/** tusd's Storage map for where our stores keep an upload's bytes. */
function storageOf(storage: Upload['storage']): Record<string, string> | null {
  if (!storage) return null
  switch (storage.type) {
    case 'file': {
      const file = path.resolve(storage.path)
      const { infoPath } = storage as { infoPath?: string }
      return { Type: 'filestore', Path: file, InfoPath: infoPath ? path.resolve(infoPath) : `${file}.json` }
    }
    case 's3':
      return { Type: 's3store', Bucket: storage.bucket ?? '', Key: storage.path }
    case 'gcs':
      return { Type: 'gcsstore', Bucket: storage.bucket ?? '', Key: storage.path }
    case 'AzureBlobStore':
      return { Type: 'azurestore', Container: storage.bucket ?? '', Blob: storage.path }
    default:
      return null
  }
}

/** The upload as a hook sees it. `created` is false in pre-create, where it has no id or storage yet. */
export function hookUpload(upload: Upload, created = true): HookUpload {
  const metadata = Object.fromEntries(Object.entries(visibleMetadata(upload.metadata) ?? {}).map(([key, value]) => [key, value ?? '']))
  return {
    ID: created ? upload.id : '',
    Size: upload.size ?? 0,
    SizeIsDeferred: upload.size === undefined,
    Offset: upload.offset,
    MetaData: metadata,
    IsPartial: isPartialUpload(upload),
    IsFinal: isFinalUpload(upload),
    PartialUploads: partialIdsOf(upload) ?? null,
    Storage: created ? storageOf(upload.storage) : null,
  }
}

/** The client's request as a hook sees it: the socket's address, every header (as tusd sends them, Host included). */
export function hookHTTPRequest(req: IncomingMessage & { originalUrl?: string }): HookHTTPRequest {
  const { remoteAddress = '', remotePort = 0 } = req.socket
  const header: Record<string, string[]> = {}
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values) header[canonicalHeaderName(name)] = values
  }
  return {
    Method: req.method ?? '',
    URI: req.originalUrl ?? req.url ?? '',
    RemoteAddr: remoteAddress.includes(':') ? `[${remoteAddress}]:${remotePort}` : `${remoteAddress}:${remotePort}`,
    Header: header,
  }
}

export function hookRequest(type: HookType, upload: HookUpload, req: IncomingMessage, access?: AccessMode): HookRequest {
  const event: HookRequest['Event'] = { Upload: upload, HTTPRequest: hookHTTPRequest(req) }
  if (access) event.Access = { Mode: access }
  return { Type: type, Event: event }
}
