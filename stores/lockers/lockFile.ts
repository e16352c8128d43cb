import { randomBytes } from 'node:crypto'
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises'
import { hostname } from 'node:os'

// The file operations of the file locker, each atomic on its own: a lock file `<name>.lock` holds its
// holder's token (and, for an operator, its pid and host); its modification time is the holder's last
// sign of life.

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code

export const newToken = (): string => randomBytes(16).toString('hex')

/** Creates the lock file holding `token`, only if absent: false when it exists (someone holds the lock). */
export async function createLockFile(file: string, token: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(file, 'wx')
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return false
    throw error
  }
  try {
    await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), token }))
  } catch (error) {
    // Created but not written (a full disk): ours, so it is ours to remove.
    await handle.close().catch(() => undefined)
    await unlink(file).catch(() => undefined)
    throw error
  }
  await handle.close()
  return true
}

/** The token a lock file holds; undefined when it is gone or still being written. */
export async function tokenIn(file: string): Promise<string | undefined> {
  try {
    const { token } = JSON.parse(await readFile(file, 'utf8')) as { token?: unknown }
    return typeof token === 'string' ? token : undefined
  } catch {
    return undefined
  }
}

/** Milliseconds since the lock file was last refreshed (created or touched); undefined when it is gone. */
export async function ageOf(file: string): Promise<number | undefined> {
  try {
    return Date.now() - (await stat(file)).mtimeMs
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined
    throw error
  }
}

/** The holder's sign of life. */
export async function refreshLockFile(file: string): Promise<void> {
  const now = new Date()
  await utimes(file, now, now)
}

/**
 * Removes the lock file when `isTheOne` accepts what it holds. It is first renamed aside (atomic), so
 * what is judged is what gets removed, never a lock file created meanwhile; one that is not the one is
 * put back, unless a new lock file took its place in that instant (its holder then finds its lock gone
 * at its next refresh and is asked to let go).
 */
export async function removeLockFileIf(file: string, isTheOne: (found: { token?: string; ageMs: number }) => boolean): Promise<boolean> {
  const aside = `${file}.${newToken()}.aside`
  try {
    await rename(file, aside)
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false
    throw error
  }
  const [token, ageMs] = await Promise.all([tokenIn(aside), ageOf(aside)])
  const removed = isTheOne({ token, ageMs: ageMs ?? 0 })
  if (!removed) await link(aside, file).catch(() => undefined)
  await unlink(aside).catch(() => undefined)
  return removed
}

/** Asks whoever holds the lock to let go: the release file exists (created if missing). */
export async function askRelease(file: string): Promise<void> {
  await (await open(file, 'a')).close()
}

export async function releaseAsked(file: string): Promise<boolean> {
  return (await ageOf(file)) !== undefined
}
