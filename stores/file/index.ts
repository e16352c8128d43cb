import cluster from 'node:cluster'
import { statSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ERRORS } from '@tus/utils'
import { CachedUploads } from '../cachedUploads.js'
import type { StoreModule } from '../types.js'
import { FileDatastore } from './FileDatastore.js'

/** An upload's offset as its file's size (FILE_NOT_FOUND once it is gone). */
function fileSize(file: string): number {
  const stats = statSync(file, { throwIfNoEntry: false })
  if (!stats) throw ERRORS.FILE_NOT_FOUND
  return stats.size
}

/** Uploads as files in a local folder (FILE_DIR): the default, needing no other service. */
export const fileStore: StoreModule = {
  name: 'file',
  async create(config) {
    const directory = path.resolve(config.FILE_DIR)
    await mkdir(directory, { recursive: true })
    const files = new FileDatastore({ directory, expirationMs: config.UPLOAD_EXPIRES_AFTER, fsync: config.FILE_FSYNC })
    // With the memory locker this instance is the only writer, so upload info can live in memory; its
    // workers (WORKERS > 1) share the uploads, so each reads the offset from the file (a stat on the
    // event loop: microseconds, and never queued behind other uploads' writes on libuv's threads).
    const cache = config.LOCKER === 'memory' ? new CachedUploads(files, undefined, cluster.isWorker ? (id) => fileSize(files.pathOf(id)) : undefined) : undefined
    return {
      datastore: cache ?? files,
      async health() {
        // Writability is what matters: a read-only or full disk fails here, not on the next PATCH.
        const probe = path.join(directory, `.ready-${process.pid}`)
        await writeFile(probe, 'ok')
        await rm(probe)
      },
      expiredUploadIds: () => files.expiredIds(),
      download: async (id, range) => files.readRange(id, range),
      listFinished: (limit, where) => files.finishedUploads(limit, where),
      // Both change an upload behind the cache's back: it reads the upload afresh afterwards.
      concatenate: (finalId, partials) => files.concatenate(finalId, partials).finally(() => cache?.forget(finalId)),
      truncate: (id, offset) => files.truncate(id, offset).finally(() => cache?.forget(id)),
      close: async () => {},
    }
  },
}
