import { EventEmitter } from 'node:events'
import { type CancellationContext, type DataStore, ERRORS, type Locker, Metadata, type Upload } from '@tus/utils'
import { expiresAt, isExpired } from '../../../stores/expiry.js'
import { concatOf, isFinalUpload } from '../concat.js'
import { visibleMetadata } from '../reservedMetadata.js'
import { uploadIdOf } from '../uploadUrl.js'

/**
 * An upload as its last writer left it, or FILE_NO_LONGER_EXISTS once expired. Taking the lock asks a
 * stale PATCH that still holds it to let go, so a resuming client sees its final offset.
 */
export async function settledUpload(store: DataStore, locker: Locker, id: string, signal: AbortSignal, onRequestRelease = () => {}): Promise<Upload> {
  const lock = locker.newLock(id)
  await lock.lock(signal, onRequestRelease)
  const upload = await store.getUpload(id).finally(() => lock.unlock())
  if (isExpired(upload, store.getExpiration())) throw ERRORS.FILE_NO_LONGER_EXISTS
  return upload
}

/**
 * HEAD of an upload. Ours rather than `@tus/server`'s because that one never sends Upload-Expires
 * and answers 410 for finished uploads once their creation is older than the expiry period.
 */
export class HeadHandler extends EventEmitter {
  constructor(
    private readonly store: DataStore,
    private readonly locker: Locker,
  ) {
    super()
  }

  async send(req: Request, context: CancellationContext, headers = new Headers()): Promise<Response> {
    const id = uploadIdOf(req)
    if (!id) throw ERRORS.FILE_NOT_FOUND

    const upload = await settledUpload(this.store, this.locker, id, context.signal, () => context.cancel())
    const expiration = this.store.getExpiration()

    headers.set('Cache-Control', 'no-store')
    // A final upload has an offset only once it is assembled (tus concatenation).
    if (!isFinalUpload(upload) || upload.offset === upload.size) headers.set('Upload-Offset', String(upload.offset))
    const concat = concatOf(upload)
    if (concat) headers.set('Upload-Concat', concat)
    if (upload.sizeIsDeferred) headers.set('Upload-Defer-Length', '1')
    else headers.set('Upload-Length', String(upload.size))
    const metadata = visibleMetadata(upload.metadata) // never the reserved keys
    if (metadata) headers.set('Upload-Metadata', Metadata.stringify(metadata) ?? '')
    const expires = expiresAt(upload, expiration)
    if (expires) headers.set('Upload-Expires', expires.toUTCString())
    return new Response(null, { status: 200, headers })
  }
}
