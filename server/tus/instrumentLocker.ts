import type { Locker } from '@tus/utils'
import type { Metrics } from '../metrics.js'

/** A locker whose acquisitions are timed, and whose failures (timeouts, an unreachable Redis) are counted. */
export function instrumentLocker(locker: Locker, metrics: Metrics): Locker {
  return {
    newLock(id) {
      const lock = locker.newLock(id)
      return {
        async lock(signal, requestRelease) {
          const stop = metrics.lockWait.startTimer()
          try {
            await lock.lock(signal, requestRelease)
          } catch (error) {
            metrics.lockTimeouts.inc()
            throw error
          } finally {
            stop()
          }
        },
        unlock: () => lock.unlock(),
      }
    },
  }
}
