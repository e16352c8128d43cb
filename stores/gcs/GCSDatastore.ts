import { PassThrough, type Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Bucket, File, FileMetadata } from '@google-cloud/storage'
import { GCSStore } from '@tus/gcs-store'
import { ERRORS, TUS_RESUMABLE, Upload } from '@tus/utils'
import { capabilities, dataStoreExtensions } from '../capabilities.js'
import { asStoreError, connectionErrorKind, StoreError, type StoreErrorKind } from '../errors.js'
import { expiredAmong } from '../expiry.js'
import type { ByteRange, Orphan, StoreCapabilities } from '../types.js'
import { isUploadId } from '../uploadId.js'

type CustomMetadata = NonNullable<FileMetadata['metadata']>

const isNotFound = (error: unknown) => (error as { code?: unknown }).code === 404
// GCS's largest object.
const MAX_OBJECT_SIZE = 5 * 1024 ** 4
const PATCH = '_patch'

const olderThan = ({ updated }: FileMetadata, ageMs: number) => updated !== undefined && Date.now() - new Date(updated).getTime() >= ageMs

/** The StoreError kind of a GCS client error, if it has one: 5xx, 429 or unreachable is 'unavailable'. */
export function gcsErrorKind(error: unknown): StoreErrorKind | undefined {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'number' && (code >= 500 || code === 429)) return 'unavailable'
  return connectionErrorKind(error)
}

/**
 * `@tus/gcs-store`'s layout (one object per upload; a PATCH after the first goes to `<id>_patch`
 * and is composed onto it; the upload's info in the object's custom metadata) with what it lacks:
 *
 * - the creation date is kept (upstream loses it, so every HEAD saw a new one), which makes
 *   `expiration` possible; expired uploads are found in one listing of the bucket;
 * - DELETE removes the upload (termination);
 * - a failed first PATCH no longer deletes the upload's own object (upstream removes its
 *   destination on error, and the first PATCH's destination is the upload itself);
 * - ranged reads for downloads.
 */
export class GCSDatastore extends GCSStore {
  private readonly expirationMs: number
  readonly capabilities: StoreCapabilities

  constructor({ bucket, expirationMs }: { bucket: Bucket; expirationMs: number }) {
    super({ bucket })
    this.expirationMs = expirationMs
    this.capabilities = capabilities({ creationDeferLength: true, termination: true, expiresAfterMs: expirationMs, maxSize: MAX_OBJECT_SIZE })
    this.extensions = dataStoreExtensions(this.capabilities)
  }

  override getExpiration(): number {
    return this.expirationMs
  }

  private file(id: string): File {
    if (!isUploadId(id)) throw ERRORS.FILE_NOT_FOUND
    return this.bucket.file(id)
  }

  /** Upstream's keys, plus `creation_date`. */
  private static customMetadata(upload: Upload): CustomMetadata {
    return {
      tus_version: TUS_RESUMABLE,
      size: upload.size ?? null,
      sizeIsDeferred: `${upload.sizeIsDeferred}`,
      offset: upload.offset,
      metadata: JSON.stringify(upload.metadata),
      storage: JSON.stringify(upload.storage),
      creation_date: upload.creation_date ?? null,
    }
  }

  /** The upload an object holds: its info from the custom metadata, its offset from the object's size. */
  private static uploadOf(id: string, object: FileMetadata, bucket: string): Upload {
    const custom = object.metadata
    if (!custom?.tus_version) throw ERRORS.FILE_NOT_FOUND
    const { size, metadata, creation_date } = custom
    const upload = new Upload({
      id,
      size: size === null || size === undefined || size === '' ? undefined : Number(size),
      offset: Number(object.size ?? 0),
      metadata: typeof metadata === 'string' && metadata ? JSON.parse(metadata) : undefined,
      storage: { type: 'gcs', path: id, bucket },
      creation_date: typeof creation_date === 'string' ? creation_date : undefined,
    })
    // An upload made by upstream has no date: it never expires, rather than always looking new.
    if (typeof creation_date !== 'string') upload.creation_date = undefined
    return upload
  }

  /** One object, written only where none is (generation 0), else a StoreError 'exists' and the object unchanged. */
  override async create(upload: Upload): Promise<Upload> {
    upload.storage = { type: 'gcs', path: upload.id, bucket: this.bucket.name }
    const empty = new PassThrough()
    empty.end()
    const metadata = { metadata: GCSDatastore.customMetadata(upload) }
    try {
      await pipeline(empty, this.file(upload.id).createWriteStream({ resumable: false, metadata, preconditionOpts: { ifGenerationMatch: 0 } }))
    } catch (error) {
      if ((error as { code?: unknown }).code === 412) throw new StoreError('exists', `upload ${upload.id} exists`, { cause: error })
      throw asStoreError(error, gcsErrorKind)
    }
    return upload
  }

