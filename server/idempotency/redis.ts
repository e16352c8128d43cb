import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { closeRedis, connectRedis, createRedisClient, RedisUnavailableError, redisTarget, whenReady } from '../../stores/redis/client.js'
import type { Config } from '../config.js'
import { UploadError } from '../core/errors.js'
import { type ClaimedKey, type IdempotencyKeys, judge, type KeyEntry } from '../core/idempotency.js'

/** A running request's claim lapses this long after its instance stops renewing it (it died). */
const LEASE_MS = 30_000

// KEYS[1]: the key. ARGV: the value it must still hold, the new value ('' removes it), its lifetime (ms).
const SWAP = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

/**
 * Idempotency-Keys in Redis, shared by every instance: `<REDIS_KEY_PREFIX>idempotency:<key>` holds the
 * entry as JSON. A running request's entry is renewed while it runs, so an instance that dies frees its
 * keys within LEASE_MS; a finished one's lasts IDEMPOTENCY_TTL.
 */
export async function redisKeys(config: Pick<Config, 'REDIS_URL' | 'REDIS_KEY_PREFIX' | 'IDEMPOTENCY_TTL'>): Promise<IdempotencyKeys> {
  const target = redisTarget(config.REDIS_URL as string)
  const client: Redis = createRedisClient(config, { connectionName: 'tusgate-idempotency' })
  await connectRedis(client, 5000, target)
  const name = (key: string) => `${config.REDIS_KEY_PREFIX}idempotency:${key}`
  const swap = (key: string, from: string, to: string, ms: number) => client.eval(SWAP, 1, name(key), from, to, String(ms))

  /** Redis failures as the catalogue's 503: the creation is refused, never made without its key. */
  const reaching = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      await whenReady(client, 2000, target)
      return await run()
    } catch (error) {
      if (error instanceof UploadError || error instanceof RedisUnavailableError) throw error
      throw new RedisUnavailableError(`${target}: ${(error as Error).message}`, { cause: error })
    }
  }

  const claim = async (key: string, fingerprint: string): Promise<ClaimedKey | { replay: string }> => {
    const running = JSON.stringify({ fingerprint, state: 'running', token: randomUUID() } satisfies KeyEntry)
    // A key that lapses between the SET and the GET is tried again.
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await client.set(name(key), running, 'PX', LEASE_MS, 'NX')) === 'OK') {
        const renewal = setInterval(() => void swap(key, running, running, LEASE_MS).catch(() => {}), LEASE_MS / 3).unref()
        const settle = (to: string, ms: number) => {
          clearInterval(renewal)
          return reaching(() => swap(key, running, to, ms)).then(() => {})
        }
        return {
          done: (id) => settle(JSON.stringify({ fingerprint, state: 'done', id } satisfies KeyEntry), config.IDEMPOTENCY_TTL),
          release: () => settle('', 0),
        }
      }
      const found = await client.get(name(key))
      if (found !== null) return judge(JSON.parse(found) as KeyEntry, fingerprint)
    }
    throw new RedisUnavailableError(`${target}: an Idempotency-Key kept changing`)
  }

  return {
    claim: (key, fingerprint) => reaching(() => claim(key, fingerprint)),
    close: () => closeRedis(client),
  }
}
