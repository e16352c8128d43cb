import type { Worker } from 'node:cluster'
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils'

// Locks shared by the workers of one port (WORKERS > 1): the state lives in the primary, in one
// MemoryLocker, and each worker reaches it over the cluster's IPC channel. A worker's lock is granted
// only once the primary has granted it, so two workers never hold one upload's lock at once; a waiter
// asks the holder (in whichever worker) to let go, as in one process.

/** Worker -> primary. */
type Request = { tusgateLock: 'lock'; key: number; id: string } | { tusgateLock: 'abort' | 'unlock'; key: number }
/** Primary -> worker. */
type Reply = { tusgateLock: 'granted' | 'failed' | 'release'; key: number }

const isRequest = (m: unknown): m is Request => typeof m === 'object' && m !== null && 'tusgateLock' in m

/**
 * Serves `locker` (the primary's MemoryLocker) to a worker. When the worker exits, its held locks are
 * released and its waits given up, so a crashed worker never keeps an upload locked.
 */
export function serveLocks(locker: Locker, worker: Worker): void {
  const entries = new Map<number, { lock: Lock; waiting: AbortController; held: boolean }>()
  const reply = (message: Reply) => {
    if (worker.isConnected()) worker.send(message)
  }
  worker.on('message', (message: unknown) => {
    if (!isRequest(message)) return
    const { key } = message
    if (message.tusgateLock === 'lock') {
      const entry = { lock: locker.newLock(message.id), waiting: new AbortController(), held: false }
      entries.set(key, entry)
      entry.lock
        .lock(entry.waiting.signal, () => reply({ tusgateLock: 'release', key }))
        .then(
          () => {
            entry.held = true
            reply({ tusgateLock: 'granted', key })
          },
          () => {
            entries.delete(key)
            reply({ tusgateLock: 'failed', key })
          },
        )
    } else if (message.tusgateLock === 'abort') {
      entries.get(key)?.waiting.abort()
    } else {
      const entry = entries.get(key)
      entries.delete(key)
      if (entry?.held) void entry.lock.unlock()
    }
  })
  worker.once('exit', () => {
    for (const entry of entries.values()) {
      if (entry.held) void entry.lock.unlock()
      else entry.waiting.abort()
    }
    entries.clear()
  })
}

/** The worker's side: a Locker whose every lock is the primary's. */
export class PrimaryLocker implements Locker {
  private nextKey = 0
  private readonly pending = new Map<number, { requestRelease: RequestRelease; settle(granted: boolean): void }>()

  constructor(private readonly channel: NodeJS.Process = process) {
    channel.on('message', this.onMessage)
  }

  close(): void {
    this.channel.off('message', this.onMessage)
  }

  private send(message: Request): void {
    this.channel.send?.(message)
  }

  private readonly onMessage = (message: unknown) => {
    if (!isRequest(message)) return
    const { key, tusgateLock } = message as unknown as Reply
    const entry = this.pending.get(key)
    if (tusgateLock === 'release') {
      if (entry)
        void Promise.resolve()
          .then(entry.requestRelease)
          .catch(() => undefined)
    } else if (entry) {
      entry.settle(tusgateLock === 'granted')
    } else if (tusgateLock === 'granted') {
      // Granted after this worker gave up waiting: hand it straight back.
      this.send({ tusgateLock: 'unlock', key })
    }
  }

  newLock(id: string): Lock {
    let key: number | undefined
    return {
      lock: (signal, requestRelease) => {
        if (key !== undefined) return Promise.reject(new Error('lock() called twice'))
        if (!this.channel.connected) return Promise.reject(new Error('the cluster primary is gone'))
        const k = ++this.nextKey
        key = k
        return new Promise<void>((resolve, reject) => {
          const giveUp = () => {
            this.pending.delete(k)
            key = undefined
            this.send({ tusgateLock: 'abort', key: k })
            reject(ERRORS.ERR_LOCK_TIMEOUT)
          }
          signal.addEventListener('abort', giveUp, { once: true })
          this.pending.set(k, {
            requestRelease,
            settle: (granted) => {
              signal.removeEventListener('abort', giveUp)
              if (granted) return resolve()
              this.pending.delete(k)
              key = undefined
              reject(ERRORS.ERR_LOCK_TIMEOUT)
            },
          })
          this.send({ tusgateLock: 'lock', key: k, id })
        })
      },
      unlock: async () => {
        if (key === undefined || !this.pending.has(key)) throw new Error('Releasing an unlocked lock!')
        this.pending.delete(key)
        // Messages on the channel keep their order: a later lock() of this worker comes after this.
        this.send({ tusgateLock: 'unlock', key })
        key = undefined
      },
    }
  }
}
