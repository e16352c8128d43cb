import { type ChildProcess, spawn } from 'node:child_process'
import { ERRORS } from '@tus/utils'
import { Redis } from 'ioredis'
import { loadConfig, lockerSettings } from '../server/config.js'
import { RedisUnavailableError } from '../stores/redis/client.js'
import { lockerNames, openLocker } from '../stores/registry.js'
import type { LockerBackend } from '../stores/types.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { ROOT } from './helpers/servers.js'

// The Redis locker against a real redis-server (a child process on a free port, nothing persisted).
// LOCK_TTL is 1 s throughout, so lapses and renewals (every ~333 ms) show within a test.
const TTL = 1000

let redis: RedisServer
let probe: Redis
const open: LockerBackend[] = []
let testNo = 0
let prefix = ''

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const never = () => new AbortController().signal
const noop = () => {}

async function makeLocker(env: Record<string, string> = {}): Promise<LockerBackend> {
  const config = loadConfig({
    LOCKER: 'redis',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    LOCK_TTL: String(TTL),
    LOCK_TIMEOUT: '10s',
    ...env,
  })
  const backend = await openLocker(lockerSettings(config))
  open.push(backend)
  return backend
}

const keyOf = (id: string) => `${prefix}lock:${id}`

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** Settles a lock() call, reporting its outcome and how long it took. */
async function timed(promise: Promise<void>): Promise<{ error?: unknown; ms: number }> {
  const started = Date.now()
  try {
    await promise
    return { ms: Date.now() - started }
  } catch (error) {
    return { error, ms: Date.now() - started }
  }
}

beforeAll(async () => {
  redis = await startRedis()
  probe = new Redis(redis.url, { maxRetriesPerRequest: 2, connectTimeout: 2000 })
  probe.on('error', noop)
}, 20_000)

afterAll(async () => {
  probe?.disconnect()
  await redis?.dispose()
})

beforeEach(async () => {
  prefix = `t${++testNo}-${process.pid}:`
  if (!redis.running) await redis.start()
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()))
})

test('the registry offers the redis locker, and it needs a reachable Redis to start', async () => {
  expect(lockerNames).toContain('redis')

  // Nothing listens on port 1: start-up fails with a clear error, within its bound.
  const config = loadConfig({ LOCKER: 'redis', REDIS_URL: 'redis://127.0.0.1:1', LOCK_TTL: '1s' })
  const { error, ms } = await timed(openLocker(lockerSettings(config)).then((b) => b.close()))
  expect(error).toBeInstanceOf(RedisUnavailableError)
  expect((error as Error).message).toMatch(/cannot reach redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/)
  expect(ms).toBeLessThan(7000)
}, 15_000)

test('50 contenders over two lockers: one holder at a time, no lost update, holders asked to let go', async () => {
  const lockers = { a: await makeLocker(), b: await makeLocker() }
  let inside = 0
  let maxInside = 0
  let counter = 0
  let releaseRequests = 0
  const done = { a: 0, b: 0 }

  const contender = async (name: 'a' | 'b') => {
    const lock = lockers[name].locker.newLock('upload-1')
    await lock.lock(never(), () => {
      releaseRequests++
    })
    inside++
    maxInside = Math.max(maxInside, inside)
    const seen = counter
    await sleep(1 + Math.random() * 4)
    counter = seen + 1 // a second holder in here at the same time loses an update
    inside--
    done[name]++
    await lock.unlock()
  }
  const started = Date.now()
  await Promise.all([...Array.from({ length: 25 }, () => contender('a')), ...Array.from({ length: 25 }, () => contender('b'))])

  expect(maxInside).toBe(1)
  expect(counter).toBe(50)
  expect(done).toEqual({ a: 25, b: 25 })
  expect(releaseRequests).toBeGreaterThan(0) // contenders asked the holders, over pub/sub
  expect(await probe.exists(keyOf('upload-1'))).toBe(0) // the last unlock deleted the key
  expect(Date.now() - started).toBeLessThan(15_000)
}, 30_000)

