import type { RequestHandler } from 'express'
import { SECURITY_HEADERS } from '../securityHeaders.js'

/**
 * The page's Content-Security-Policy: its scripts, styles and fetches only from this origin (the tus
 * endpoint and the listing are same-origin, relative URLs). Images may be `blob:`/`data:` for the
 * Dashboard's thumbnails and icons; nothing may frame the page, and forms post nowhere.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const HEADERS = { ...SECURITY_HEADERS, 'Content-Security-Policy': CONTENT_SECURITY_POLICY }

/** Browser security headers for the web page, its assets and its API, with the page's own policy. */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set(HEADERS)
  next()
}
