import type { RequestHandler } from 'express'

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

const HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
}

/** Browser security headers for the web page, its assets and its API (never on the tus routes). */
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.set(HEADERS)
  next()
}
