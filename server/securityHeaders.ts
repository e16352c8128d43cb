import type { RequestHandler } from 'express'

/**
 * Browser security headers for every response but the tus protocol's: no type sniffing, no framing, no
 * referrer, and a policy under which a JSON or text answer, or a downloaded file opened in a tab, runs
 * nothing (inline styles only, for the browser's own image and media viewers; sandboxed).
 */
export const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
}

/** Sets SECURITY_HEADERS on every request but a tus one (any method under `tusPath` but a GET download). */
export function securityHeadersOutside(tusPath: string): RequestHandler {
  return (req, res, next) => {
    const tus = (req.path === tusPath || req.path.startsWith(`${tusPath}/`)) && req.method !== 'GET'
    if (!tus) res.set(SECURITY_HEADERS)
    next()
  }
}
