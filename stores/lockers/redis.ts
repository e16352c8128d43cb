import { randomBytes } from 'node:crypto'
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/utils'
import type { Redis } from 'ioredis'
import { closeRedis, connectRedis, createRedisClient, RedisUnavailableError, redisTarget, whenReady } from '../redis/client.js'
import type { LockerModule } from '../types.js'
import { KeyedSets } from './keyedSets.js'
import { jitter, Waiter } from './waiter.js'

// A lock is the key `${prefix}lock:${id}` holding its holder's random token, set with NX and a TTL.
// Every script touches one key and compares the token first, so a holder never extends or deletes
// a lock that lapsed and was taken by someone else.
const SCRIPTS = {
  // 1 when acquired, else the current holder's token.
  tusgateLockAcquire: {
    numberOfKeys: 1,
    lua: `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return redis.call('GET', KEYS[1]) or ''`,
  },
  // 1 when still ours (and extended), else 0.
  tusgateLockRenew: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`,
  },
  // 1 when it was ours (deleted, and its waiters told on ARGV[2]), else 0.
  tusgateLockRelease: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`,
  },
} as const

type LockClient = Redis & {
  tusgateLockAcquire(key: string, token: string, ttlMs: number): Promise<number | string>
  tusgateLockRenew(key: string, token: string, ttlMs: number): Promise<number>
  tusgateLockRelease(key: string, token: string, channel: string, id: string): Promise<number>
}

// Waiting for a taken lock: retried on a 'released' notice at once, else polled with a backoff
// from 10 ms to 200 ms (jittered); the holder is asked again to let go at most every 500 ms, and at
// once whenever the holder changes.
const FIRST_BACKOFF_MS = 10
const MAX_BACKOFF_MS = 200
const ASK_AGAIN_MS = 500

export interface RedisLockerOptions {
  /** A client from `createRedisClient` (no offline queue, bounded commands), connected. */
  client: Redis
  /** A second such client, connected; it is put in subscriber mode. */
  subscriber: Redis
  /** Key and channel prefix (REDIS_KEY_PREFIX). */
  prefix: string
  /** A lock not renewed lapses after this long (LOCK_TTL); it is renewed every third of it. */
  ttlMs: number
  /** How long `lock()` waits for a taken lock before ERR_LOCK_TIMEOUT (LOCK_TIMEOUT). */
  timeoutMs: number
  /** How long `lock()` rides out an unreachable Redis before rejecting with a RedisUnavailableError. */
  unavailableWaitMs: number
  /** For messages: where Redis is, without credentials. */
  target?: string
}

/**
 * `@tus/utils`' Locker over Redis, shared by every instance using the same Redis and prefix.
 *
 * - A lock is `SET key token NX PX ttl`, renewed every ttl/3 while held (compare-and-pexpire), so the
 *   locks of an instance that died lapse within `ttl`. unlock() is compare-and-delete, and announces
 *   the release on `${prefix}released`.
 * - lock() on a taken lock publishes the id on `${prefix}release`; every instance listens there and
 *   calls `requestRelease` of its holder of that id (for `@tus/server`: cancel the request, which
 *   then unlocks within LOCK_DRAIN_TIMEOUT). It retries until acquired, until `timeoutMs`
 *   (ERRORS.ERR_LOCK_TIMEOUT) or until its signal aborts (also ERR_LOCK_TIMEOUT, as MemoryLocker).
 * - A holder that can no longer vouch for its lock is asked to let go too (`requestRelease`): when a
 *   renewal finds the lock gone or taken, when a renewal fails, or when the connection to Redis
 *   drops (a Redis restarted without persistence has forgotten every lock). Past its last
 *   successful renewal plus `ttl`, the lock is given up as lost.
 * - No lock is granted by a Redis that started less than `ttl` ago (see trust()): one restarted
 *   without persistence has forgotten the locks of holders that are still draining.
 * - An unreachable Redis makes lock() reject with a RedisUnavailableError (a 503 for tus) after
 *   `unavailableWaitMs` at most; unlock() never rejects for it (the lock lapses within `ttl`), so a
 *   request that did its work is not turned into an error by the release.
 *
 * One Redis, no fencing tokens. A holder cut off from Redis without its socket closing is asked to
 * let go when a renewal fails: with the defaults (TTL 10 s, renewals every 3.3 s failing after at
 * most 2 s, LOCK_DRAIN_TIMEOUT 3 s) it is cut about 8.3 s after its last renewal, before its lock
 * lapses at 10 s; a much longer drain, or a process paused (GC, swap) for longer than the TTL, can
 * overlap with the next holder.
 */
