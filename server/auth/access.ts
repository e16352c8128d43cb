import type { DataStore, Upload } from '@tus/utils'
import type { Request, RequestHandler, Response } from 'express'
import { parseMetadata } from '../../stores/metadata.js'
import { isUploadId } from '../../stores/uploadId.js'
import type { Config } from '../config.js'
import { ERRORS } from '../core/errors.js'
import { ownerOf } from '../core/records.js'
import { corsHeaders } from '../cors.js'
import { integerHeader } from '../http/request.js'
import { typeAllowed } from '../limits/fileTypes.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'
import { replyError, tusReply } from '../tus/reply.js'
import type { Grant } from './jwt.js'

export interface AccessControl {
  /** For everything under TUS_PATH, before the protocol guard: a valid bearer token, or 401 (OPTIONS is let through). */
  authenticate: RequestHandler
  /** For the tus routes, after the protocol guard: the token's limits at creation, ownership of an upload otherwise. */
  uploads: RequestHandler
  /** For the download route: ownership of the upload a GET reads (HEAD is left to `uploads`). */
  downloads: RequestHandler
}

const pass: RequestHandler = (_req, _res, next) => next()

/** What the request may do, set by `authenticate`. */
const grants = new WeakMap<Request, Grant>()

/** What a request's verified token lets it do; undefined with authentication off. */
export const grantOf = (req: Request): Grant | undefined => grants.get(req)

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i

/** A whole non-negative integer header, undefined when absent or malformed (the tus layer answers those). */
function wholeHeader(value: string | undefined): number | undefined {
  const number = integerHeader(value)
  return Number.isNaN(number) ? undefined : number
}

/**
 * Authentication and per-user isolation. With AUTH_MODE=jwt every request under TUS_PATH but a CORS
 * preflight needs `Authorization: Bearer <token>`; the token's `sub` is the principal. Uploads record
 * their creator (owner.ts), and an upload of another principal, or of none (created with authentication
 * off), answers exactly as an unknown one: same status, headers and body, before any lock is taken or
 * byte written. With AUTH_MODE=none all three are pass-throughs.
 */