test('a lock is a token key with a TTL, renewed while held, deleted on unlock; locks of other ids are independent', async () => {
  // A longer TTL here: renewals every second leave a loaded machine two seconds of slack before it lapses.
  const ttl3 = 3 * TTL
  const { locker } = await makeLocker({ LOCK_TTL: String(ttl3) })
  const lock = locker.newLock('upload-t')
  await lock.lock(never(), noop)
  const token = await probe.get(keyOf('upload-t'))
  expect(token).toMatch(/^[0-9a-f]{32}$/)
  const ttl = await probe.pttl(keyOf('upload-t'))
  expect(ttl).toBeGreaterThan(0)
  expect(ttl).toBeLessThanOrEqual(ttl3)

  // Another id is free meanwhile.
  const other = locker.newLock('upload-u')
  expect((await timed(other.lock(never(), noop))).ms).toBeLessThan(500)
  await other.unlock()

  // Held for 2.5 TTLs: still there, with the same token (renewed, not re-taken).
  await sleep(ttl3 * 2.5)
  expect(await probe.get(keyOf('upload-t'))).toBe(token)
  expect(await probe.pttl(keyOf('upload-t'))).toBeGreaterThan(0)

  await lock.unlock()
  expect(await probe.exists(keyOf('upload-t'))).toBe(0)
  await expect(lock.unlock()).rejects.toThrow('Releasing an unlocked lock!')
}, 30_000)

test('the lock of a SIGKILLed instance lapses within LOCK_TTL and another instance takes it', async () => {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/redisLockHolder.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, LOCK_TTL: String(TTL), LOCK_ID: 'upload-k' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (c) => (out += c))
  child.stderr?.on('data', (c) => (out += c))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    await until(() => out.includes('locked\n'), 20_000, `the holder process to lock (output: ${out})`)

    // Alive, it keeps the lock past its TTL (renewals), and hears the release requests of this instance.
    const { locker } = await makeLocker({ LOCK_TIMEOUT: '2500ms' })
    const blocked = await timed(locker.newLock('upload-k').lock(never(), noop))
    expect(blocked.error).toBe(ERRORS.ERR_LOCK_TIMEOUT)
    expect(blocked.ms).toBeGreaterThanOrEqual(2400)
    expect(out).toContain('release requested')

    // Killed, it unlocks nothing: the key stays until its TTL runs out.
    process.kill(child.pid as number, 'SIGKILL')
    await exited
    const killedAt = Date.now()
    const left = await probe.pttl(keyOf('upload-k'))
    expect(left).toBeGreaterThan(0)
    expect(left).toBeLessThanOrEqual(TTL)

    const taken = await timed(locker.newLock('upload-k').lock(never(), noop))
    expect(taken.error).toBeUndefined()
    const waited = Date.now() - killedAt
    expect(waited).toBeGreaterThanOrEqual(left - 50)
    expect(waited).toBeLessThanOrEqual(TTL + 500)
  } finally {
    child.kill('SIGKILL')
  }
}, 40_000)

test('a release request from locker B reaches the holder on locker A; B gets the lock once A unlocks', async () => {
  const a = await makeLocker()
  const b = await makeLocker()
  const held = a.locker.newLock('upload-r')
  const askedAt: number[] = []
  let unlockedAt = 0
  await held.lock(never(), () => {
    askedAt.push(Date.now())
    // As @tus/server: cancel the request, which unlocks once it has drained (here 200 ms).
    if (askedAt.length === 1) {
      setTimeout(() => {
        unlockedAt = Date.now()
        void held.unlock()
      }, 200)
    }
  })

  const started = Date.now()
  const waiting = b.locker.newLock('upload-r')
  const result = await timed(waiting.lock(never(), noop))
  const acquiredAt = Date.now()

  expect(result.error).toBeUndefined()
  expect(askedAt.length).toBeGreaterThanOrEqual(1)
  expect(askedAt[0] - started).toBeLessThan(500)
  expect(unlockedAt).toBeGreaterThan(0)
  expect(acquiredAt).toBeGreaterThanOrEqual(unlockedAt)
  // Woken by the 'released' notice rather than a slow poll.
  expect(acquiredAt - unlockedAt).toBeLessThan(300)
  expect(await probe.get(keyOf('upload-r'))).toMatch(/^[0-9a-f]{32}$/)
  await waiting.unlock()
}, 15_000)