export class RedisLocker implements Locker {
  readonly ttlMs: number
  readonly timeoutMs: number
  readonly unavailableWaitMs: number
  readonly renewEveryMs: number
  readonly target: string
  readonly client: LockClient
  private readonly subscriber: Redis
  private readonly prefix: string
  private readonly releaseChannel: string
  private readonly releasedChannel: string
  /** Locks this instance holds, by id. */
  private readonly held = new KeyedSets<RedisLock>()
  /** Wake-ups of this instance's lock() calls waiting for an id. */
  private readonly waiters = new KeyedSets<() => void>()
  private closed = false
  private subscribed?: Promise<void>
  /** No lock is granted before this time: LOCK_TTL after the Redis server started (see trust()). */
  private trustedFrom = Number.POSITIVE_INFINITY
  private trustCheck?: Promise<void>

  constructor(options: RedisLockerOptions) {
    this.ttlMs = options.ttlMs
    this.timeoutMs = options.timeoutMs
    this.unavailableWaitMs = options.unavailableWaitMs
    this.renewEveryMs = Math.max(1, Math.floor(options.ttlMs / 3))
    this.target = options.target ?? 'Redis'
    this.prefix = options.prefix
    this.releaseChannel = `${options.prefix}release`
    this.releasedChannel = `${options.prefix}released`
    this.client = options.client as LockClient
    for (const [name, script] of Object.entries(SCRIPTS)) {
      if (!(name in this.client)) this.client.defineCommand(name, script)
    }
    this.subscriber = options.subscriber
    this.subscriber.on('message', this.onMessage)
    this.client.on('close', this.onConnectionLost)
  }

  /**
   * Resolves when the time from which locks may be granted is known. A Redis that started less than
   * a TTL ago may be one that restarted and forgot locks (nothing persisted) whose holders have not
   * yet noticed; once a TTL has passed since its start, every such holder has been asked to let go
   * and has stopped renewing. So locks are granted from the server's start plus the TTL (learnt from
   * INFO's uptime, once per connection) — the client-side form of Redis' "delayed restart".
   */
  trust(): Promise<void> {
    if (this.trustedFrom !== Number.POSITIVE_INFINITY) return Promise.resolve()
    this.trustCheck ??= this.client
      .info('server')
      .then((info) => {
        const uptime = Number(/^uptime_in_seconds:(\d+)\r?$/m.exec(info)?.[1])
        if (!Number.isSafeInteger(uptime)) throw new Error('INFO server has no uptime_in_seconds')
        // uptime_in_seconds is a difference of whole clock seconds: the true uptime may be up to 1 s less.
        this.trustedFrom = Date.now() - Math.max(0, uptime - 1) * 1000 + this.ttlMs
      })
      .finally(() => {
        this.trustCheck = undefined
      })
    return this.trustCheck
  }

  /** Milliseconds until locks may be granted (0 when they may now); call after trust(). */
  untrustedFor(): number {
    return Math.max(0, this.trustedFrom - Date.now())
  }

  /** Subscribes to the release channels; resolves once subscribed. */
  start(): Promise<void> {
    this.subscribed ??= this.subscriber.subscribe(this.releaseChannel, this.releasedChannel).then(() => undefined)
    return this.subscribed
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id)
  }

  /** Stops renewals and ends both connections. Locks still held are not deleted: they lapse within the TTL. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const lock of this.held.all()) lock.stop()
    this.held.clear()
    for (const wake of this.waiters.all()) wake()
    this.client.off('close', this.onConnectionLost)
    this.subscriber.off('message', this.onMessage)
    await Promise.all([closeRedis(this.client), closeRedis(this.subscriber)])
  }

  get isClosed(): boolean {
    return this.closed
  }

  key(id: string): string {
    return `${this.prefix}lock:${id}`
  }

  /** Asks whichever instance holds `id` to let go. Best effort: the waiter asks again. */
  askRelease(id: string): void {
    this.client.publish(this.releaseChannel, id).catch(() => undefined)
  }

  /** Deletes `id`'s lock if `token` holds it, announcing the release. */
  release(id: string, token: string): Promise<number> {
    return this.client.tusgateLockRelease(this.key(id), token, this.releasedChannel, id)
  }

  addHeld(lock: RedisLock): void {
    this.held.add(lock.id, lock)
  }

  removeHeld(lock: RedisLock): void {
    if (!this.held.delete(lock.id, lock)) return
    this.wake(lock.id)
  }

  addWaiter(id: string, wake: () => void): () => void {
    this.waiters.add(id, wake)
    return () => void this.waiters.delete(id, wake)
  }

  private wake(id: string): void {
    for (const wake of this.waiters.get(id)) wake()
  }

  private readonly onMessage = (channel: string, id: string) => {
    if (channel === this.releaseChannel) {
      for (const lock of this.held.get(id)) lock.askToLetGo()
    } else if (channel === this.releasedChannel) {
      this.wake(id)
    }
  }

  // The connection dropped: a restarted Redis may have forgotten every lock, so every holder is asked
  // to let go now rather than at its next renewal.
  private readonly onConnectionLost = () => {
    this.trustedFrom = Number.POSITIVE_INFINITY
    for (const lock of this.held.all()) lock.askToLetGo()
  }
}

