import { TUS_RESUMABLE, TUS_VERSION } from '@tus/utils'
import type { Request, RequestHandler, Response } from 'express'
import { isUploadId } from '../../stores/uploadId.js'
import type { Config } from '../config.js'
import { hasBody } from '../http/request.js'
import { metadataProblem } from '../limits/metadata.js'
import { requestContext } from '../requestContext.js'
import { tusReply } from './reply.js'

const TUS_METHODS = new Set(['POST', 'HEAD', 'PATCH', 'DELETE', 'OPTIONS'])
const OFFSET_STREAM = 'application/offset+octet-stream'

/**
 * The tus 1.0.0 rules that `@tus/server` gets wrong or leaves out, checked before it sees the
 * request: method override, 412 with Tus-Version, 415 for a wrong body type, metadata limits, and
 * ids that are not ours (answered 404 without touching the store).
 */
export function protocolGuard(config: Config): RequestHandler {
  const reject = (req: Request, res: Response, status: number, message: string, headers: Record<string, string> = {}) =>
    tusReply(config, req, res, status, message, headers)

  return (req, res, next) => {
    const override = req.headers['x-http-method-override']
    if (override !== undefined) {
      const method = String(override).trim().toUpperCase()
      if (!TUS_METHODS.has(method)) return reject(req, res, 400, 'X-HTTP-Method-Override names no tus method')
      req.method = method
    }
    if (!TUS_METHODS.has(req.method)) {
      return reject(req, res, 405, 'Method not allowed', { Allow: [...TUS_METHODS, 'GET'].join(', ') })
    }

    const rest = req.path.slice(config.TUS_PATH.length).replace(/^\//, '')
    if (rest === '') {
      if (req.method !== 'POST' && req.method !== 'OPTIONS') {
        return reject(req, res, 405, 'Method not allowed on the upload collection', { Allow: 'POST, OPTIONS' })
      }
    } else {
      if (!isUploadId(rest)) return reject(req, res, 404, 'Upload not found')
      if (req.method === 'POST') return reject(req, res, 405, 'Method not allowed on an upload', { Allow: 'HEAD, PATCH, DELETE, GET, OPTIONS' })
      const context = requestContext.current()
      if (context) context.uploadId = rest
    }

    if (req.method === 'OPTIONS') return next()

    const version = req.headers['tus-resumable']
    if (version !== TUS_RESUMABLE) {
      const reason = version === undefined ? 'Tus-Resumable header required' : `Tus-Resumable ${version} is not supported`
      return reject(req, res, 412, reason, { 'Tus-Version': TUS_VERSION.join(',') })
    }

    const contentType = req.headers['content-type']?.trim()
    if (req.method === 'PATCH' && contentType !== OFFSET_STREAM) {
      return reject(req, res, 415, `PATCH requires Content-Type: ${OFFSET_STREAM}`)
    }
    if (req.method === 'POST' && hasBody(req) && contentType !== OFFSET_STREAM) {
      return reject(req, res, 415, `An upload body in POST requires Content-Type: ${OFFSET_STREAM}`)
    }

    const metadata = req.headers['upload-metadata']
    if (metadata !== undefined && Buffer.byteLength(String(metadata)) > config.MAX_METADATA_SIZE) {
      return reject(req, res, 400, `Upload-Metadata is larger than ${config.MAX_METADATA_SIZE} bytes`)
    }
    const problem = metadata === undefined ? undefined : metadataProblem(String(metadata), config)
    if (problem) return reject(req, res, 400, problem)
    next()
  }
}