test('lock() gives ERR_LOCK_TIMEOUT after LOCK_TIMEOUT when the holder never lets go', async () => {
  const a = await makeLocker()
  const b = await makeLocker({ LOCK_TIMEOUT: '1500ms' })
  const held = a.locker.newLock('upload-s')
  let asked = 0
  await held.lock(never(), () => {
    asked++
  })
  const token = await probe.get(keyOf('upload-s'))

  const result = await timed(b.locker.newLock('upload-s').lock(never(), noop))
  expect(result.error).toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(result.ms).toBeGreaterThanOrEqual(1450)
  expect(result.ms).toBeLessThan(2500)
  expect(asked).toBeGreaterThanOrEqual(2) // asked at first, and again while waiting
  // Past its TTL, still the holder's (renewed), untouched by the waiter.
  expect(await probe.get(keyOf('upload-s'))).toBe(token)

  await held.unlock()
  expect(await probe.exists(keyOf('upload-s'))).toBe(0)
}, 15_000)

test('an aborted signal stops the wait, and leaves no lock behind', async () => {
  const a = await makeLocker()
  const b = await makeLocker()
  const held = a.locker.newLock('upload-a')
  await held.lock(never(), noop)

  const controller = new AbortController()
  setTimeout(() => controller.abort(), 200)
  const result = await timed(b.locker.newLock('upload-a').lock(controller.signal, noop))
  expect(result.error).toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(result.ms).toBeGreaterThanOrEqual(190)
  expect(result.ms).toBeLessThan(600)

  // Already aborted: no wait at all, even for a free id.
  const early = await timed(b.locker.newLock('upload-free').lock(AbortSignal.abort(), noop))
  expect(early.error).toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(early.ms).toBeLessThan(100)
  expect(await probe.exists(keyOf('upload-free'))).toBe(0)

  // Once A lets go nobody holds it: the aborted waiter did not take it in the background.
  await held.unlock()
  await sleep(300)
  expect(await probe.exists(keyOf('upload-a'))).toBe(0)
  const again = b.locker.newLock('upload-a')
  await again.lock(never(), noop)
  await again.unlock()
}, 15_000)

test('Redis down and back: holders told, lock() rejects with a clear error, unlock() resolves, locks work again', async () => {
  // LOCK_TIMEOUT 5s: lock() rides out an unreachable Redis for min(LOCK_TIMEOUT, 2s).
  const a = await makeLocker({ LOCK_TIMEOUT: '5s' })
  const b = await makeLocker({ LOCK_TIMEOUT: '5s' })
  const held = a.locker.newLock('upload-x')
  let askedAt: number | undefined
  await held.lock(never(), () => {
    askedAt ??= Date.now()
  })

  await redis.stop()
  const downAt = Date.now()
  // The holder is asked to let go as soon as its connection drops, not at the end of its TTL.
  await until(() => askedAt !== undefined, 1000, 'the holder to be asked to let go')
  expect((askedAt as number) - downAt).toBeLessThan(500)

  const failed = await timed(b.locker.newLock('upload-y').lock(never(), noop))
  expect(failed.error).toBeInstanceOf(RedisUnavailableError)
  expect((failed.error as RedisUnavailableError).status_code).toBe(503)
  expect((failed.error as Error).message).toMatch(/cannot take the lock of upload-y in redis:\/\/127\.0\.0\.1:\d+/)
  expect(failed.ms).toBeGreaterThanOrEqual(1900)
  expect(failed.ms).toBeLessThan(3000)

  // Releasing while Redis is down resolves (the key lapses with its TTL) and does not hang.
  const released = await timed(held.unlock())
  expect(released.error).toBeUndefined()
  expect(released.ms).toBeLessThan(1000)

  // A lock() started while Redis is down succeeds if Redis is back within its wait...
  const pending = timed(b.locker.newLock('upload-z').lock(never(), noop))
  await sleep(300)
  await redis.start()
  const backAt = Date.now()
  const recovered = await pending
  expect(recovered.error).toBeUndefined()
  // ...but not before the restarted (empty) Redis has been up for a TTL.
  expect(Date.now() - backAt).toBeGreaterThanOrEqual(TTL - 150)

  // Both instances lock again, and release requests flow again (subscriptions restored).
  const again = a.locker.newLock('upload-x')
  let asked = false
  await again.lock(never(), () => {
    asked = true
  })
  const taker = b.locker.newLock('upload-x')
  const taking = timed(taker.lock(never(), noop))
  await until(() => asked, 2000, 'the release request after the restart')
  await again.unlock()
  expect((await taking).error).toBeUndefined()
  await taker.unlock()
  expect(await probe.exists(keyOf('upload-x'))).toBe(0)
}, 30_000)

