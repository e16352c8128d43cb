import type { Config } from '../config.js'
import type { IdempotencyKeys } from '../core/idempotency.js'
import { memoryKeys } from './memory.js'
import { redisKeys } from './redis.js'

/** Where creations' Idempotency-Keys are kept: Redis with REDIS_URL (every instance answers), else this process; none with IDEMPOTENCY_TTL=0. */
export async function createIdempotencyKeys(config: Config): Promise<IdempotencyKeys | undefined> {
  if (config.IDEMPOTENCY_TTL === 0) return undefined
  return config.REDIS_URL ? redisKeys(config) : memoryKeys(config.IDEMPOTENCY_TTL)
}
