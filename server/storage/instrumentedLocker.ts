import type { Lock, Locker, RequestRelease } from '@tus/utils'
import type { Metrics } from '../metrics.js'

/** A locker whose acquisitions are timed, and whose failures (timeouts, an unreachable Redis) are counted. */
export class InstrumentedLocker implements Locker {
  constructor(
    private readonly locker: Locker,
    private readonly metrics: Metrics,
  ) {}

  newLock(id: string): Lock {
    return new InstrumentedLock(this.locker.newLock(id), this.metrics)
  }
}

class InstrumentedLock implements Lock {
  constructor(
    private readonly inner: Lock,
    private readonly metrics: Metrics,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const stop = this.metrics.lockWait.startTimer()
    try {
      await this.inner.lock(signal, requestRelease)
    } catch (error) {
      this.metrics.lockTimeouts.inc()
      throw error
    } finally {
      stop()
    }
  }

  unlock(): Promise<void> {
    return this.inner.unlock()
  }
}
