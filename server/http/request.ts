import type { IncomingMessage } from 'node:http'
import type { Caller } from '../core/types.js'
import { requestContext } from '../requestContext.js'

/** A whole non-negative integer header, or undefined when absent; NaN when malformed. */
export function integerHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  return /^(0|[1-9]\d{0,15})$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : Number.NaN
}

/** Whether a request announces a body (a length above 0, or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
}

/** The request as the upload core sees its caller; `maxSize` is the caller's token's limit, when it has one. */
export function callerOf(req: IncomingMessage, maxSize?: number): Caller {
  const record = requestContext.current() ?? { requestId: '', bytes: 0 }
  return { req, record, maxSize }
}
