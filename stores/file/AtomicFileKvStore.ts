import path from 'node:path'
import { ERRORS, FileKvStore, type Upload } from '@tus/utils'
import { isUploadId } from '../uploadId.js'
import { writeFileAtomic } from './writeFileAtomic.js'

/**
 * The upload's info file, replaced atomically: a crash while writing it (as when the length of a
 * deferred-length upload is declared) leaves the old info, never an empty file that loses the upload.
 */
export class AtomicFileKvStore extends FileKvStore<Upload> {
  override async set(key: string, value: Upload): Promise<void> {
    await writeFileAtomic(this.infoPath(key), JSON.stringify(value))
  }

  /** As `set`, for a new upload: rejects with EEXIST, changing nothing, when the info file exists. */
  async create(key: string, value: Upload): Promise<void> {
    await writeFileAtomic(this.infoPath(key), JSON.stringify(value), { exclusive: true })
  }

  infoPath(key: string): string {
    if (!isUploadId(key)) throw ERRORS.FILE_NOT_FOUND
    return path.join(this.directory, `${key}.json`)
  }
}
