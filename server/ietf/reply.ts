import type { Request, Response } from 'express'
import type { Config } from '../config.js'
import { corsHeaders } from '../cors.js'
import type { Logger } from '../logger.js'
import { toTusError } from '../tus/errors.js'
import { uploadLimit } from './limits.js'
import { completenessHeader, type Dialect } from './versions.js'

const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#'

/** An RFC 9457 problem: a registered type of the draft, its title and extension members. */
export interface Problem {
  type: 'mismatching-upload-offset' | 'inconsistent-upload-length' | 'completed-upload'
  title: string
  [member: string]: string | number
}

/** A refusal of an IETF request: its status, a short text, and the problem type where the dialect has one. */
export class IetfError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly problem?: Problem,
  ) {
    super(message)
  }
}

export interface Replier {
  /** Headers every answer to this request carries: CORS, and the interop version it spoke. */
  common(req: Request, dialect: Dialect): Record<string, string>
  /**
   * Answers an error: an IetfError as it says (as problem+json where the dialect defines the type), a
   * tus or store error as the tus endpoint would, anything else as a logged 500. Every error says the
   * upload is not complete.
   */
  fail(req: Request, res: Response, dialect: Dialect, error: unknown): void
}

export function replier(config: Config, logger: Logger): Replier {
  const common = (req: Request, dialect: Dialect) => ({
    ...corsHeaders(config, req.headers.origin),
    'Upload-Draft-Interop-Version': String(dialect.version),
  })

  /** Sets the status; a size refusal also says which limits apply. */
  const withStatus = (res: Response, dialect: Dialect, status: number) => {
    if (status === 413) res.set(uploadLimit(config, dialect, 0))
    return res.status(status)
  }

  const fail = (req: Request, res: Response, dialect: Dialect, error: unknown) => {
    if (res.headersSent || res.destroyed) return
    // An unread body cannot be skipped on a kept-alive connection.
    res.set({ ...common(req, dialect), ...completenessHeader(dialect, false), Connection: req.complete ? 'keep-alive' : 'close' })
    if (!(error instanceof IetfError)) {
      const { status_code, body } = toTusError(error, logger)
      return void withStatus(res, dialect, status_code).type('text/plain').send(body)
    }
    withStatus(res, dialect, error.status).set(error.headers)
    const { problem } = error
    const typed = problem && dialect.problems && (problem.type !== 'completed-upload' || dialect.completedUploadProblem)
    if (!typed) return void res.type('text/plain').send(`${error.message}\n`)
    res.type('application/problem+json').send(JSON.stringify({ ...problem, type: `${PROBLEM_TYPES}${problem.type}`, detail: error.message }))
  }

  return { common, fail }
}
