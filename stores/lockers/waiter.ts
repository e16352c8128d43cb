/**
 * A waiting lock() call's sleep between two looks at the lock, cut short by news that it may be free
 * (a release, a removed lock file) or by an abort; a wake-up before the sleep is not lost.
 */
export class Waiter {
  private pending = false
  private resolve?: () => void

  readonly fire = () => {
    if (this.resolve) this.resolve()
    else this.pending = true
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false
      return Promise.resolve()
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms)
      const done = () => {
        clearTimeout(timer)
        this.resolve = undefined
        this.pending = false
        resolve()
      }
      this.resolve = done
    })
  }
}

/** Between half and one and a half times `ms`, so that waiters do not look in step. */
export function jitter(ms: number): number {
  return Math.round(ms * (0.5 + Math.random()))
}
