import cluster from 'node:cluster'
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils'
import type { LockerModule } from '../types.js'
import { PrimaryLocker } from './primaryLocks.js'

interface Waiter {
  requestRelease: RequestRelease
  grant(): void
}

interface Holder {
  requestRelease: RequestRelease
  /** Who waits for the lock, first come first served. */
  queue: Waiter[]
}

/** Asks a holder to let go; how it fares is its own business (a failure must not fail the waiter). */
const ask = (requestRelease: RequestRelease) =>
  void Promise.resolve()
    .then(requestRelease)
    .catch(() => undefined)

/**
 * Locks inside one process: right for a single instance, unsafe for several sharing a store.
 *
 * Ours rather than `@tus/server`'s MemoryLocker, which on every lock() builds an AbortController, aborts
 * it (a DOMException with a stack trace) and arms a timer, and whose waiters poll the lock on every
 * event-loop turn, asking the holder to let go each time. Here a free lock is taken at once; a taken
 * one asks its holder once, per waiter, to let go and queues the waiter, which gets the lock when the
 * holder unlocks or gives up with ERR_LOCK_TIMEOUT after LOCK_TIMEOUT or when its signal aborts.
 */
export class MemoryLocker implements Locker {
  private readonly held = new Map<string, Holder>()

  constructor(private readonly timeoutMs: number) {}

  newLock(id: string): Lock {
    let holding = false
    return {
      lock: async (signal, requestRelease) => {
        await this.acquire(id, signal, requestRelease)
        holding = true
      },
      unlock: async () => {
        if (!holding) throw new Error('Releasing an unlocked lock!')
        holding = false
        this.release(id)
      },
    }
  }

  private acquire(id: string, signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const holder = this.held.get(id)
    if (!holder) {
      this.held.set(id, { requestRelease, queue: [] })
      return Promise.resolve()
    }
    if (signal.aborted) return Promise.reject(ERRORS.ERR_LOCK_TIMEOUT)
    return new Promise((resolve, reject) => {
      const giveUp = () => {
        done()
        holder.queue.splice(holder.queue.indexOf(waiter), 1)
        reject(ERRORS.ERR_LOCK_TIMEOUT)
      }
      // A wait is no reason to keep the process alive (a server has its listening socket for that).
      const timer = setTimeout(giveUp, this.timeoutMs).unref()
      signal.addEventListener('abort', giveUp, { once: true })
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', giveUp)
      }
      const waiter: Waiter = {
        requestRelease,
        grant: () => {
          done()
          resolve()
        },
      }
      holder.queue.push(waiter)
      ask(holder.requestRelease)
    })
  }

  private release(id: string): void {
    const holder = this.held.get(id) as Holder
    const next = holder.queue.shift()
    if (!next) return void this.held.delete(id)
    holder.requestRelease = next.requestRelease
    next.grant()
    // Others still wait: the new holder is asked to let go in its turn.
    if (holder.queue.length > 0) ask(next.requestRelease)
  }
}

export interface MemoryLockerSettings {
  /** How long `lock()` waits for a taken lock before ERR_LOCK_TIMEOUT. */
  timeoutMs: number
}

export const memoryLocker: LockerModule<MemoryLockerSettings> = {
  name: 'memory',
  async create(settings) {
    // A worker of several on one port (WORKERS > 1): the locks live in the primary (server/cluster.ts).
    if (cluster.isWorker) {
      const locker = new PrimaryLocker()
      return { locker, close: async () => locker.close() }
    }
    return { locker: new MemoryLocker(settings.timeoutMs), close: async () => {} }
  },
}