export async function accessControl(config: Config, datastore: DataStore, logger: Logger): Promise<AccessControl> {
  if (config.AUTH_MODE !== 'jwt') return { authenticate: pass, uploads: pass, downloads: pass }
  // jose loads only with AUTH_MODE=jwt: a process holds (and its collector walks) only the modules it uses.
  const { createVerifier, InvalidToken } = await import('./jwt.js')
  const verify = createVerifier(config)

  const reply = (req: Request, res: Response, status: number, message: string, headers: Record<string, string> = {}) =>
    tusReply(config, req, res, status, message, headers)

  const unauthorized = (req: Request, res: Response, challenge: string, message: string) => {
    const cors = corsHeaders(config, req.headers.origin)
    const expose = cors['Access-Control-Expose-Headers']
    reply(req, res, 401, message, {
      'WWW-Authenticate': challenge,
      'Cache-Control': 'no-store',
      ...(expose ? { 'Access-Control-Expose-Headers': `${expose}, WWW-Authenticate` } : {}),
    })
  }

  const authenticate: RequestHandler = async (req, res, next) => {
    if (req.method === 'OPTIONS') return next()
    const match = BEARER.exec(req.headers.authorization ?? '')
    // RFC 6750: no error code when the request carries no bearer token at all.
    if (!match) return unauthorized(req, res, 'Bearer realm="tusgate"', 'Authorization: Bearer <token> required')
    let grant: Grant
    try {
      grant = await verify(match[1])
    } catch (error) {
      if (error instanceof InvalidToken) {
        return unauthorized(req, res, `Bearer realm="tusgate", error="invalid_token", error_description="${error.message}"`, `Invalid token: ${error.message}`)
      }
      logger.warn('cannot verify tokens', { requestId: requestContext.current()?.requestId, error })
      return reply(req, res, 503, 'Tokens cannot be verified right now; retry shortly', { 'Retry-After': '5' })
    }
    grants.set(req, grant)
    const context = requestContext.current()
    if (context) context.principal = grant.principal
    next()
  }

  /** The token's max_size and allowed_types, checked on a creation before the handler reads it. */
  const creationLimits = (req: Request, res: Response, grant: Grant): boolean => {
    const { maxSize, allowedTypes } = grant
    if (maxSize !== undefined) {
      const length = wholeHeader(req.get('upload-length'))
      const body = wholeHeader(req.get('content-length'))
      if ((length ?? 0) > maxSize || (body ?? 0) > maxSize) {
        reply(req, res, 413, `This token allows uploads of at most ${maxSize} bytes`)
        return false
      }
      if (length === undefined && req.get('transfer-encoding') !== undefined) {
        reply(req, res, 411, 'A deferred-length upload body needs a Content-Length under a max_size claim')
        return false
      }
    }
    // A partial upload (tus concatenation) is typed by the final upload made of it, which is checked.
    if (allowedTypes !== undefined && req.get('upload-concat')?.trim() !== 'partial') {
      const header = req.get('upload-metadata')
      const metadata: Upload['metadata'] = header ? parseMetadata(header) : {}
      if (!metadata) return true // the creation's handler answers 400 for it
      const filetype = metadata?.filetype
      if (!filetype || !typeAllowed(filetype, allowedTypes)) {
        reply(req, res, 415, `This token allows only uploads whose filetype is ${allowedTypes.join(', ')}`)
        return false
      }
    }
    return true
  }

  /** The token's max_size on a PATCH of an upload it owns. */
  const patchLimits = (req: Request, res: Response, grant: Grant, upload: Upload): boolean => {
    const { maxSize } = grant
    if (maxSize === undefined) return true
    const declared = wholeHeader(req.get('upload-length'))
    const offset = wholeHeader(req.get('upload-offset')) ?? 0
    const body = wholeHeader(req.get('content-length'))
    if ((declared ?? 0) > maxSize || offset + (body ?? 0) > maxSize) {
      reply(req, res, 413, `This token allows uploads of at most ${maxSize} bytes`)
      return false
    }
    // Without a length anywhere, nothing but Content-Length bounds what a chunked body writes.
    if (upload.size === undefined && declared === undefined && body === undefined) {
      reply(req, res, 411, 'A deferred-length upload body needs a Content-Length under a max_size claim')
      return false
    }
    return true
  }

  /** The upload if the request's principal owns it; undefined if it is unknown or someone else's; the store's error otherwise. */
  const owned = async (req: Request, id: string): Promise<Upload | undefined> => {
    const principal = grants.get(req)?.principal
    let upload: Upload
    try {
      upload = await datastore.getUpload(id)
    } catch (error) {
      if ((error as { status_code?: number }).status_code === 404) return undefined
      throw error
    }
    if (principal !== undefined && ownerOf(upload) === principal) return upload
    logger.warn('upload of another principal refused', { requestId: requestContext.current()?.requestId, uploadId: id, principal })
    return undefined
  }

  const uploads: RequestHandler = async (req, res, next) => {
    if (req.method === 'OPTIONS') return next()
    const grant = grants.get(req)
    if (!grant) return unauthorized(req, res, 'Bearer realm="tusgate"', 'Authorization: Bearer <token> required')
    const rest = req.path.slice(config.TUS_PATH.length).replace(/^\//, '')
    if (rest === '') return req.method === 'POST' && !creationLimits(req, res, grant) ? undefined : next()
    if (!isUploadId(rest)) return next() // the protocol guard has answered already

    let upload: Upload | undefined
    try {
      upload = await owned(req, rest)
    } catch (error) {
      return replyError(config, logger, req, res, error)
    }
    if (upload) return req.method !== 'PATCH' || patchLimits(req, res, grant, upload) ? next() : undefined
    // As the handlers answer an unknown upload.
    replyError(config, logger, req, res, ERRORS.notFound)
  }

  const downloads: RequestHandler = async (req, res, next) => {
    if (req.method !== 'GET') return next()
    const id = String(req.params.id)
    if (!isUploadId(id)) return next()
    // download.ts answers 404 for any upload it cannot read, so a store error is hidden the same way.
    const upload = await owned(req, id).catch(() => undefined)
    if (upload) return next()
    // As download.ts answers an unknown upload.
    res.set(corsHeaders(config, req.headers.origin))
    const context = requestContext.current()
    if (context) context.uploadId = id
    res.status(404).type('text/plain').send('Upload not found\n')
  }

  return { authenticate, uploads, downloads }
}
