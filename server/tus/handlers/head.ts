import type { Request, Response } from 'express'
import { type DataStore, ERRORS, type Locker, Metadata, type Upload } from '@tus/utils'
import { expiresAt, isExpired } from '../../../stores/expiry.js'
import type { Config } from '../../config.js'
import type { Logger } from '../../logger.js'
import { concatOf, isFinalUpload } from '../concat.js'
import { replyError, setTusHeaders } from '../reply.js'
import { visibleMetadata } from '../reservedMetadata.js'
import { uploadIdOf } from '../uploadUrl.js'

/**
 * An upload as its last writer left it, or FILE_NO_LONGER_EXISTS once expired. Taking the lock asks a
 * stale PATCH that still holds it to let go, so a resuming client sees its final offset.
 */
export async function settledUpload(store: DataStore, locker: Locker, id: string, signal: AbortSignal): Promise<Upload> {
  const lock = locker.newLock(id)
  // Held only for one read: a request asking for it just waits that long.
  await lock.lock(signal, () => {})
  const upload = await store.getUpload(id).finally(() => lock.unlock())
  if (isExpired(upload, store.getExpiration())) throw ERRORS.FILE_NO_LONGER_EXISTS
  return upload
}

/**
 * HEAD of an upload. Ours rather than `@tus/server`'s: that one never sends Upload-Expires, answers 410
 * for finished uploads once their creation is older than the expiry period, and goes through its
 * Node-to-web request bridge, which costs several times the CPU of the answer itself (a thousand HEADs
 * at once held the event loop for a second).
 */
export function headHandler(config: Config, store: DataStore, locker: Locker, logger: Logger): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    setTusHeaders(config, req, res)
    const id = uploadIdOf({ url: req.originalUrl }) as string // the protocol guard let only our ids through
    const gone = new AbortController()
    const onGone = () => gone.abort(ERRORS.ABORTED)
    res.once('close', onGone)
    let upload: Upload
    try {
      upload = await settledUpload(store, locker, id, gone.signal)
    } catch (error) {
      return replyError(logger, req, res, error)
    } finally {
      res.off('close', onGone)
    }

    res.set('Cache-Control', 'no-store')
    // A final upload has an offset only once it is assembled (tus concatenation).
    if (!isFinalUpload(upload) || upload.offset === upload.size) res.set('Upload-Offset', String(upload.offset))
    const concat = concatOf(upload)
    if (concat) res.set('Upload-Concat', concat)
    if (upload.sizeIsDeferred) res.set('Upload-Defer-Length', '1')
    else res.set('Upload-Length', String(upload.size))
    const metadata = visibleMetadata(upload.metadata) // never the reserved keys
    if (metadata) res.set('Upload-Metadata', Metadata.stringify(metadata) ?? '')
    const expires = expiresAt(upload, store.getExpiration())
    if (expires) res.set('Upload-Expires', expires.toUTCString())
    res.status(200).end()
  }
}
