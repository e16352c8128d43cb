import type { Config } from '../config.js'
import type { IdempotencyKeys } from '../core/idempotency.js'
import { memoryKeys } from './memory.js'

/** Where creations' Idempotency-Keys are kept: Redis with REDIS_URL (every instance answers), else this process; none with IDEMPOTENCY_TTL=0. */
export async function createIdempotencyKeys(config: Config): Promise<IdempotencyKeys | undefined> {
  if (config.IDEMPOTENCY_TTL === 0) return undefined
  // Loaded only when used: the Redis client is a module a process without Redis need not hold.
  return config.REDIS_URL ? (await import('./redis.js')).redisKeys(config) : memoryKeys(config.IDEMPOTENCY_TTL)
}
