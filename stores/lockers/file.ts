import { createHash } from 'node:crypto'
import { type FSWatcher, watch } from 'node:fs'
import { mkdir, readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils'
import type { LockerModule } from '../types.js'
import { KeyedSets } from './keyedSets.js'
import { ageOf, askRelease, createLockFile, newToken, refreshLockFile, releaseAsked, removeLockFileIf, tokenIn } from './lockFile.js'
import { jitter, Waiter } from './waiter.js'

/** A waiter's first look again at a taken lock; it doubles up to the longest. */
const FIRST_POLL_MS = 10
const LONGEST_POLL_MS = 250
/** How often a holder looks for a release request, where the folder cannot be watched (a network file system). */
const RELEASE_POLL_MS = 250
/** How often the folder is swept of what crashed holders and abandoned uploads left (at least every LOCK_TTL). */
const SWEEP_EVERY_MS = 10 * 60 * 1000

const PLAIN_NAME = /^[A-Za-z0-9_-]{1,128}$/

/** An id as a file name: itself when plain (every upload id is), else a digest ('~' is in no plain one). */
function fileNameOf(id: string): string {
  return PLAIN_NAME.test(id) ? id : `~${createHash('sha256').update(id).digest('hex')}`
}

export interface FileLockerSettings {
  /** The folder of the lock files, shared by every process that locks the same uploads. */
  dir: string
  /** How long `lock()` waits for a taken lock before ERR_LOCK_TIMEOUT. */
  timeoutMs: number
  /** A lock file not refreshed for this long is stale (its holder died) and may be taken over. */
  ttlMs: number
}

/**
 * Locks as files in a folder that several processes share (one machine, or a shared volume), as
 * tusd's file locker: `<id>.lock` is created only if absent and refreshed by its holder every TTL/3;
 * one older than the TTL belongs to a dead holder and is taken over. A waiter asks the holder to let
 * go by creating `<id>.release`, which the holder notices through a watch on the folder (at once, on
 * a local file system) or its own poll. The holders' clocks must agree to well within the TTL.
 */
export class FileLocker implements Locker {
  readonly refreshEveryMs: number
  readonly tickMs: number
  /** Locks this process holds, by file name. */
  private readonly held = new KeyedSets<FileLock>()
  /** Wake-ups of this process's lock() calls waiting for a file name. */
  private readonly waiters = new KeyedSets<() => void>()
  private readonly watcher?: FSWatcher
  private readonly sweeper: NodeJS.Timeout
  private closed = false

  constructor(readonly settings: FileLockerSettings) {
    this.refreshEveryMs = Math.max(1, Math.floor(settings.ttlMs / 3))
    this.tickMs = Math.min(RELEASE_POLL_MS, this.refreshEveryMs)
    this.watcher = this.watch()
    this.sweeper = setInterval(() => void this.sweep().catch(() => undefined), Math.max(SWEEP_EVERY_MS, settings.ttlMs))
    this.sweeper.unref()
  }

  newLock(id: string): Lock {
    return new FileLock(this, fileNameOf(id))
  }

  /**
   * Removes what no holder refreshes any more, once older than the TTL: a dead holder's lock of an upload
   * nobody resumed, a lock file set aside by a crash mid-takeover, a release request with no lock. A
   * stale lock is judged again once set aside, as a takeover is, so a fresh one is never removed.
   */
  async sweep(): Promise<number> {
    const { dir, ttlMs } = this.settings
    let removed = 0
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, name)
      const age = await ageOf(file).catch(() => undefined)
      if (age === undefined || age <= ttlMs) continue
      if (name.endsWith('.lock')) {
        if (await removeLockFileIf(file, (found) => found.ageMs > ttlMs).catch(() => false)) removed++
      } else if (
        name.endsWith('.aside') ||
        (name.endsWith('.release') && (await ageOf(this.lockFile(name.slice(0, -'.release'.length))).catch(() => 0)) === undefined)
      ) {
        await rm(file, { force: true })
        removed++
      }
    }
    return removed
  }

  /** Stops refreshing: locks still held are not removed, they go stale within the TTL. */
  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweeper)
    this.watcher?.close()
    for (const lock of this.held.all()) lock.stop()
    this.held.clear()
    for (const wake of this.waiters.all()) wake()
  }

  get isClosed(): boolean {
    return this.closed
  }

  lockFile(name: string): string {
    return path.join(this.settings.dir, `${name}.lock`)
  }

  releaseFile(name: string): string {
    return path.join(this.settings.dir, `${name}.release`)
  }

  addHeld(lock: FileLock): void {
    this.held.add(lock.name, lock)
  }

  removeHeld(lock: FileLock): void {
    this.held.delete(lock.name, lock)
  }

  addWaiter(name: string, wake: () => void): () => void {
    this.waiters.add(name, wake)
    return () => void this.waiters.delete(name, wake)
  }

  wake(name: string): void {
    for (const wake of this.waiters.get(name)) wake()
  }

  /** Hears of release requests and removed locks at once where the file system tells; the polls remain. */
  private watch(): FSWatcher | undefined {
    try {
      const watcher = watch(this.settings.dir, { persistent: false }, (_event, file) => {
        if (typeof file !== 'string') return
        if (file.endsWith('.release')) {
          for (const lock of this.held.get(file.slice(0, -'.release'.length))) void lock.checkRelease()
        } else if (file.endsWith('.lock')) {
          this.wake(file.slice(0, -'.lock'.length))
        }
      })
      watcher.on('error', () => watcher.close())
      return watcher
    } catch {
      return undefined
    }
  }
}

