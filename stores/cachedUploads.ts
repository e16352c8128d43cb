import type { Readable } from 'node:stream'
import { DataStore, Upload } from '@tus/utils'

/**
 * Bytes of upload info the cache keeps (an estimate: ids, metadata, a fixed overhead per entry): a
 * few thousand uploads with ordinary metadata, and a bound even when every upload carries a lot.
 */
const DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024
const ENTRY_OVERHEAD_BYTES = 256

function weigh(upload: Upload): number {
  let bytes = ENTRY_OVERHEAD_BYTES + upload.id.length
  for (const [key, value] of Object.entries(upload.metadata ?? {})) bytes += key.length + (value?.length ?? 0)
  return bytes
}

/** A copy, so that what a caller does with its upload never changes the cached one. */
function copy(upload: Upload): Upload {
  return new Upload({
    ...upload,
    metadata: upload.metadata && { ...upload.metadata },
    storage: upload.storage && { ...upload.storage },
  })
}

/**
 * A store's uploads' info (size, metadata, creation date, offset) kept in memory, so that HEAD and
 * the PATCH's offset check need no disk: under load the store's file reads queue behind the writes
 * and fsyncs of every other upload on libuv's few threads.
 *
 * Correct while this process is the uploads' only writer: every change goes through here
 * (create, write, declareUploadLength, remove), and an offset is recorded once its write has
 * completed (flushed to disk, with FILE_FSYNC). A miss, after a restart or an eviction, reads the
 * store. Hence used with the file store and the memory locker only, which already rule out a second
 * instance on the same FILE_DIR (with LOCKER=redis the store is read every time).
 *
 * With `offsetOf` (workers of one instance writing the same uploads, WORKERS > 1) only what cannot
 * change is kept: an upload's info once its length is known; its offset is read from the store each
 * time (another worker may have written), and one another worker removed is gone here too.
 *
 * Least recently used entries go first once the entries' estimated size passes the budget.
 */
export class CachedUploads extends DataStore {
  private readonly entries = new Map<string, { upload: Upload; bytes: number }>()
  private bytes = 0
  /** Reads from the store in progress, shared by concurrent misses; a change to the upload drops its read. */
  private readonly reads = new Map<string, Promise<Upload>>()

  constructor(
    private readonly store: DataStore,
    private readonly budgetBytes = DEFAULT_BUDGET_BYTES,
    /** The upload's offset now, from the store itself (throws for an upload that is gone). */
    private readonly offsetOf?: (id: string) => number,
  ) {
    super()
    this.extensions = store.extensions
  }

  override async getUpload(id: string): Promise<Upload> {
    const entry = this.entries.get(id)
    if (entry) {
      // Most recently used goes last; eviction takes the first.
      this.entries.delete(id)
      this.entries.set(id, entry)
      return this.fresh(copy(entry.upload))
    }
    let read = this.reads.get(id)
    if (!read) {
      const started = this.store.getUpload(id)
      read = started
      this.reads.set(id, started)
      started.then(
        (upload) => {
          // A change that came while reading makes what was read stale.
          if (this.reads.get(id) !== started) return
          this.reads.delete(id)
          this.remember(upload)
        },
        () => {
          if (this.reads.get(id) === started) this.reads.delete(id)
        },
      )
    }
    // A shared read may have begun before another worker's write.
    return this.fresh(copy(await read))
  }

  private fresh(upload: Upload): Upload {
    if (!this.offsetOf) return upload
    try {
      upload.offset = this.offsetOf(upload.id)
    } catch (error) {
      this.forget(upload.id)
      throw error
    }
    return upload
  }

  override async create(upload: Upload): Promise<Upload> {
    try {
      const created = await this.store.create(upload)
      this.remember(created)
      return created
    } catch (error) {
      this.forget(upload.id)
      throw error
    }
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    try {
      const end = await this.store.write(stream, id, offset)
      this.reads.delete(id)
      const entry = this.entries.get(id)
      if (entry) entry.upload.offset = end
      return end
    } catch (error) {
      // Some bytes may have reached the disk: only the store knows the offset now.
      this.forget(id)
      throw error
    }
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    try {
      await this.store.declareUploadLength(id, length)
      this.reads.delete(id)
      const entry = this.entries.get(id)
      if (entry) entry.upload.size = length
    } catch (error) {
      this.forget(id)
      throw error
    }
  }

  override async remove(id: string): Promise<void> {
    try {
      await this.store.remove(id)
    } finally {
      this.forget(id)
    }
  }

  override async deleteExpired(): Promise<number> {
    try {
      return await this.store.deleteExpired()
    } finally {
      // The store removed uploads without telling us which.
      this.entries.clear()
      this.reads.clear()
      this.bytes = 0
    }
  }

  override getExpiration(): number {
    return this.store.getExpiration()
  }

  private remember(upload: Upload): void {
    this.forget(upload.id)
    // Another worker may declare the length: such an upload's info is read afresh every time.
    if (this.offsetOf && upload.size === undefined) return
    const entry = { upload: copy(upload), bytes: weigh(upload) }
    this.entries.set(upload.id, entry)
    this.bytes += entry.bytes
    for (const [oldest, { bytes }] of this.entries) {
      if (this.bytes <= this.budgetBytes) break
      this.entries.delete(oldest)
      this.bytes -= bytes
    }
  }

  /** Drops what is known of an upload: for a change made to it past this cache (a truncate, an assembly). */
  forget(id: string): void {
    this.reads.delete(id)
    const entry = this.entries.get(id)
    if (!entry) return
    this.entries.delete(id)
    this.bytes -= entry.bytes
  }
}
