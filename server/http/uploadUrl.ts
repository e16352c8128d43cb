import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { isUploadId } from '../../stores/uploadId.js'
import type { Config } from '../config.js'

/** The upload id at the end of a request's URL, if it is one of ours. */
export function uploadIdOf(req: { url: string }): string | undefined {
  const path = new URL(req.url, 'http://x').pathname
  const id = path.slice(path.lastIndexOf('/') + 1)
  return isUploadId(id) ? id : undefined
}

const header = (req: IncomingMessage, name: string) => {
  const value = req.headers[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * An upload's absolute URL as the client reached us: the Host header, or with TRUST_PROXY what the proxy
 * forwarded (Forwarded, then X-Forwarded-Host/-Proto; only http and https count as a protocol), as
 * `@tus/server` builds its Location.
 */
export function uploadUrl(config: Pick<Config, 'TUS_PATH' | 'TRUST_PROXY'>, req: IncomingMessage, id: string): string {
  let host: string | undefined
  let proto: string | undefined
  if (config.TRUST_PROXY) {
    const forwarded = header(req, 'forwarded')
    host = forwarded ? /host="?([^";]+)/.exec(forwarded)?.[1] : undefined
    proto = forwarded ? /proto=(https?)/.exec(forwarded)?.[1] : undefined
    const forwardedProto = header(req, 'x-forwarded-proto')
    if (forwardedProto === 'http' || forwardedProto === 'https') proto ??= forwardedProto
    host ??= header(req, 'x-forwarded-host')
  }
  const path = config.TUS_PATH === '/' ? '' : config.TUS_PATH
  proto ??= (req.socket as TLSSocket).encrypted ? 'https' : 'http'
  return `${proto}://${host ?? header(req, 'host')}${path}/${id}`
}
