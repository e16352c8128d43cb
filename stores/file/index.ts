import { statSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ERRORS } from '@tus/utils'
import type { StoreModule } from '../types.js'
import { FileDatastore, type FileStoreSettings } from './FileDatastore.js'
import { fileWaitingFinals } from './waitingFinals.js'

export type { FileStoreSettings }

/** An upload's offset as its file's size (FILE_NOT_FOUND once it is gone). */
function fileSize(file: string): number {
  const stats = statSync(file, { throwIfNoEntry: false })
  if (!stats) throw ERRORS.FILE_NOT_FOUND
  return stats.size
}

/** Uploads as files in a local folder: the default, needing no other service. */
export const fileStore: StoreModule<FileStoreSettings> = {
  name: 'file',
  async create(settings) {
    const directory = path.resolve(settings.directory)
    await mkdir(directory, { recursive: true })
    const files = new FileDatastore({ ...settings, directory })
    return {
      datastore: files,
      capabilities: files.capabilities,
      // A stat on the event loop: microseconds, never queued behind other uploads' writes on libuv's threads.
      offsetOf: (id) => fileSize(files.pathOf(id)),
      async health() {
        // Writability is what matters: a read-only or full disk fails here, not on the next PATCH.
        const probe = path.join(directory, `.ready-${process.pid}`)
        await writeFile(probe, 'ok')
        await rm(probe)
      },
      expiredUploadIds: (now) => files.expiredIds(now),
      download: async (id, range) => files.readRange(id, range),
      listFinished: (limit, where) => files.finishedUploads(limit, where),
      concatenate: (finalId, partials) => files.concatenate(finalId, partials),
      waitingFinals: fileWaitingFinals(directory),
      truncate: (id, offset) => files.truncate(id, offset),
      orphans: (graceMs) => files.orphans(graceMs),
      removeOrphan: (orphan, graceMs) => files.removeOrphan(orphan, graceMs),
      close: async () => {},
    }
  },
}
