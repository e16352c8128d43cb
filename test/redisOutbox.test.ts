import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { loadConfig } from '../server/config.js'
import { createRedisOutbox, RedisOutbox } from '../server/hooks/outbox/redis.js'
import { createRedisClient, RedisUnavailableError } from '../stores/redis/client.js'
import { outboxContract } from './helpers/outboxContract.js'
import { freePort, type RedisServer, startRedis } from './helpers/redis.js'
import { capturedLogger } from './helpers/servers.js'

// The Redis hook outbox against a real redis-server (a child process on a free port, nothing
// persisted); every outbox gets its own key prefix.

let redis: RedisServer
let probe: Redis
let prefixNo = 0
const open: RedisOutbox[] = []

const newPrefix = () => `ob${++prefixNo}-${process.pid}:`

async function makeOutbox(prefix: string, logger = capturedLogger().logger): Promise<RedisOutbox> {
  const config = loadConfig({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix })
  const outbox = await createRedisOutbox(config, logger)
  open.push(outbox)
  return outbox
}

beforeAll(async () => {
  redis = await startRedis()
  probe = new Redis(redis.url, { maxRetriesPerRequest: 2, connectTimeout: 2000 })
  probe.on('error', () => {})
}, 20_000)

afterAll(async () => {
  probe?.disconnect()
  await redis?.dispose()
})

beforeEach(async () => {
  if (!redis.running) await redis.start()
})

afterEach(async () => {
  await Promise.all(open.splice(0).map((outbox) => outbox.close()))
})

outboxContract('redis', async () => {
  const prefix = newPrefix()
  const outbox = await makeOutbox(prefix)
  return {
    outbox,
    reopen: () => makeOutbox(prefix),
    async cleanup() {
      await Promise.all(open.splice(0).map((o) => o.close()))
      const keys = await probe.keys(`${prefix}*`)
      if (keys.length) await probe.del(...keys)
    },
  }
})

test('two instances claiming the same outbox at once never get the same entry', async () => {
  const prefix = newPrefix()
  const [a, b] = await Promise.all([makeOutbox(prefix), makeOutbox(prefix)])
  const total = 400
  const ids = new Set<string>()
  for (let i = 0; i < total; i++) ids.add((await (i % 2 ? a : b).add('post-finish', { n: i })).id)

  const drain = async (outbox: RedisOutbox) => {
    const got: string[] = []
    for (let round = 0; round < total; round++) {
      const batch = await outbox.claimDue(7, 60_000)
      if (batch.length === 0) break
      got.push(...batch.map((e) => e.id))
    }
    return got
  }
  const [fromA, fromB] = await Promise.all([drain(a), drain(b)])
  const all = [...fromA, ...fromB]
  expect(new Set(all).size).toBe(all.length)
  expect(new Set(all)).toEqual(ids)
  // Both took part (each claim is one round trip, so they interleave).
  expect(fromA.length).toBeGreaterThan(0)
  expect(fromB.length).toBeGreaterThan(0)
  expect(await a.pending()).toBe(total)
})

test('an instance that dies mid-delivery leaves its entries to another once the lease lapses; its late report is ignored', async () => {
  const prefix = newPrefix()
  const { logger, logs } = capturedLogger()
  const a = await makeOutbox(prefix, logger)
  const b = await makeOutbox(prefix)
  const first = await a.add('post-terminate', { id: 'u1' })
  const second = await a.add('post-finish', { id: 'u2' })

  expect(await a.claimDue(10, 300)).toHaveLength(2)
  expect(await b.claimDue(10, 30_000)).toEqual([])
  await sleep(500)
  expect((await b.claimDue(10, 30_000)).map((e) => e.id).sort()).toEqual([first.id, second.id].sort())

  // A wakes up and reports failures: B holds the entries now, so nothing changes.
  await a.retry(first.id, 1, Date.now(), 'timeout')
  await a.deadLetter(second.id, 'gave up')
  expect(await a.claimDue(10, 30_000)).toEqual([])
  expect(await b.deadLetters()).toEqual([])
  expect(await b.pending()).toBe(2)
  const warnings = logs.filter((l) => l.level === 'warn').map((l) => [l.outboxId, l.report])
  expect(warnings).toEqual([
    [first.id, 'retry'],
    [second.id, 'dead-letter'],
  ])

  // B's reports count.
  await b.retry(first.id, 1, Date.now(), 'timeout')
  await b.deadLetter(second.id, 'gave up')
  const [again] = await a.claimDue(10, 30_000)
  expect(again).toMatchObject({ id: first.id, attempts: 1 })
  expect((await a.deadLetters()).map((e) => e.id)).toEqual([second.id])
  await a.complete(first.id)
  expect(await b.pending()).toBe(0)
})

