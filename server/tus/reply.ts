import type { Request, Response } from 'express'
import { TUS_RESUMABLE } from '@tus/utils'
import type { Config } from '../config.js'
import { RETRY_AFTER_SECONDS } from '../limits/resourcePressure.js'
import { corsHeaders } from '../cors.js'
import type { Logger } from '../logger.js'
import { toTusError } from './errors.js'

type CorsConfig = Pick<Config, 'CORS_ORIGINS' | 'CORS_CREDENTIALS'>

/** Whether a request announces a body (a length above 0, or chunked). */
export function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

/** What every tus response carries: CORS for the request's Origin and Tus-Resumable. */
export function setTusHeaders(config: CorsConfig, req: Request, res: Response): void {
  res.set({ ...corsHeaders(config, req.headers.origin), 'Tus-Resumable': TUS_RESUMABLE })
}

/**
 * An answer of ours on a tus route, given before a handler reads the request: CORS and Tus-Resumable
 * as every tus response has them, and a short text body.
 */
export function tusReply(config: CorsConfig, req: Request, res: Response, status: number, message: string, headers: Record<string, string> = {}): void {
  setTusHeaders(config, req, res)
  res.set({ ...headers, 'Content-Type': 'text/plain; charset=utf-8' })
  // An unread body would otherwise be drained into nothing on a kept-alive connection.
  if (hasBody(req)) res.set('Connection', 'close')
  res.status(status).send(message.endsWith('\n') ? message : `${message}\n`)
}

/**
 * A failed request of one of our tus handlers (its tus headers already set): the error's status and
 * short text (see toTusError), unless an answer already went out. A body left unread closes the connection.
 */
export function replyError(logger: Logger, req: Request, res: Response, error: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  const { status_code, body } = toTusError(error, logger)
  const retry = status_code === 503 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}
  res.status(status_code).set({ ...retry, ...headers, Connection: req.complete ? 'keep-alive' : 'close', 'Content-Type': 'text/plain; charset=utf-8' })
  // Node's own end(), not Express's send(): send() leaves the body out whenever req.method is HEAD, also
  // for a POST overridden to HEAD (X-HTTP-Method-Override), whose client then waits for the announced body.
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(body)
}
