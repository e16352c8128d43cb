import type { Request, Response } from 'express'
import { ERRORS, type Upload } from '@tus/utils'
import { isExpired } from '../../stores/expiry.js'
import { lockForBodyWrite } from '../tus/handlers/bodyWrite.js'
import { hasBody } from '../tus/reply.js'
import { appendContent } from './body.js'
import type { IetfDeps } from './deps.js'
import { IetfError } from './reply.js'
import { completesUpload, inconsistentLength, indicatedLength, requestOffset } from './requestFields.js'
import { completenessHeader, type Dialect } from './versions.js'

const PARTIAL_UPLOAD = 'application/partial-upload'

/**
 * Upload append (PATCH): the content goes on at Upload-Offset under the upload's lock, as a tus PATCH
 * does. A mismatching offset answers 409 with the upload's offset; an append to a complete upload is
 * refused, except an empty one at its end, which replays the completion (its answer may have been lost).
 */
export async function appendToUpload(deps: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const { config, lifecycle, store, locker, logger } = deps
  const type = req.get('content-type')?.split(';')[0].trim().toLowerCase()
  if (dialect.partialUploadType && type !== PARTIAL_UPLOAD) throw new IetfError(415, `An append requires Content-Type: ${PARTIAL_UPLOAD}`)
  const completes = completesUpload(dialect, req, true)
  const offset = requestOffset(req)
  const length = indicatedLength(req, completes, offset)

  const lock = await lockForBodyWrite(config, locker, req, id, logger)
  let upload: Upload
  let finished: boolean
  let finishedHere = false
  try {
    upload = await store.getUpload(id)
    if (isExpired(upload, store.getExpiration())) throw ERRORS.FILE_NO_LONGER_EXISTS
    if (offset !== upload.offset) {
      throw new IetfError(409, `Upload-Offset ${offset} does not match the upload's offset ${upload.offset}`, { 'Upload-Offset': String(upload.offset) }, {
        type: 'mismatching-upload-offset',
        title: 'offset from request does not match offset of resource',
        'expected-offset': upload.offset,
        'provided-offset': offset,
      })
    }
    const complete = upload.size !== undefined && upload.offset === upload.size
    if (complete && (hasBody(req) || !completes)) {
      throw new IetfError(400, 'The upload is already complete', {}, { type: 'completed-upload', title: 'upload is already completed' })
    }
    if (length !== undefined && upload.size !== undefined && length !== upload.size) throw inconsistentLength(upload.size, length)
    if (length !== undefined && upload.size === undefined) {
      if (length < upload.offset) throw inconsistentLength(upload.offset, length)
      if (config.MAX_SIZE > 0 && length > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
      await store.declareUploadLength(id, length)
      upload.size = length
    }
    finished = complete || (await appendContent(deps, req, res, lock, upload, completes))
    finishedHere = finished && !complete
  } finally {
    await lock.unlock()
  }
  // pre-finish and post-finish hooks, as for a tus PATCH that delivers the last byte (the hook's answer is not applied here).
  if (finishedHere) await lifecycle.finishing(req, upload)

  res.status(dialect.appendStatus).set({
    ...deps.reply.common(req, dialect),
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, finished),
  })
  if (!req.complete) res.set('Connection', 'close')
  res.end()
  if (finishedHere) lifecycle.finished(upload)
}