type State = 'idle' | 'acquiring' | 'held' | 'lost'

class FileLock implements Lock {
  private state: State = 'idle'
  private token?: string
  private requestRelease?: RequestRelease
  private asked = false
  private timer?: NodeJS.Timeout
  private refreshedAt = 0

  constructor(
    private readonly locker: FileLocker,
    readonly name: string,
  ) {}

  private get file(): string {
    return this.locker.lockFile(this.name)
  }

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    if (this.state !== 'idle') throw new Error(`lock ${this.name} is already ${this.state}`)
    this.state = 'acquiring'
    try {
      this.token = await this.acquire(signal)
    } catch (error) {
      this.state = 'idle'
      throw error
    }
    this.state = 'held'
    this.requestRelease = requestRelease
    this.asked = false
    this.refreshedAt = Date.now()
    this.locker.addHeld(this)
    this.schedule()
    // A request that came while this lock was taken (e.g. by another waiter) is looked at now.
    void this.checkRelease()
  }

  async unlock(): Promise<void> {
    if (this.state !== 'held' && this.state !== 'lost') throw new Error('Releasing an unlocked lock!')
    const ours = this.state === 'held'
    const token = this.token
    this.stop()
    this.locker.removeHeld(this)
    try {
      // A lost lock's file (and release request) are another holder's now.
      if (ours && (await tokenIn(this.file)) === token) {
        await rm(this.locker.releaseFile(this.name), { force: true })
        await removeLockFileIf(this.file, (found) => found.token === token)
      }
    } catch {
      // The folder is unreachable: the lock goes stale within the TTL, as a dead holder's would.
    }
    this.locker.wake(this.name)
  }

  /** Stops refreshing (unlock, close); the lock is idle again. */
  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.state = 'idle'
    this.requestRelease = undefined
    this.token = undefined
  }

  /** Asks the holder to let go, once per holding, when a waiter asked. */
  async checkRelease(): Promise<void> {
    if (this.state !== 'held' || this.asked) return
    if (!(await releaseAsked(this.locker.releaseFile(this.name)).catch(() => false))) return
    if (this.state === 'held' && !this.asked) this.askToLetGo()
  }

  private askToLetGo(): void {
    this.asked = true
    const requestRelease = this.requestRelease
    Promise.resolve()
      .then(() => requestRelease?.())
      .catch(() => undefined)
  }

  private async acquire(signal: AbortSignal): Promise<string> {
    const { locker, file, name } = this
    const { timeoutMs, ttlMs } = locker.settings
    const deadline = Date.now() + timeoutMs
    const token = newToken()
    const waiter = new Waiter()
    const stopWaiting = locker.addWaiter(name, waiter.fire)
    signal.addEventListener('abort', waiter.fire)
    let pollMs = FIRST_POLL_MS
    try {
      for (;;) {
        if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT
        if (locker.isClosed) throw new Error('the file locker is closed')
        if (await createLockFile(file, token)) {
          if (signal.aborted || locker.isClosed) {
            await removeLockFileIf(file, (found) => found.token === token)
            throw signal.aborted ? ERRORS.ERR_LOCK_TIMEOUT : new Error('the file locker is closed')
          }
          // Requests were meant for the previous holder; a waiter still waiting asks again.
          await rm(locker.releaseFile(name), { force: true })
          return token
        }
        const age = await ageOf(file)
        if (age !== undefined && age > ttlMs) {
          // Its holder stopped refreshing it: taken over only if it still is stale once set aside.
          await removeLockFileIf(file, (found) => found.ageMs > ttlMs)
          continue
        }
        if (age !== undefined) await askRelease(locker.releaseFile(name))
        const left = deadline - Date.now()
        if (left <= 0) throw ERRORS.ERR_LOCK_TIMEOUT
        await waiter.wait(Math.min(jitter(pollMs), left))
        pollMs = Math.min(pollMs * 2, LONGEST_POLL_MS)
      }
    } finally {
      stopWaiting()
      signal.removeEventListener('abort', waiter.fire)
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.tick(), this.locker.tickMs)
    this.timer.unref()
  }

  private async tick(): Promise<void> {
    const token = this.token
    if (this.state !== 'held') return
    await this.checkRelease()
    if (Date.now() - this.refreshedAt >= this.locker.refreshEveryMs) {
      const at = Date.now()
      // Gone or another's: a waiter took it over, as it may once this holder stalled past the TTL.
      const stillOurs =
        (await tokenIn(this.file)) === token &&
        (await refreshLockFile(this.file).then(
          () => true,
          () => false,
        ))
      if (this.state !== 'held' || this.token !== token) return
      if (!stillOurs) return this.lose()
      this.refreshedAt = at
    }
    if (this.state === 'held' && this.token === token) this.schedule()
  }

  // No longer ours: not refreshed nor listed as held; the holder is told, and still calls unlock().
  private lose(): void {
    this.state = 'lost'
    clearTimeout(this.timer)
    this.timer = undefined
    this.locker.removeHeld(this)
    this.askToLetGo()
  }
}

/** Locks as files in a shared folder: for several processes or instances over one file system. */
export const fileLocker: LockerModule<FileLockerSettings> = {
  name: 'file',
  async create(settings) {
    const dir = path.resolve(settings.dir)
    await mkdir(dir, { recursive: true })
    const locker = new FileLocker({ ...settings, dir })
    void locker.sweep().catch(() => undefined)
    return { locker, close: async () => locker.close() }
  },
}