test('Redis restarting under contention: never two holders, only clean errors, no lock() beyond its bound', async () => {
  const lockers = [await makeLocker({ LOCK_TIMEOUT: '5s' }), await makeLocker({ LOCK_TIMEOUT: '5s' })]
  let inside = 0
  let overlaps = 0
  const acquisitions: { at: number; locker: number }[] = []
  const errors: unknown[] = []
  let longest = 0
  let stopAt = Number.POSITIVE_INFINITY

  const worker = async (index: number) => {
    while (Date.now() < stopAt) {
      const lock = lockers[index].locker.newLock('hot')
      let letGo: () => void = noop
      const asked = new Promise<void>((resolve) => (letGo = resolve))
      const result = await timed(lock.lock(never(), () => letGo()))
      longest = Math.max(longest, result.ms)
      if (result.error) {
        errors.push(result.error)
        await sleep(50)
        continue
      }
      inside++
      if (inside > 1) overlaps++
      acquisitions.push({ at: Date.now(), locker: index })
      // Hold up to 150 ms, or until asked to let go; then drain 20 ms, as a cancelled request.
      await Promise.race([sleep(150), asked])
      await sleep(20)
      inside--
      await lock.unlock()
    }
  }
  const workers = [0, 0, 0, 1, 1, 1].map((index) => worker(index))

  await sleep(700)
  await redis.stop()
  const downAt = Date.now()
  await sleep(500)
  await redis.start()
  const backAt = Date.now()
  await sleep(2500)
  stopAt = Date.now()
  await Promise.all(workers)

  expect(overlaps).toBe(0)
  for (const error of errors) {
    expect(error === ERRORS.ERR_LOCK_TIMEOUT || error instanceof RedisUnavailableError).toBe(true)
  }
  expect(longest).toBeLessThan(5000 + 1000)
  const before = acquisitions.filter((a) => a.at < downAt)
  const after = acquisitions.filter((a) => a.at > backAt)
  expect(before.length).toBeGreaterThanOrEqual(2)
  expect(after.length).toBeGreaterThanOrEqual(2)
  expect(new Set(after.map((a) => a.locker)).size).toBe(2)
  // None granted by the empty restarted Redis before it had been up for a TTL.
  expect(Math.min(...after.map((a) => a.at)) - backAt).toBeGreaterThanOrEqual(TTL - 150)
}, 40_000)

test('a holder still draining when Redis comes back empty is not overlapped by a new holder', async () => {
  const a = await makeLocker({ LOCK_TIMEOUT: '5s' })
  const b = await makeLocker({ LOCK_TIMEOUT: '5s' })
  const held = a.locker.newLock('upload-d')
  let askedAt = 0
  let unlockedAt = 0
  // As @tus/server with a drain of 600 ms (under the TTL): asked to let go, it unlocks 600 ms later.
  await held.lock(never(), () => {
    if (askedAt) return
    askedAt = Date.now()
    setTimeout(() => {
      unlockedAt = Date.now()
      void held.unlock()
    }, 600)
  })

  // A quick restart: the new Redis has no key, while A is still at work.
  await redis.restart()
  const backAt = Date.now()
  const taking = b.locker.newLock('upload-d')
  const result = await timed(taking.lock(never(), noop))
  const acquiredAt = Date.now()

  expect(result.error).toBeUndefined()
  expect(askedAt).toBeGreaterThan(0)
  expect(askedAt).toBeLessThan(backAt)
  expect(unlockedAt).toBeGreaterThan(0)
  expect(acquiredAt).toBeGreaterThanOrEqual(unlockedAt)
  expect(acquiredAt - backAt).toBeLessThan(TTL + 1500)
  await taking.unlock()
}, 20_000)
