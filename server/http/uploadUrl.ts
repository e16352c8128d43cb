import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Config } from '../config.js'
import { trustsHop } from '../proxyTrust.js'

/** The last value of a header a proxy may have appended to (the nearest proxy's word). */
const lastValue = (req: IncomingMessage, name: string) => {
  const value = req.headers[name]
  return typeof value === 'string' ? value.split(',').pop()?.trim() : undefined
}

/** `host[:port]` as a URL's authority, normalised; undefined for anything else (a path, credentials, spaces). */
function authorityOf(host: string | undefined): string | undefined {
  if (!host) return undefined
  try {
    const url = new URL(`http://${host}`)
    return url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password ? url.host : undefined
  } catch {
    return undefined
  }
}

const trustCache = new WeakMap<object, ReturnType<typeof trustsHop>>()
const trusted = (trust: Config['TRUST_PROXY'], req: IncomingMessage) => {
  if (trust === 0) return false
  let trusts = typeof trust === 'object' ? trustCache.get(trust) : undefined
  if (!trusts) {
    trusts = trustsHop(trust)
    if (typeof trust === 'object') trustCache.set(trust, trusts)
  }
  return trusts(req.socket?.remoteAddress, 0)
}

/**
 * An upload's URL for Location: under PUBLIC_URL when it is set (no request header counts then); else
 * as the client reached us: X-Forwarded-Host and -Proto when the connection comes from a proxy
 * TRUST_PROXY trusts (which must set them, overwriting a client's), else the Host header. Without a
 * usable host (an HTTP/1.0 request has none) the URL is relative: the client resolves it against its own.
 * `Forwarded` is not read: a proxy that does not set it passes the client's on unchanged.
 */
export function uploadUrl(config: Pick<Config, 'TUS_PATH' | 'TRUST_PROXY' | 'PUBLIC_URL'>, req: IncomingMessage, id: string): string {
  const path = `${config.TUS_PATH === '/' ? '' : config.TUS_PATH}/${id}`
  if (config.PUBLIC_URL) return `${config.PUBLIC_URL}${path}`
  let host: string | undefined
  let proto = (req.socket as TLSSocket | undefined)?.encrypted ? 'https' : 'http'
  if (trusted(config.TRUST_PROXY, req)) {
    host = authorityOf(lastValue(req, 'x-forwarded-host'))
    const forwardedProto = lastValue(req, 'x-forwarded-proto')?.toLowerCase()
    if (forwardedProto === 'http' || forwardedProto === 'https') proto = forwardedProto
  }
  host ??= authorityOf(req.headers.host)
  return host ? `${proto}://${host}${path}` : path
}
