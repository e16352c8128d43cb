import { open, rename } from 'node:fs/promises'
import path from 'node:path'

/**
 * Replaces `target` with `data` so that a crash leaves either the old file or the new one, never a torn
 * one: written to a temporary file, flushed, then renamed over it. With `syncDirectory` the rename is
 * flushed too, so the new file survives a power cut once this resolves.
 */
export async function writeFileAtomic(target: string, data: string, { mode = 0o666, syncDirectory = false } = {}): Promise<void> {
  const temp = `${target}.tmp`
  const handle = await open(temp, 'w', mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, target)
  if (syncDirectory) {
    const directory = await open(path.dirname(target), 'r')
    try {
      await directory.sync()
    } finally {
      await directory.close()
    }
  }
}
