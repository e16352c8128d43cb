import { closeRedis, createRedisClient, redisTarget, whenReady } from '../stores/redis/client.js'
import type { ReadinessCheck } from './health.js'

/** A probe waits this long for Redis to answer: /readyz must answer well within a probe's timeout. */
const TIMEOUT_MS = 1_000
/** A probe's answer is reused this long, so a storm of probes sends Redis one PING. */
export const REDIS_READY_REUSE_MS = 1_000

/**
 * Whether Redis (the locker, idempotency keys, upload info, the hook outbox) answers a PING, on a connection
 * of its own that keeps reconnecting, so readiness returns by itself once Redis does.
 */
export function redisReadiness(url: string, { timeoutMs = TIMEOUT_MS, reuseMs = REDIS_READY_REUSE_MS } = {}): ReadinessCheck {
  const target = `Redis at ${redisTarget(url)}`
  const client = createRedisClient(url, { connectionName: 'tusgate-ready', commandTimeout: timeoutMs, connectTimeout: timeoutMs })
  let last: { at: number; answer: Promise<void> } | undefined
  const ping = async () => {
    await whenReady(client, timeoutMs, target)
    try {
      await client.ping()
    } catch (error) {
      throw new Error(`${target} did not answer: ${(error as Error).message}`)
    }
  }
  return {
    check() {
      if (!last || Date.now() - last.at >= reuseMs) {
        const answer = ping()
        answer.catch(() => undefined)
        last = { at: Date.now(), answer }
      }
      return last.answer
    },
    close: () => closeRedis(client),
  }
}