test('operations ride out a dropped connection; entries are still there after the reconnect', async () => {
  const prefix = newPrefix()
  const outbox = await makeOutbox(prefix)
  const first = await outbox.add('post-finish', { n: 1 })

  const killed = await probe.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  expect(killed).toBeGreaterThan(0)
  const second = await outbox.add('post-finish', { n: 2 })
  expect(await outbox.pending()).toBe(2)

  await probe.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  const claimed = await outbox.claimDue(10, 30_000)
  expect(claimed.map((e) => e.id).sort()).toEqual([first.id, second.id].sort())
})

test('an unreachable Redis makes operations reject with RedisUnavailableError after the wait; one coming back within it is waited for', async () => {
  const outbox = await makeOutbox(newPrefix())
  await outbox.add('post-finish', { n: 1 })
  await redis.stop()
  let started = Date.now()
  await expect(outbox.add('post-finish', { n: 2 })).rejects.toBeInstanceOf(RedisUnavailableError)
  expect(Date.now() - started).toBeGreaterThanOrEqual(1900)
  expect(Date.now() - started).toBeLessThan(3000)

  started = Date.now()
  const adding = outbox.add('post-finish', { n: 3 })
  await sleep(300)
  await redis.start()
  const added = await adding
  expect(Date.now() - started).toBeLessThan(2000)
  // (This redis-server persists nothing: after its restart only the entry added since is there.)
  expect((await outbox.claimDue(10, 30_000)).map((e) => e.payload)).toEqual([added.payload])
})

test('createRedisOutbox rejects when Redis cannot be reached, and needs REDIS_URL', async () => {
  const port = await freePort()
  const config = loadConfig({ REDIS_URL: `redis://127.0.0.1:${port}` })
  await expect(createRedisOutbox(config, capturedLogger().logger)).rejects.toBeInstanceOf(RedisUnavailableError)
  await expect(createRedisOutbox(loadConfig({}), capturedLogger().logger)).rejects.toThrow('REDIS_URL')
})

test('outboxes under two prefixes do not see each other, and keep their keys under their prefix', async () => {
  const [p1, p2] = [newPrefix(), newPrefix()]
  const one = await makeOutbox(p1)
  const two = await makeOutbox(p2)
  const a = await one.add('post-finish', { n: 'one' })
  await two.add('post-terminate', { n: 'two' })
  await one.add('post-finish', { n: 'dead' })

  expect(await one.pending()).toBe(2)
  expect(await two.pending()).toBe(1)
  const claimed = await two.claimDue(10, 30_000)
  expect(claimed.map((e) => e.payload)).toEqual([{ n: 'two' }])
  await two.deadLetter(claimed[0].id, 'no')
  expect(await one.deadLetters()).toEqual([])
  expect((await one.claimDue(10, 30_000)).map((e) => e.id)).toContain(a.id)

  for (const prefix of [p1, p2]) {
    const keys = await probe.keys(`${prefix}*`)
    expect(keys.length).toBeGreaterThan(0)
    for (const key of keys) expect(key.startsWith(`${prefix}hooks:`)).toBe(true)
  }
})

test('a retry with a time that is not a number rejects and leaves the entry as it was', async () => {
  const outbox = await makeOutbox(newPrefix())
  const added = await outbox.add('post-finish', { n: 1 })
  await outbox.claimDue(1, 300)
  await expect(outbox.retry(added.id, 5, Number.NaN, 'bug')).rejects.toThrow()
  await sleep(400)
  expect(await outbox.claimDue(1, 30_000)).toEqual([added])
})

test('a RedisOutbox over a given client uses it as is and closes it on close()', async () => {
  const client = createRedisClient({ REDIS_URL: redis.url })
  await client.connect()
  const outbox = new RedisOutbox({ client, prefix: newPrefix(), logger: capturedLogger().logger })
  await outbox.add('post-finish', {})
  expect(await outbox.pending()).toBe(1)
  await outbox.close()
  expect(client.status).toBe('end')
})
