import type { Request, Response } from 'express'
import { ERRORS, Metadata, Upload } from '@tus/utils'
import { newUploadId } from '../../stores/uploadId.js'
import { metadataProblem } from '../limits/metadata.js'
import { requestContext } from '../requestContext.js'
import { lockForBodyWrite } from '../tus/handlers/bodyWrite.js'
import { parseMetadata } from '../tus/metadataHeader.js'
import { uploadUrl } from '../tus/uploadUrl.js'
import { appendContent } from './body.js'
import type { IetfDeps } from './deps.js'
import { sendUploadResumptionSupported } from './informational.js'
import { uploadLimit } from './limits.js'
import { IetfError } from './reply.js'
import { completesUpload, indicatedLength } from './requestFields.js'
import { completenessHeader, type Dialect } from './versions.js'

// Content types that label the transfer, not the representation.
const TRANSFER_TYPES = new Set(['application/partial-upload', 'application/offset+octet-stream'])

/** What a creation request asks for, read before anything is created. */
export interface Creation {
  completes: boolean
  length?: number
  metadata: Record<string, string>
}

/**
 * Reads a creation request. The upload's metadata is what tus-js-client sends (Upload-Metadata) plus the
 * representation's own fields: `filetype` from Content-Type and `filename` from Content-Disposition.
 * The request's Upload-Metadata and Upload-Length are then set to what was read, so that the steps that
 * follow (token limits, hooks) see an IETF creation in the tus words they know.
 */
export function readCreation(deps: IetfDeps, dialect: Dialect, req: Request): Creation {
  const completes = completesUpload(dialect, req)
  const length = indicatedLength(req, completes, 0)
  const { config } = deps
  if (config.MAX_SIZE > 0 && length !== undefined && length > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
  if (length === undefined && !deps.store.hasExtension('creation-defer-length')) {
    throw new IetfError(400, 'This store needs the length: send Upload-Length, or Upload-Complete: ?1 with a Content-Length')
  }

  const metadata: Record<string, string> = Object.create(null)
  const header = req.get('upload-metadata')
  if (header) {
    const parsed = parseMetadata(header)
    if (!parsed) throw new IetfError(400, 'Invalid Upload-Metadata')
    for (const [key, value] of Object.entries(parsed)) if (value !== null) metadata[key] = value
  }
  const type = req.get('content-type')?.split(';')[0].trim().toLowerCase()
  if (type && !TRANSFER_TYPES.has(type)) metadata.filetype ??= type
  const filename = filenameOf(req.get('content-disposition'))
  if (filename) metadata.filename ??= filename

  const stringified = Metadata.stringify(metadata)
  if (Buffer.byteLength(stringified) > config.MAX_METADATA_SIZE) throw new IetfError(400, `Upload metadata is larger than ${config.MAX_METADATA_SIZE} bytes`)
  // The same key and value limits as a tus creation's Upload-Metadata.
  const problem = stringified ? metadataProblem(stringified, config) : undefined
  if (problem) throw new IetfError(400, problem)
  if (stringified) req.headers['upload-metadata'] = stringified
  else delete req.headers['upload-metadata']
  if (length !== undefined) req.headers['upload-length'] = String(length)
  return { completes, length, metadata }
}

/** The file name of a Content-Disposition: `filename*` (RFC 8187, UTF-8) before `filename`. */
function filenameOf(disposition: string | undefined): string | undefined {
  if (!disposition) return undefined
  const extended = /;\s*filename\*\s*=\s*UTF-8''([^;\s]+)/i.exec(disposition)
  if (extended) {
    try {
      return decodeURIComponent(extended[1])
    } catch {
      // fall back to the plain parameter
    }
  }
  const plain = /;\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(disposition)
  return plain ? (plain[1]?.replace(/\\(.)/g, '$1') ?? plain[2]) : undefined
}

/**
 * Upload creation: the upload is made as a tus creation makes it (our id, the creation lifecycle),
 * announced at once with a 104 carrying its Location, then the request's content is appended under the
 * upload's lock. The final answer is 201 with the Location, the offset reached and whether it is complete.
 */
export async function createUpload(deps: IetfDeps, dialect: Dialect, creation: Creation, req: Request, res: Response): Promise<void> {
  const { config, lifecycle, store, locker, logger } = deps
  const upload = new Upload({ id: newUploadId(), size: creation.length, offset: 0, metadata: creation.metadata })
  const context = requestContext.current()
  if (context) context.uploadId = upload.id
  await lifecycle.prepare(req, res, upload) // pre-create may refuse, or change the id
  await store.create(upload)
  const location = uploadUrl(config, req, upload.id)
  lifecycle.created(req, upload)

  const lock = await lockForBodyWrite(config, locker, req, upload.id, logger)
  let finished: boolean
  try {
    const limit = uploadLimit(config, dialect, store.getExpiration(), upload)
    sendUploadResumptionSupported(res, { Location: location, 'Upload-Draft-Interop-Version': String(dialect.version), ...limit })
    finished = await appendContent(deps, req, res, lock, upload, creation.completes)
  } finally {
    await lock.unlock()
  }
  // pre-finish and post-finish hooks, as for a tus creation that carries the whole upload (the hook's answer is not applied here).
  if (finished) await lifecycle.finishing(req, upload)

  res.status(201).set({
    ...deps.reply.common(req, dialect),
    Location: location,
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, finished),
    ...uploadLimit(config, dialect, store.getExpiration(), upload),
  })
  if (!req.complete) res.set('Connection', 'close')
  res.end()
  if (finished) lifecycle.finished(upload)
}
