import type { Request, RequestHandler } from 'express'
import type { Config } from '../../config.js'
import { requestContext } from '../../requestContext.js'
import type { TusError } from '../errors.js'
import { tusReply } from '../reply.js'
import { CHECKSUM_ALGORITHMS, type Checksum, parseUploadChecksum } from './uploadChecksum.js'

const TRAILER_MISSING: TusError = { status_code: 400, body: 'Invalid Upload-Checksum: the announced trailer did not arrive\n' }

/** Whether the request announces Upload-Checksum as a trailer (`Trailer: Upload-Checksum`). */
const announcesTrailer = (req: Request) =>
  (req.headers.trailer ?? '').split(',').some((name) => name.trim().toLowerCase() === 'upload-checksum')

/** The checksum of a trailer, read once the body has ended (Node sets `req.trailers` by then). */
const trailerChecksum = (req: Request) => (): Checksum => {
  const value = req.trailers['upload-checksum']
  if (value === undefined) throw TRAILER_MISSING
  return parseUploadChecksum(value)
}

/**
 * The checksum extension's request step, before the tus handlers: OPTIONS advertises the algorithms;
 * a PATCH or POST with Upload-Checksum (header or announced trailer) has it put on its context for the
 * store's verification (verifyChecksums). A malformed header or an unsupported algorithm answers 400
 * before any byte is read, so nothing is stored.
 */
export function checksumRequests(config: Config): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'OPTIONS') {
      res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
      return next()
    }
    if (req.method !== 'PATCH' && req.method !== 'POST') return next()
    const header = req.get('upload-checksum')
    const trailer = announcesTrailer(req)
    if (header === undefined && !trailer) return next()
    if (header !== undefined && trailer) return tusReply(config, req, res, 400, 'Upload-Checksum is either a header or a trailer, not both')
    let checksum: Checksum | (() => Checksum)
    try {
      checksum = header !== undefined ? parseUploadChecksum(header) : trailerChecksum(req)
    } catch (error) {
      return tusReply(config, req, res, 400, (error as TusError).body.trim())
    }
    const context = requestContext.current()
    if (context) context.checksum = { checksum, creation: req.method === 'POST' }
    next()
  }
}
