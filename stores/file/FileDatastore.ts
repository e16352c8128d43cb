import { createReadStream, createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { FileStore } from '@tus/file-store'
import { ERRORS, type Upload } from '@tus/utils'
import { extensionsWithExpiry, isExpired } from '../expiry.js'
import { finishedAmong } from '../listing.js'
import type { ByteRange } from '../types.js'
import { isUploadId } from '../uploadId.js'
import { AtomicFileKvStore } from './AtomicFileKvStore.js'

/** How many uploads the listing reads at once (each is an info file read and a stat). */
const LIST_BATCH = 64

interface Options {
  directory: string
  expirationMs: number
  fsync: boolean
}

/**
 * `@tus/file-store` with what a crash-safe service needs: an atomic info file, bytes flushed to
 * disk before their offset is acknowledged, ranged reads, a list of expired uploads that spares finished ones
 * (the upstream sweep compares against the offset recorded at creation, so it would remove them too), and a
 * list of finished uploads.
 */
export class FileDatastore extends FileStore {
  private readonly fsync: boolean

  constructor({ directory, expirationMs, fsync }: Options) {
    super({ directory, configstore: new AtomicFileKvStore(directory), expirationPeriodInMilliseconds: expirationMs })
    this.fsync = fsync
    this.extensions = extensionsWithExpiry(expirationMs)
  }

  pathOf(id: string): string {
    if (!isUploadId(id)) throw ERRORS.FILE_NOT_FOUND
    return `${this.directory}/${id}`
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return this.writeAt(readable, id, offset)
  }

  /** Streams the partials into the final upload's file one after another, flushed as FILE_FSYNC says. */
  async concatenate(finalId: string, partials: Upload[]): Promise<void> {
    let offset = 0
    for (const partial of partials) offset = await this.writeAt(this.readRange(partial.id), finalId, offset)
  }

  // Not `write`, which the host wraps to count the bytes clients send.
  private async writeAt(readable: Readable, id: string, offset: number): Promise<number> {
    const file = createWriteStream(this.pathOf(id), { flags: 'r+', start: offset, flush: this.fsync })
    try {
      await pipeline(readable, file)
    } catch (error) {
      // The cause (ENOSPC, EDQUOT) says what the client is told.
      throw { ...ERRORS.FILE_WRITE_ERROR, cause: error }
    }
    return offset + file.bytesWritten
  }

  /** Cuts the upload's file back to `offset` bytes (its offset), flushed like a write. */
  async truncate(id: string, offset: number): Promise<void> {
    const file = await open(this.pathOf(id), 'r+')
    try {
      await file.truncate(offset)
      if (this.fsync) await file.sync()
    } finally {
      await file.close()
    }
  }

  readRange(id: string, range?: ByteRange): Readable {
    return createReadStream(this.pathOf(id), range)
  }

  /** Unfinished uploads whose expiry has passed. */
  async expiredIds(now = Date.now()): Promise<string[]> {
    const expired: string[] = []
    for (const id of (await this.configstore.list?.()) ?? []) {
      const upload = await this.getUpload(id).catch(() => undefined)
      if (upload && isExpired(upload, this.getExpiration(), now)) expired.push(id)
    }
    return expired
  }

  /**
   * Finished uploads (offset === size), newest first by creation date, at most `limit`. Every upload's
   * info is read (the creation date lives there), a batch at a time; one that vanishes meanwhile is skipped.
   */
  async finishedUploads(limit: number, where?: (upload: Upload) => boolean): Promise<Upload[]> {
    const ids = ((await this.configstore.list?.()) ?? []).filter(isUploadId)
    return finishedAmong(ids, (id) => this.getUpload(id), { limit, batch: LIST_BATCH, where })
  }
}
