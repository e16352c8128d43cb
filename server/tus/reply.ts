import { TUS_RESUMABLE } from '@tus/utils'
import type { Request, Response } from 'express'
import { expiresAt } from '../../stores/expiry.js'
import type { Config } from '../config.js'
import type { Written } from '../core/types.js'
import { corsHeaders } from '../cors.js'
import { failureAnswer } from '../http/failure.js'
import { hasBody } from '../http/request.js'
import type { Logger } from '../logger.js'

type CorsConfig = Pick<Config, 'CORS_ORIGINS' | 'CORS_CREDENTIALS'>

/** What every tus response carries: CORS for the request's Origin and Tus-Resumable. */
export function setTusHeaders(config: CorsConfig, req: Request, res: Response): void {
  res.set({ ...corsHeaders(config, req.headers.origin), 'Tus-Resumable': TUS_RESUMABLE })
}

/** Writes a short text answer with Node's own end(): Express's send() drops the body whenever req.method is HEAD (also for an override). */
function sendText(req: Request, res: Response, status: number, body: string, headers: Record<string, string>, close = !req.complete): void {
  // An unread body cannot be skipped on a kept-alive connection.
  res.status(status).set({ ...headers, 'Content-Type': 'text/plain; charset=utf-8' })
  if (close) res.setHeader('Connection', 'close')
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.end(body)
}

/** An answer of ours on a tus route, before or instead of a handler: tus headers and a short text body. */
export function tusReply(config: CorsConfig, req: Request, res: Response, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  setTusHeaders(config, req, res)
  // Before a handler the body, if any, is unread (or only peeked at).
  sendText(req, res, status, message.endsWith('\n') ? message : `${message}\n`, headers, hasBody(req) || !req.complete)
}

/** A failed tus request: the error as the catalogue says (reported once), unless an answer already went out. */
export function replyError(config: CorsConfig, logger: Logger, req: Request, res: Response, failure: unknown): void {
  const error = failureAnswer(logger, res, failure)
  if (res.headersSent || res.destroyed) return
  setTusHeaders(config, req, res)
  sendText(req, res, error.status, error.body, error.headers)
}

/**
 * The answer to a request that wrote to an upload (a PATCH, a creation): `status` with `headers(status)`,
 * or what pre-finish asked for when the request finished the upload (its failure answers 500, though
 * the upload is finished). Upload-Expires while unfinished; a body left unread closes the connection.
 */
export function answerWritten(
  config: CorsConfig,
  logger: Logger,
  req: Request,
  res: Response,
  written: Written,
  expirationMs: number,
  { status, headers }: { status: number; headers(status: number): Record<string, string> },
): void {
  if (written.failure) {
    replyError(config, logger, req, res, written.failure)
    return
  }
  const { changes } = written
  const sent = changes?.StatusCode || status
  res.status(sent).set({ ...written.headers, ...headers(sent) })
  const expires = expiresAt(written.upload, expirationMs)
  if (expires) res.set('Upload-Expires', expires.toUTCString())
  if (changes?.Header) res.set(changes.Header)
  if (!req.complete) res.set('Connection', 'close')
  res.end(changes?.Body || undefined)
}
