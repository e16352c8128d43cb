import type { Request, Response } from 'express'
import { type DataStore, ERRORS, Upload } from '@tus/utils'
import { newUploadId } from '../../../stores/uploadId.js'
import type { Config } from '../../config.js'
import type { Hooks } from '../../hooks/index.js'
import type { Logger } from '../../logger.js'
import { requestContext } from '../../requestContext.js'
import type { TusEndpoint } from '../createTusServer.js'
import type { TusError } from '../errors.js'
import { integerHeader } from '../integerHeader.js'
import { metadataOf } from '../metadataHeader.js'
import { replyError, setTusHeaders } from '../reply.js'
import { uploadUrl } from '../uploadUrl.js'
import { answerWrite } from './answerWrite.js'
import { type BodyWrite, lockForBodyWrite, roomFor } from './bodyWrite.js'
import { receiveBody } from './receiveBody.js'

const OFFSET_STREAM = 'application/offset+octet-stream'
const INVALID_CONCAT: TusError = { status_code: 400, body: 'Invalid Upload-Concat: partial, or final;<url> <url> ...\n' }
const INVALID_LENGTH: TusError = { status_code: 400, body: 'Invalid Upload-Length (a whole number of bytes) or Upload-Defer-Length (1)\n' }

/** The upload a creation request asks for; throws why it is refused. Nothing is stored either way. */
function requestedUpload(config: Config, store: DataStore, req: Request, concatenation: boolean): Upload {
  const concat = req.get('upload-concat')
  if (concat !== undefined) {
    if (!concatenation) throw ERRORS.UNSUPPORTED_CONCATENATION_EXTENSION
    if (concat.trim() !== 'partial') throw INVALID_CONCAT // a final one has its own handler (final.ts)
  }
  const length = integerHeader(req.get('upload-length'))
  const deferred = req.get('upload-defer-length')
  if (deferred !== undefined && !store.hasExtension('creation-defer-length')) throw ERRORS.UNSUPPORTED_CREATION_DEFER_LENGTH_EXTENSION
  if ((length === undefined) === (deferred === undefined)) throw ERRORS.INVALID_LENGTH
  if (Number.isNaN(length) || (deferred !== undefined && deferred !== '1')) throw INVALID_LENGTH
  if (length !== undefined && config.MAX_SIZE > 0 && length > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
  const upload = new Upload({ id: newUploadId(), size: length, offset: 0, metadata: metadataOf(req) })
  // A body that cannot fit is refused before the upload exists (a chunked one is cut at the limit).
  const contentLength = integerHeader(req.get('content-length'))
  if (contentLength !== undefined && contentLength > roomFor(config, upload, 0)) throw ERRORS.ERR_SIZE_EXCEEDED
  return upload
}

/**
 * POST to the collection: tus creation, creation-with-upload, creation-defer-length and partial uploads
 * of concatenation (final ones are final.ts's). Ours rather than `@tus/server`'s, which bridges every
 * request to a web Request and its body to a web stream and back: a burst of a thousand creations held
 * the event loop for most of a second. The upload is prepared (reserved keys, pre-create), stored and
 * announced (post-create) under its lock; a body is written as a PATCH's (post-receive, checksum, limits);
 * an upload finished here runs pre-finish, whose answer may change the response.
 */
export function postHandler(
  config: Config,
  tus: TusEndpoint,
  store: DataStore,
  concatenation: boolean,
  logger: Logger,
  hooks?: Hooks,
): (req: Request, res: Response) => Promise<void> {
  const { lifecycle, locker } = tus
  const fail = (req: Request, res: Response, error: unknown, headers?: Record<string, string>) => replyError(logger, req, res, error, headers)

  return async (req, res) => {
    setTusHeaders(config, req, res)
    let upload: Upload
    try {
      upload = requestedUpload(config, store, req, concatenation)
      const context = requestContext.current()
      if (context) context.uploadId = upload.id
      await lifecycle.prepare(req, res, upload) // pre-create may refuse, or change the id
    } catch (error) {
      return fail(req, res, error)
    }

    let url: string
    let wrote = false
    let lock: BodyWrite
    try {
      lock = await lockForBodyWrite(config, locker, req, upload.id, logger)
    } catch (error) {
      return fail(req, res, error)
    }
    try {
      await store.create(upload)
      url = uploadUrl(config, req, upload.id)
      lifecycle.created(req, upload)
      // creation-with-upload: the protocol guard let a body through only with this type.
      if (req.headers['content-type']?.trim() === OFFSET_STREAM) {
        wrote = true
        // A post-receive's StopUpload throws the hook's answer (the upload is then gone).
        await receiveBody(hooks, req, res, store, lock, upload, roomFor(config, upload, 0))
      }
    } catch (error) {
      return fail(req, res, error)
    } finally {
      await lock.unlock()
    }

    await answerWrite(lifecycle, store, logger, req, res, upload, {
      // An empty upload, or a body that was the whole upload.
      finished: upload.offset === upload.size,
      status: 201,
      headers: (status) => ({
        ...(wrote ? { 'Upload-Offset': String(upload.offset) } : {}),
        ...(status === 201 || (status >= 300 && status < 400) ? { Location: url } : {}),
      }),
    })
  }
}
