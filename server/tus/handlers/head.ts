import { EventEmitter } from 'node:events'
import { type CancellationContext, type DataStore, ERRORS, type Locker, Metadata } from '@tus/utils'
import { expiresAt, isExpired } from '../../../stores/expiry.js'
import { concatOf, isFinalUpload } from '../concat.js'
import { visibleMetadata } from '../reservedMetadata.js'
import { uploadIdOf } from '../uploadUrl.js'

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

    // Taking the lock asks a stale PATCH that still holds it to let go, so a resuming client sees its final offset.
    const lock = this.locker.newLock(id)
    await lock.lock(context.signal, () => context.cancel())
    const upload = await this.store.getUpload(id).finally(() => lock.unlock())

    const expiration = this.store.getExpiration()
    if (isExpired(upload, expiration)) throw ERRORS.FILE_NO_LONGER_EXISTS

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
