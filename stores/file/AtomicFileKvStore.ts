import { open, rename } from 'node:fs/promises'
import path from 'node:path'
import { ERRORS, FileKvStore, type Upload } from '@tus/utils'
import { isUploadId } from '../uploadId.js'

/**
 * The upload's info file, replaced atomically: a crash while writing it (as when the length of a
 * deferred-length upload is declared) leaves the old info, never an empty file that loses the upload.
 */
export class AtomicFileKvStore extends FileKvStore<Upload> {
  override async set(key: string, value: Upload): Promise<void> {
    if (!isUploadId(key)) throw ERRORS.FILE_NOT_FOUND
    const target = path.join(this.directory, `${key}.json`)
    const temp = `${target}.tmp`
    const handle = await open(temp, 'w')
    try {
      await handle.writeFile(JSON.stringify(value))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, target)
  }
}
