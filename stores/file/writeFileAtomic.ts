import { constants } from 'node:fs'
import { copyFile, link, open, rename, unlink } from 'node:fs/promises'
import path from 'node:path'

/**
 * Replaces `target` with `data` so that a crash leaves either the old file or the new one, never a torn
 * one: written to a temporary file (`<target>.tmp`), flushed, then renamed over it. With `syncDirectory`
 * the rename is flushed too, so the new file survives a power cut once this resolves. With `exclusive`
 * an existing `target` is never replaced: this rejects with EEXIST instead. The temporary file is
 * removed whatever happens (one unlink, no stat: this runs on every creation).
 */
export async function writeFileAtomic(target: string, data: string, { mode = 0o666, syncDirectory = false, exclusive = false } = {}): Promise<void> {
  const temp = `${target}.tmp`
  try {
    const handle = await open(temp, 'w', mode)
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    if (exclusive) {
      await linkExclusive(temp, target)
      // The info exists from here on; a temporary file left behind is the sweeper's (a 'temporary-info').
      await unlink(temp).catch(() => undefined)
    } else {
      await rename(temp, target)
    }
  } catch (error) {
    await unlink(temp).catch(() => undefined)
    throw error
  }
  if (syncDirectory) {
    const directory = await open(path.dirname(target), 'r')
    try {
      await directory.sync()
    } finally {
      await directory.close()
    }
  }
}

/** A hard link fails if `target` exists, atomically; where links are refused, an exclusive copy does. */
async function linkExclusive(temp: string, target: string): Promise<void> {
  try {
    await link(temp, target)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw error
    await copyFile(temp, target, constants.COPYFILE_EXCL)
  }
}