type State = 'idle' | 'acquiring' | 'held' | 'lost'

class RedisLock implements Lock {
  private state: State = 'idle'
  private token?: string
  private requestRelease?: RequestRelease
  private renewTimer?: NodeJS.Timeout
  /** The lock is surely ours until then: the last successful acquisition or renewal was sent at that time minus the TTL. */
  private safeUntil = 0

  constructor(
    private readonly locker: RedisLocker,
    readonly id: string,
  ) {}

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    if (this.state !== 'idle') throw new Error(`lock ${this.id} is already ${this.state}`)
    this.state = 'acquiring'
    try {
      this.token = await this.acquire(signal)
    } catch (error) {
      this.state = 'idle'
      throw error
    }
    if (this.locker.isClosed) {
      this.locker.release(this.id, this.token).catch(() => undefined)
      this.state = 'idle'
      throw new Error('the Redis locker is closed')
    }
    this.state = 'held'
    this.requestRelease = requestRelease
    this.locker.addHeld(this)
    this.scheduleRenewal()
  }

  async unlock(): Promise<void> {
    if (this.state !== 'held' && this.state !== 'lost') throw new Error('Releasing an unlocked lock!')
    const token = this.token as string
    this.stop()
    this.locker.removeHeld(this)
    try {
      await this.locker.release(this.id, token)
    } catch {
      // Redis is unreachable: the lock lapses within the TTL, as it would for a dead instance.
    }
  }

  /** Asks this holder to let go (a waiter elsewhere wants the lock, or it can no longer be vouched for). */
  askToLetGo(): void {
    if (this.state !== 'held' && this.state !== 'lost') return
    try {
      Promise.resolve(this.requestRelease?.()).catch(() => undefined)
    } catch {
      // the holder's business
    }
  }

  /** Stops renewing (unlock, close); the lock is idle again. */
  stop(): void {
    clearTimeout(this.renewTimer)
    this.renewTimer = undefined
    this.state = 'idle'
    this.requestRelease = undefined
    this.token = undefined
  }

  private async acquire(signal: AbortSignal): Promise<string> {
    const { locker } = this
    const key = locker.key(this.id)
    const deadline = Date.now() + locker.timeoutMs
    const waiter = new Waiter()
    const stopWaiting = locker.addWaiter(this.id, waiter.fire)
    let onAbort = () => {}
    const aborted = new Promise<void>((resolve) => {
      onAbort = () => {
        waiter.fire()
        resolve()
      }
    })
    signal.addEventListener('abort', onAbort)
    let backoff = FIRST_BACKOFF_MS
    let lastHolder: string | undefined
    let askedAt = Number.NEGATIVE_INFINITY
    let failingSince: number | undefined
    try {
      for (;;) {
        if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT
        if (locker.isClosed) throw new Error('the Redis locker is closed')
        const token = randomBytes(16).toString('hex')
        const sentAt = Date.now()
        let holder: number | string
        try {
          await locker.trust()
          const untrusted = locker.untrustedFor()
          if (untrusted > 0) {
            // Redis started less than a TTL ago: wait until it is trusted (or the deadline).
            const left = deadline - Date.now()
            if (left <= 0) throw ERRORS.ERR_LOCK_TIMEOUT
            await waiter.wait(Math.min(untrusted, left))
            continue
          }
          holder = await locker.client.tusgateLockAcquire(key, token, locker.ttlMs)
        } catch (error) {
          if (error === ERRORS.ERR_LOCK_TIMEOUT) throw error
          // It may have been set before the reply was lost: take it back, best effort.
          locker.release(this.id, token).catch(() => undefined)
          failingSince ??= sentAt
          const left = Math.min(failingSince + locker.unavailableWaitMs, deadline) - Date.now()
          const message = `cannot take the lock of ${this.id} in ${locker.target}: ${(error as Error).message}`
          if (left <= 0 || locker.isClosed) throw new RedisUnavailableError(message, { cause: error })
          await Promise.race([
            whenReady(locker.client, left, locker.target).catch((cause) => {
              throw new RedisUnavailableError(message, { cause })
            }),
            aborted,
          ])
          if (signal.aborted) throw ERRORS.ERR_LOCK_TIMEOUT
          // Ready but failing (a timeout, a server error): not in a tight loop.
          await waiter.wait(jitter(backoff))
          backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
          continue
        }
        failingSince = undefined
        if (holder === 1) {
          if (signal.aborted) {
            locker.release(this.id, token).catch(() => undefined)
            throw ERRORS.ERR_LOCK_TIMEOUT
          }
          this.safeUntil = sentAt + locker.ttlMs
          return token
        }
        const now = Date.now()
        if (holder !== lastHolder || now - askedAt >= ASK_AGAIN_MS) {
          locker.askRelease(this.id)
          lastHolder = String(holder)
          askedAt = now
        }
        const left = deadline - now
        if (left <= 0) throw ERRORS.ERR_LOCK_TIMEOUT
        await waiter.wait(Math.min(jitter(backoff), left))
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)
      }
    } finally {
      stopWaiting()
      signal.removeEventListener('abort', onAbort)
    }
  }

  private scheduleRenewal(): void {
    this.renewTimer = setTimeout(() => void this.renew(), this.locker.renewEveryMs)
    this.renewTimer.unref()
  }

  private async renew(): Promise<void> {
    const token = this.token
    if (this.state !== 'held' || !token) return
    const sentAt = Date.now()
    let stillOurs: boolean
    try {
      stillOurs = (await this.locker.client.tusgateLockRenew(this.locker.key(this.id), token, this.locker.ttlMs)) === 1
    } catch {
      if (this.token !== token || this.state !== 'held') return
      // Unreachable: whoever holds it cannot be sure for long; stop the holder's work now.
      if (Date.now() >= this.safeUntil) return this.lose()
      this.askToLetGo()
      this.scheduleRenewal()
      return
    }
    if (this.token !== token || this.state !== 'held') return
    if (!stillOurs) return this.lose()
    this.safeUntil = sentAt + this.locker.ttlMs
    this.scheduleRenewal()
  }

  // Lapsed or taken: no longer renewed or listed as held; the holder is told, and still calls unlock().
  private lose(): void {
    this.state = 'lost'
    clearTimeout(this.renewTimer)
    this.renewTimer = undefined
    this.locker.removeHeld(this)
    Promise.resolve()
      .then(() => this.requestRelease?.())
      .catch(() => undefined)
  }
}

