import type { Request, Response } from 'express'
import { type DataStore, ERRORS, type Upload } from '@tus/utils'
import { isExpired } from '../../../stores/expiry.js'
import type { Config } from '../../config.js'
import type { Hooks } from '../../hooks/index.js'
import type { Logger } from '../../logger.js'
import { FINAL_UPLOAD_PATCH, isFinalUpload } from '../concat.js'
import type { TusEndpoint } from '../createTusServer.js'
import { replyError, setTusHeaders } from '../reply.js'
import { uploadIdOf } from '../uploadUrl.js'
import { integerHeader } from '../integerHeader.js'
import { answerWrite } from './answerWrite.js'
import { type BodyWrite, lockForBodyWrite, roomFor } from './bodyWrite.js'
import { receiveBody } from './receiveBody.js'

/**
 * PATCH of an upload, ours rather than `@tus/server`'s: it streams the Node request into the store
 * directly (upstream bridges Node to web streams and back, which costs CPU and garbage on every chunk),
 * and a 409 carries the current Upload-Offset. Locking, the release of a stale request's lock within
 * LOCK_DRAIN_TIMEOUT, expiry, lengths and limits follow tus 1.0.0 and upstream's behaviour.
 */
export function patchHandler(
  config: Config,
  tus: TusEndpoint,
  store: DataStore,
  logger: Logger,
  hooks?: Hooks,
): (req: Request, res: Response) => Promise<void> {
  const { lifecycle, locker } = tus
  const fail = (req: Request, res: Response, error: unknown, headers: Record<string, string> = {}) => replyError(logger, req, res, error, headers)

  return async (req, res) => {
    setTusHeaders(config, req, res)
    const id = uploadIdOf({ url: req.originalUrl }) as string // the protocol guard let only our ids through
    const offset = integerHeader(req.get('upload-offset'))
    const declaredLength = integerHeader(req.get('upload-length'))
    const contentLength = integerHeader(req.get('content-length'))
    if (offset === undefined) return fail(req, res, ERRORS.MISSING_OFFSET)
    if (Number.isNaN(offset) || Number.isNaN(declaredLength)) return fail(req, res, { status_code: 400, body: 'Invalid Upload-Offset or Upload-Length\n' })

    let lock: BodyWrite
    try {
      lock = await lockForBodyWrite(config, locker, req, id, logger)
    } catch (error) {
      return fail(req, res, error)
    }

    let upload: Upload
    let wasFinished = false
    try {
      upload = await store.getUpload(id)
      wasFinished = upload.offset === upload.size
      const expiration = store.getExpiration()
      if (isExpired(upload, expiration)) throw ERRORS.FILE_NO_LONGER_EXISTS
      if (isFinalUpload(upload)) throw FINAL_UPLOAD_PATCH
      if (upload.offset !== offset) {
        return fail(req, res, ERRORS.INVALID_OFFSET, { 'Upload-Offset': String(upload.offset) })
      }
      if (declaredLength !== undefined) {
        if (!upload.sizeIsDeferred || declaredLength < upload.offset) throw ERRORS.INVALID_LENGTH
        if (config.MAX_SIZE > 0 && declaredLength > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
        await store.declareUploadLength(id, declaredLength)
        upload.size = declaredLength
      }
      const room = roomFor(config, upload, offset)
      if (contentLength !== undefined && contentLength > room) throw ERRORS.ERR_SIZE_EXCEEDED

      // A post-receive's StopUpload throws the hook's answer (the upload is then gone).
      await receiveBody(hooks, req, res, store, lock, upload, room)
    } catch (error) {
      return fail(req, res, error)
    } finally {
      await lock.unlock()
    }

    await answerWrite(lifecycle, store, logger, req, res, upload, {
      // Only the request that delivers the last byte finishes an upload (a repeated empty PATCH does not).
      finished: !wasFinished && upload.offset === upload.size,
      status: 204,
      headers: () => ({ 'Upload-Offset': String(upload.offset) }),
    })
  }
}
