import { mkdir, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { StoreModule } from '../types.js'
import { FileDatastore } from './FileDatastore.js'

/** Uploads as files in a local folder (FILE_DIR): the default, needing no other service. */
export const fileStore: StoreModule = {
  name: 'file',
  async create(config) {
    const directory = path.resolve(config.FILE_DIR)
    await mkdir(directory, { recursive: true })
    const datastore = new FileDatastore({ directory, expirationMs: config.UPLOAD_EXPIRES_AFTER, fsync: config.FILE_FSYNC })
    return {
      datastore,
      async health() {
        // Writability is what matters: a read-only or full disk fails here, not on the next PATCH.
        const probe = path.join(directory, `.ready-${process.pid}`)
        await writeFile(probe, 'ok')
        await rm(probe)
      },
      expiredUploadIds: () => datastore.expiredIds(),
      download: async (id, range) => datastore.readRange(id, range),
      listFinished: (limit, where) => datastore.finishedUploads(limit, where),
      concatenate: (finalId, partials) => datastore.concatenate(finalId, partials),
      truncate: (id, offset) => datastore.truncate(id, offset),
      close: async () => {},
    }
  },
}
