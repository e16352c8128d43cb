import { Readable } from 'node:stream'
import type { Request, Response } from 'express'
import { ERRORS, type Upload } from '@tus/utils'
import { type BodyWrite, roomFor } from '../tus/handlers/bodyWrite.js'
import { receiveBody } from '../tus/handlers/receiveBody.js'
import { integerHeader } from '../tus/integerHeader.js'
import { hasBody } from '../tus/reply.js'
import type { IetfDeps } from './deps.js'
import { inconsistentLength } from './requestFields.js'

/**
 * Appends a creation's or an append's content to the upload (under its lock) and, when the request ends
 * the upload and its content arrived whole, completes it: an upload without a length gets the offset
 * reached as its length. Updates `upload` and resolves with whether the upload is now complete. Content
 * that is cut short is kept, and the upload stays incomplete (the draft's rule), so the client resumes.
 * post-receive is sent while the content streams, as for a tus PATCH; its StopUpload throws the hook's answer.
 */
export async function appendContent(deps: IetfDeps, req: Request, res: Response, lock: BodyWrite, upload: Upload, completes: boolean): Promise<boolean> {
  const { config, store } = deps
  if (hasBody(req)) {
    const room = roomFor(config, upload, upload.offset)
    const contentLength = integerHeader(req.get('content-length'))
    if (contentLength !== undefined && contentLength > room) throw ERRORS.ERR_SIZE_EXCEEDED
    await receiveBody(deps.hooks, req, res, store, lock, upload, room)
  }
  const arrivedWhole = !hasBody(req) || req.complete
  if (completes && arrivedWhole) {
    if (upload.size === undefined) {
      await store.declareUploadLength(upload.id, upload.offset)
      upload.size = upload.offset
      // A store that finishes an upload when a write reaches its length (S3 completes the multipart
      // upload then) learnt the length only now: an empty write lets it finish. An empty upload has
      // nothing to finish (S3 refuses to complete a multipart upload of no parts).
      if (upload.offset > 0) await store.write(Readable.from([]), upload.id, upload.offset)
    } else if (upload.offset !== upload.size) {
      throw inconsistentLength(upload.size, upload.offset)
    }
  }
  return upload.size !== undefined && upload.offset === upload.size
}
