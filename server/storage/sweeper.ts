import type { Locker } from '@tus/utils'
import { isExpired } from '../../stores/expiry.js'
import type { Orphan, StoreBackend } from '../../stores/types.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'

// A sweep never waits long for an upload in use: it is left for the next sweep.
const LOCK_WAIT_MS = 1000
// Held for a whole sweep, so that with a shared locker one instance sweeps at a time.
const SWEEP_LOCK_ID = 'expiry-sweep'

export interface SweeperDeps {
  backend: StoreBackend
  locker: Locker
  logger: Logger
  metrics: Metrics
  /** A leftover is removed once it is this old, so that a creation in progress is never taken for one. */
  orphanGraceMs: number
}

/**
 * The store's upkeep: removes expired unfinished uploads, and what creations or terminations cut
 * between two steps left behind (Orphan). Each is removed under its upload's lock and rechecked there,
 * so an upload that a request is still using is never removed beneath it.
 */
export class Sweeper {
  private timer?: NodeJS.Timeout
  private running?: Promise<string[]>

  constructor(private readonly deps: SweeperDeps) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs)
    this.timer.unref()
  }

  /** One sweep; concurrent calls share the sweep in progress. Resolves to the ids of the expired uploads removed. */
  sweep(): Promise<string[]> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = undefined
    })
    return this.running
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.running?.catch(() => undefined)
  }

  private async sweepOnce(): Promise<string[]> {
    const { locker, logger } = this.deps
    const sweepLock = locker.newLock(SWEEP_LOCK_ID)
    try {
      await sweepLock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {})
    } catch {
      logger.debug('expiry sweep skipped: another instance is sweeping')
      return []
    }
    const started = Date.now()
    try {
      const removed = await this.removeExpired()
      const orphans = await this.removeOrphans()
      logger.debug('expiry sweep done', { started, finished: Date.now(), removed: removed.length, orphans })
      return removed
    } finally {
      await sweepLock.unlock()
    }
  }

  /** Runs `work` under the upload's lock; false when the lock is taken (the upload is in use). */
  private async underLock(id: string, work: () => Promise<void>): Promise<boolean> {
    const lock = this.deps.locker.newLock(id)
    try {
      await lock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {})
    } catch {
      return false
    }
    try {
      await work()
      return true
    } finally {
      await lock.unlock()
    }
  }

  private async removeExpired(): Promise<string[]> {
    const { backend, logger, metrics } = this.deps
    const { datastore } = backend
    const removed: string[] = []
    if (backend.capabilities.expiresAfterMs <= 0) return removed
    try {
      for (const id of await backend.expiredUploadIds()) {
        await this.underLock(id, async () => {
          try {
            const upload = await datastore.getUpload(id)
            if (!isExpired(upload, datastore.getExpiration())) return
            await datastore.remove(id)
            removed.push(id)
            metrics.uploadsExpired.inc()
            logger.info('upload expired', { uploadId: id, offset: upload.offset, size: upload.size })
          } catch (error) {
            logger.error('expiry sweep failed', { uploadId: id, error })
          }
        })
      }
    } catch (error) {
      logger.error('expiry sweep failed', { error })
    }
    return removed
  }

  /** Resolves to how many leftovers were removed. */
  private async removeOrphans(): Promise<number> {
    const { backend, logger, metrics, orphanGraceMs } = this.deps
    if (!backend.orphans || !backend.removeOrphan) return 0
    const removeOrphan = backend.removeOrphan.bind(backend)
    let count = 0
    let found: Orphan[]
    try {
      found = await backend.orphans(orphanGraceMs)
    } catch (error) {
      logger.error('orphan sweep failed', { error })
      return 0
    }
    for (const orphan of found) {
      await this.underLock(orphan.id, async () => {
        try {
          if (!(await removeOrphan(orphan, orphanGraceMs))) return
          count++
          metrics.orphansRemoved.inc()
          logger.info('orphan removed', { uploadId: orphan.id, kind: orphan.kind, key: orphan.key })
        } catch (error) {
          logger.error('orphan sweep failed', { uploadId: orphan.id, kind: orphan.kind, error })
        }
      })
    }
    return count
  }
}
