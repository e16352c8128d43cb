import type { Request, RequestHandler, Response } from 'express'
import { isUploadId } from '../../stores/uploadId.js'
import type { AccessControl } from '../auth/access.js'
import type { Config } from '../config.js'
import type { UploadCore } from '../core/uploads.js'
import { corsHeaders } from '../cors.js'
import { hasBody } from '../http/request.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'
import { appendToUpload } from './append.js'
import { cancelUpload } from './cancel.js'
import { type Creation, createUpload, readCreation } from './create.js'
import type { IetfDeps } from './deps.js'
import { uploadLimit } from './limits.js'
import { retrieveOffset } from './offset.js'
import { refuse, replier } from './reply.js'
import { type Dialect, dialectOf, INTEROP_HEADER, INTEROP_VERSIONS } from './versions.js'

const COLLECTION_METHODS = 'POST, OPTIONS'
const UPLOAD_METHODS = 'HEAD, PATCH, DELETE, OPTIONS'
// The draft after -11 lets a client read the offset with GET too (no content); interop 8 names that draft.
const UPLOAD_METHODS_WITH_GET = 'HEAD, GET, PATCH, DELETE, OPTIONS'

/**
 * The IETF resumable-upload draft on the tus endpoint: a request carrying Upload-Draft-Interop-Version
 * is answered here in the dialect of that version (versions.ts); any other goes on to the tus steps.
 * Uploads are the tus endpoint's own (same store, lock, ids, owner and events), so either protocol can
 * continue what the other began. Requests pass the same access step and upload limits as tus requests.
 */
export function ietfRouter({
  config,
  core,
  access,
  limits,
  logger,
}: {
  config: Config
  core: UploadCore
  access: AccessControl
  limits: RequestHandler
  logger: Logger
}): RequestHandler {
  const reply = replier(config, logger)
  const deps: IetfDeps = { config, core, logger, reply }

  /** Runs the access step and the upload limits, then the handler; errors of any are answered in the dialect. */
  const guarded = (req: Request, res: Response, dialect: Dialect, handle: () => Promise<void>) => {
    void access.uploads(req, res, (error?: unknown) => {
      if (error) return reply.fail(req, res, dialect, error)
      void limits(req, res, (error?: unknown) => {
        if (error) return reply.fail(req, res, dialect, error)
        handle().catch((e: unknown) => reply.fail(req, res, dialect, e))
      })
    })
  }

  return (req, res, next) => {
    const header = req.headers[INTEROP_HEADER]
    // A CORS preflight names the draft's fields without using them: the tus OPTIONS answers it.
    if (header === undefined || (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined)) return next()
    const dialect = dialectOf(String(header))
    if (!dialect) {
      res.set(corsHeaders(config, req.headers.origin))
      if (hasBody(req)) res.set('Connection', 'close')
      return void res
        .status(400)
        .type('text/plain')
        .send(`Upload-Draft-Interop-Version ${String(header)} is not supported; supported: ${INTEROP_VERSIONS.join(', ')}\n`)
    }

    const rest = req.path.slice(config.TUS_PATH.length).replace(/^\//, '')
    if (rest === '') {
      if (req.method === 'OPTIONS')
        return void res
          .status(204)
          .set({ ...reply.common(req, dialect), Allow: COLLECTION_METHODS, ...uploadLimit(config, dialect, 0) })
          .end()
      if (req.method !== 'POST') return reply.fail(req, res, dialect, refuse(405, 'Method not allowed on the upload collection', { Allow: COLLECTION_METHODS }))
      // Draft -01 (interop 3) forbids an offset on a creation.
      if (dialect.version === 3 && req.get('upload-offset') !== undefined)
        return reply.fail(req, res, dialect, refuse(400, 'A creation must not carry Upload-Offset'))
      let creation: Creation
      try {
        creation = readCreation(deps, dialect, req)
      } catch (error) {
        return reply.fail(req, res, dialect, error)
      }
      return guarded(req, res, dialect, () => createUpload(deps, dialect, creation, req, res))
    }

    if (!isUploadId(rest)) return reply.fail(req, res, dialect, refuse(404, 'Upload not found'))
    const context = requestContext.current()
    if (context) context.uploadId = rest
    if (req.method === 'OPTIONS')
      return void res
        .status(204)
        .set({ ...reply.common(req, dialect), Allow: uploadMethods(dialect) })
        .end()
    // Draft -01 (interop 3) forbids the upload's state fields on offset retrieval and cancellation.
    if (
      dialect.version === 3 &&
      (req.method === 'HEAD' || req.method === 'DELETE') &&
      (req.get('upload-offset') !== undefined || req.get('upload-incomplete') !== undefined)
    ) {
      return reply.fail(req, res, dialect, refuse(400, `${req.method} must not carry Upload-Offset or Upload-Incomplete`))
    }
    switch (req.method) {
      case 'HEAD':
        return guarded(req, res, dialect, () => retrieveOffset(deps, dialect, rest, req, res))
      case 'GET':
        if (!dialect.offsetByGet) break
        return guarded(req, res, dialect, () => retrieveOffset(deps, dialect, rest, req, res))
      case 'PATCH':
        return guarded(req, res, dialect, () => appendToUpload(deps, dialect, rest, req, res))
      case 'DELETE':
        return guarded(req, res, dialect, () => cancelUpload(deps, dialect, rest, req, res))
    }
    return reply.fail(req, res, dialect, refuse(405, 'Method not allowed on an upload', { Allow: uploadMethods(dialect) }))
  }
}

const uploadMethods = (dialect: Dialect) => (dialect.offsetByGet ? UPLOAD_METHODS_WITH_GET : UPLOAD_METHODS)
