import { mkdir, open, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { ERRORS } from '@tus/utils'
import type { WaitingFinals } from '../types.js'
import { isUploadId } from '../uploadId.js'

/** The folder, inside the store's, holding one empty file `<partial id>.<final id>` per final waiting for a partial. */
export const WAITING_DIR = '.waiting'

/** Which finals wait for which partials, as empty files: creating or removing one is atomic on its own. */
export function fileWaitingFinals(directory: string): WaitingFinals {
  const folder = path.join(directory, WAITING_DIR)
  const entry = (partialId: string, finalId: string) => {
    if (!isUploadId(partialId) || !isUploadId(finalId)) throw ERRORS.FILE_NOT_FOUND
    return path.join(folder, `${partialId}.${finalId}`)
  }
  const entries = () =>
    readdir(folder).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return []
      throw error
    })
  return {
    async add(partialId, finalId) {
      const file = entry(partialId, finalId)
      await mkdir(folder, { recursive: true })
      await (await open(file, 'w')).close()
    },
    async finalsOf(partialId) {
      const prefix = `${partialId}.`
      return (await entries()).filter((name) => name.startsWith(prefix)).map((name) => name.slice(prefix.length))
    },
    async partials() {
      return [...new Set((await entries()).map((name) => name.split('.')[0]).filter(isUploadId))]
    },
    async remove(partialId, finalId) {
      await rm(entry(partialId, finalId), { force: true })
    },
  }
}
