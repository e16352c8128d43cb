import type { Request, Response } from 'express'
import { TUS_RESUMABLE } from '@tus/utils'
import type { Config } from '../config.js'
import { corsHeaders } from '../cors.js'

/** Whether a request announces a body (a length above 0, or chunked). */
export function hasBody(req: Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

/**
 * An answer of ours on a tus route, given before `@tus/server` sees the request: CORS and Tus-Resumable
 * as every tus response has them, and a short text body.
 */
export function tusReply(
  config: Pick<Config, 'CORS_ORIGINS' | 'CORS_CREDENTIALS'>,
  req: Request,
  res: Response,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.set({ ...corsHeaders(config, req.headers.origin), ...headers, 'Tus-Resumable': TUS_RESUMABLE, 'Content-Type': 'text/plain; charset=utf-8' })
  // An unread body would otherwise be drained into nothing on a kept-alive connection.
  if (hasBody(req)) res.set('Connection', 'close')
  res.status(status).send(message.endsWith('\n') ? message : `${message}\n`)
}
