import { readdir } from 'node:fs/promises'
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

  /**
   * The ids with both their data (or link) and their info file. Upstream pairs neighbours in sorted
   * order, which a name between `<id>` and `<id>.json` (a placed `<id> x`) would break.
   */
  override async list(): Promise<string[]> {
    const names = new Set(await readdir(this.directory))
    const ids = [...names].filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -'.json'.length))
    return ids.filter((id) => isUploadId(id) && names.has(id)).sort()
  }

  infoPath(key: string): string {
    if (!isUploadId(key)) throw ERRORS.FILE_NOT_FOUND
    return path.join(this.directory, `${key}.json`)
  }
}
