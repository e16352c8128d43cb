import { STATUS_CODES } from 'node:http'
import type { Request, Response } from 'express'
import type { Config } from '../config.js'
import { ERRORS, UploadError } from '../core/errors.js'
import type { Written } from '../core/types.js'
import { corsHeaders } from '../cors.js'
import { failureAnswer } from '../http/failure.js'
import type { Logger } from '../logger.js'
import { uploadLimit } from './limits.js'
import { completenessHeader, type Dialect } from './versions.js'

const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#'

/** A refusal of an IETF request with no problem type: its status and short text. */
export const refuse = (status: number, message: string, headers: Record<string, string> = {}) => new UploadError(status, message, headers)

export interface Replier {
  /** Headers every answer to this request carries: CORS, and the interop version it spoke. */
  common(req: Request, dialect: Dialect): Record<string, string>
  /**
   * Answers an error as the catalogue says (as problem+json where the dialect defines its type), anything
   * unexpected as a logged 500. Every error says the upload is not complete.
   */
  fail(req: Request, res: Response, dialect: Dialect, error: unknown): void
  /** The answer to a request that wrote: `status` and `headers`, or what pre-finish asked for when it finished the upload. */
  written(req: Request, res: Response, dialect: Dialect, written: Written, status: number, headers: Record<string, string>): void
}

export function replier(config: Config, logger: Logger): Replier {
  const common = (req: Request, dialect: Dialect) => ({
    ...corsHeaders(config, req.headers.origin),
    'Upload-Draft-Interop-Version': String(dialect.version),
  })

  const fail = (req: Request, res: Response, dialect: Dialect, failure: unknown) => {
    const error = failureAnswer(logger, res, failure)
    if (res.headersSent || res.destroyed) return
    // An unread body cannot be skipped on a kept-alive connection.
    res.set({ ...common(req, dialect), ...completenessHeader(dialect, false) })
    if (!req.complete) res.setHeader('Connection', 'close')
    // A size refusal also says which limits apply.
    if (error.status === 413) res.set(uploadLimit(config, dialect, 0))
    res.status(error.status).set(error.headers)
    const { problem } = error
    const typed = problem && dialect.problems && (problem.type !== 'completed-upload' || dialect.completedUploadProblem)
    // A fault of ours, or a failed Repr-Digest, has no type of the draft's: RFC 9457's about:blank, titled by its status.
    const untyped = !typed && dialect.problems && (error.fault !== undefined || error === ERRORS.reprDigestMismatch)
    const body = typed
      ? JSON.stringify({ ...problem, type: `${PROBLEM_TYPES}${problem.type}`, detail: error.message })
      : untyped
        ? JSON.stringify({ type: 'about:blank', title: STATUS_CODES[error.status], status: error.status, detail: error.message })
        : error.body
    res.setHeader('Content-Type', typed || untyped ? 'application/problem+json' : 'text/plain; charset=utf-8')
    res.setHeader('Content-Length', Buffer.byteLength(body))
    res.end(body)
  }

  const written = (req: Request, res: Response, dialect: Dialect, result: Written, status: number, headers: Record<string, string>) => {
    if (result.failure) return fail(req, res, dialect, result.failure)
    const { changes } = result
    res.status(changes?.StatusCode || status).set({ ...common(req, dialect), ...result.headers, ...headers })
    if (changes?.Header) res.set(changes.Header)
    if (!req.complete) res.set('Connection', 'close')
    res.end(changes?.Body || undefined)
  }

  return { common, fail, written }
}