  override async getUpload(id: string): Promise<Upload> {
    try {
      const [object] = await this.file(id).getMetadata()
      return GCSDatastore.uploadOf(id, object, this.bucket.name)
    } catch (error) {
      throw isNotFound(error) ? ERRORS.FILE_NOT_FOUND : asStoreError(error, gcsErrorKind)
    }
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    const upload = await this.getUpload(id)
    upload.size = length
    await this.file(id).setMetadata({ metadata: GCSDatastore.customMetadata(upload) })
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const upload = await this.getUpload(id)
    if (upload.offset !== offset) throw ERRORS.INVALID_OFFSET
    const file = this.file(id)
    // The first bytes replace the empty object; later ones go beside it and are composed onto it.
    const direct = offset === 0
    const destination = direct ? file : this.bucket.file(`${id}${PATCH}`)
    const metadata = { metadata: GCSDatastore.customMetadata(upload) }
    let received = 0
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length
        done(null, chunk)
      },
    })
    try {
      // An object appears only when its upload completes: a failed stream leaves the old one as it was.
      await pipeline(readable, count, destination.createWriteStream({ metadata }))
    } catch (error) {
      if (!direct) await destination.delete({ ignoreNotFound: true }).catch(() => undefined)
      throw asStoreError(error, gcsErrorKind)
    }
    if (!direct) {
      if (received > 0) {
        await this.bucket.combine([file, destination], file)
        // Composing drops custom metadata: it is written back at once.
        await file.setMetadata(metadata)
      }
      await destination.delete({ ignoreNotFound: true })
    }
    return offset + received
  }

  override async remove(id: string): Promise<void> {
    try {
      await this.file(id).delete()
    } catch (error) {
      throw isNotFound(error) ? ERRORS.FILE_NOT_FOUND : error
    }
    await this.bucket.file(`${id}${PATCH}`).delete({ ignoreNotFound: true })
  }

  readRange(id: string, range?: ByteRange): Readable {
    return this.file(id).createReadStream(range ? { start: range.start, end: range.end } : {})
  }

  /** Every object of the bucket, a page at a time, with its metadata. */
  private async *objects(): AsyncGenerator<File> {
    let query: { autoPaginate: false; maxResults: number; pageToken?: string } | undefined = {
      autoPaginate: false,
      maxResults: 1000,
    }
    while (query) {
      const [files, next]: [File[], { pageToken?: string } | null | undefined, unknown] = await this.bucket.getFiles(query)
      yield* files
      query = next?.pageToken ? { ...query, pageToken: next.pageToken } : undefined
    }
  }

  /** Unfinished uploads whose expiry has passed, from a listing of the bucket (info comes with it). */
  expiredIds(now = Date.now()): Promise<string[]> {
    return expiredAmong(this.objects(), (object) => GCSDatastore.uploadOf(object.name, object.metadata, this.bucket.name), this.expirationMs, now)
  }

  /** `<id>_patch` objects unchanged for `graceMs`: a write stopped between storing its bytes and composing them. */
  async orphans(graceMs: number): Promise<Orphan[]> {
    const found: Orphan[] = []
    for await (const object of this.objects()) {
      const id = object.name.endsWith(PATCH) ? object.name.slice(0, -PATCH.length) : undefined
      if (id && isUploadId(id) && olderThan(object.metadata, graceMs)) found.push({ id, key: object.name, kind: 'patch-object' })
    }
    return found
  }

  /** Removes a leftover `_patch` object still unchanged for `graceMs` (its upload's lock is held, so no write is using it). */
  async removeOrphan(orphan: Orphan, graceMs: number): Promise<boolean> {
    if (orphan.kind !== 'patch-object' || orphan.key !== `${orphan.id}${PATCH}`) return false
    const patch = this.bucket.file(orphan.key)
    let metadata: FileMetadata
    try {
      ;[metadata] = await patch.getMetadata()
    } catch (error) {
      if (isNotFound(error)) return false
      throw asStoreError(error, gcsErrorKind)
    }
    if (!olderThan(metadata, graceMs)) return false
    await patch.delete({ ignoreNotFound: true })
    return true
  }

  /** Resolves when the bucket exists and answers within `timeoutMs`; rejects with the reason otherwise. */
  async checkBucket(timeoutMs: number): Promise<void> {
    const name = this.bucket.name
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    let answer: [boolean] | 'timeout'
    try {
      answer = await Promise.race([this.bucket.exists(), timedOut])
    } catch (error) {
      throw new Error(`bucket '${name}' is not usable: ${(error as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
    if (answer === 'timeout') throw new Error(`bucket '${name}' did not answer within ${timeoutMs} ms`)
    if (!answer[0]) throw new Error(`bucket '${name}' does not exist`)
  }
}
