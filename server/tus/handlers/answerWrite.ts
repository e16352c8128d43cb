import type { Request, Response } from 'express'
import type { DataStore, Upload } from '@tus/utils'
import { expiresAt } from '../../../stores/expiry.js'
import type { ResponseChanges } from '../../hooks/index.js'
import type { Logger } from '../../logger.js'
import type { UploadLifecycle } from '../createTusServer.js'
import { replyError } from '../reply.js'

export interface WriteAnswer {
  /** Whether this request delivered the upload's last byte. */
  finished: boolean
  status: number
  /** Headers for the status finally sent (pre-finish may change it). */
  headers(status: number): Record<string, string>
}

/**
 * The answer to a request that wrote to an upload (a PATCH, a creation). When it finished the upload,
 * pre-finish runs first and its answer may change ours (status, headers, body); when pre-finish fails the
 * client gets 500, as in tusd, yet the upload is finished all the same. Upload-Expires while unfinished;
 * a body left unread (a released lock, a stopped upload) closes the connection.
 */
export async function answerWrite(
  lifecycle: UploadLifecycle,
  store: DataStore,
  logger: Logger,
  req: Request,
  res: Response,
  upload: Upload,
  { finished, status, headers }: WriteAnswer,
): Promise<void> {
  let changes: ResponseChanges
  try {
    if (finished) changes = await lifecycle.finishing(req, upload)
  } catch (error) {
    replyError(logger, req, res, error)
    return lifecycle.finished(upload)
  }
  const sent = changes?.StatusCode || status
  res.status(sent).set(headers(sent))
  const expires = expiresAt(upload, store.getExpiration())
  if (expires) res.set('Upload-Expires', expires.toUTCString())
  if (changes?.Header) res.set(changes.Header)
  if (!req.complete) res.set('Connection', 'close')
  res.end(changes?.Body || undefined)
  if (finished) lifecycle.finished(upload)
}