export interface RedisLockerSettings {
  url: string
  /** Key and channel prefix. */
  keyPrefix: string
  /** A lock not renewed lapses after this long. */
  ttlMs: number
  /** How long `lock()` waits for a taken lock before ERR_LOCK_TIMEOUT. */
  timeoutMs: number
}

/** Connection and command bounds that follow the lock's TTL and timeout. */
function connectionBounds({ ttlMs, timeoutMs }: RedisLockerSettings) {
  return {
    // Renewals must fit well inside the TTL; a reply later than this counts as a failure.
    commandTimeout: Math.max(200, Math.min(Math.floor(ttlMs / 3), 2000)),
    unavailableWaitMs: Math.min(timeoutMs, 2000),
    connectTimeoutMs: 5000,
  }
}

/** Locks in Redis, shared by every instance: for several instances over one store. */
export const redisLocker: LockerModule<RedisLockerSettings> = {
  name: 'redis',
  async create(settings) {
    const target = redisTarget(settings.url)
    const bounds = connectionBounds(settings)
    const client = createRedisClient(settings.url, { connectionName: 'tusgate-locker', commandTimeout: bounds.commandTimeout })
    const subscriber = createRedisClient(settings.url, { connectionName: 'tusgate-locker-events', commandTimeout: bounds.commandTimeout })
    try {
      await Promise.all([connectRedis(client, bounds.connectTimeoutMs, target), connectRedis(subscriber, bounds.connectTimeoutMs, target)])
      const locker = new RedisLocker({
        client,
        subscriber,
        prefix: settings.keyPrefix,
        ttlMs: settings.ttlMs,
        timeoutMs: settings.timeoutMs,
        unavailableWaitMs: bounds.unavailableWaitMs,
        target,
      })
      await locker.start()
      return { locker, close: () => locker.close() }
    } catch (error) {
      await Promise.all([closeRedis(client), closeRedis(subscriber)])
      throw error
    }
  },
}
