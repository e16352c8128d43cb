import type { Locker } from '@tus/utils'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { isExpired } from '../../stores/expiry.js'
import type { StoreBackend } from '../../stores/types.js'

// A sweep never waits long for an upload in use: it is left for the next sweep.
const LOCK_WAIT_MS = 1000
// Held for a whole sweep, so that with a shared locker one instance sweeps at a time.
const SWEEP_LOCK_ID = 'expiry-sweep'

/**
 * Removes expired unfinished uploads, each under its upload lock and rechecked there, so an
 * upload that a PATCH is still writing to is never removed beneath it.
 */
export class ExpirySweeper {
  private timer?: NodeJS.Timeout
  private running?: Promise<string[]>

  constructor(
    private readonly backend: StoreBackend,
    private readonly locker: Locker,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.sweep(), intervalMs)
    this.timer.unref()
  }

  /** One sweep; concurrent calls share the sweep in progress. Resolves to the ids removed. */
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
    const sweepLock = this.locker.newLock(SWEEP_LOCK_ID)
    try {
      await sweepLock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {})
    } catch {
      this.logger.debug('expiry sweep skipped: another instance is sweeping')
      return []
    }
    const started = Date.now()
    try {
      const removed = await this.removeExpired()
      this.logger.debug('expiry sweep done', { started, finished: Date.now(), removed: removed.length })
      return removed
    } finally {
      await sweepLock.unlock()
    }
  }

  private async removeExpired(): Promise<string[]> {
    const { datastore } = this.backend
    const removed: string[] = []
    try {
      for (const id of await this.backend.expiredUploadIds()) {
        const lock = this.locker.newLock(id)
        try {
          await lock.lock(AbortSignal.timeout(LOCK_WAIT_MS), () => {})
        } catch {
          continue
        }
        try {
          const upload = await datastore.getUpload(id)
          if (isExpired(upload, datastore.getExpiration())) {
            await datastore.remove(id)
            removed.push(id)
            this.metrics.uploadsExpired.inc()
            this.logger.info('upload expired', { uploadId: id, offset: upload.offset, size: upload.size })
          }
        } catch (error) {
          this.logger.error('expiry sweep failed', { uploadId: id, error })
        } finally {
          await lock.unlock()
        }
      }
    } catch (error) {
      this.logger.error('expiry sweep failed', { error })
    }
    return removed
  }
}
