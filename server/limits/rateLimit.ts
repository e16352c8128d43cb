import type { Redis } from 'ioredis'
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible'

export interface Rate {
  points: number
  seconds: number
}

/**
 * A fixed-window counter of requests per key (a client address, a principal): `rate.points` per
 * `rate.seconds`. In this process, or in Redis (under `keyPrefix`) so that every instance counts together.
 */
export function rateLimiter(rate: Rate, keyPrefix: string, redis?: Redis): RateLimiterAbstract {
  const options = { points: rate.points, duration: rate.seconds, keyPrefix }
  // rejectIfRedisNotReady: no waiting on a Redis that is down (the client has no offline queue anyway).
  return redis ? new RateLimiterRedis({ ...options, storeClient: redis, rejectIfRedisNotReady: true }) : new RateLimiterMemory(options)
}

/** Counts one request for `key`: undefined when it is within the rate, else the seconds until it would be. Store errors reject. */
export async function retryAfter(limiter: RateLimiterAbstract, key: string): Promise<number | undefined> {
  try {
    await limiter.consume(key)
    return undefined
  } catch (error) {
    if (error instanceof RateLimiterRes) return Math.max(1, Math.ceil(error.msBeforeNext / 1000))
    throw error
  }
}
