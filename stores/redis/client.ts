import { Redis, type RedisOptions } from 'ioredis'
import { StoreError } from '../errors.js'

/**
 * Redis could not be reached (down, restarting, unreachable): a StoreError 'unavailable', also shaped
 * like a tus error, so `@tus/server` answers 503 (a client retries it) rather than a bare 500.
 */
export class RedisUnavailableError extends StoreError {
  readonly status_code = 503
  readonly body = 'A service the upload depends on is unavailable; retry shortly\n'

  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', message, options)
    this.name = 'RedisUnavailableError'
  }
}

/** A Redis URL without its password, for error messages and logs. */
export function redisTarget(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'redis'
  }
}

export interface RedisClientOptions {
  /** Shown by `CLIENT LIST` on the server, e.g. 'tusgate:locker'. */
  connectionName?: string
  /** A command without a reply after this long is rejected (a hung or partitioned server). */
  commandTimeout?: number
  /** A connection attempt is abandoned after this long (then retried, up to the retry strategy). */
  connectTimeout?: number
  /** Anything else for ioredis; wins over the defaults below. */
  redis?: RedisOptions
}

/**
 * An ioredis client for `url` (or a config's REDIS_URL) that fails fast rather than queueing: while Redis is unreachable a
 * command is rejected at once (no offline queue), a command in flight when the connection drops is
 * rejected rather than resent, and a command without a reply is rejected after `commandTimeout`. The
 * client keeps reconnecting in the background (every 50 ms, backing off to 1 s). It does not connect
 * until `connect()` or `connectRedis()`; it always has an 'error' listener (ioredis would print
 * otherwise), and `lastError(client)` is the last connection error, for messages.
 */
export function createRedisClient(url: string | { REDIS_URL?: string }, options: RedisClientOptions = {}): Redis {
  const target = typeof url === 'string' ? url : url.REDIS_URL
  if (!target) throw new Error('REDIS_URL is required for a Redis client')
  const client = new Redis(target, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeout ?? 5000,
    connectTimeout: options.connectTimeout ?? 5000,
    retryStrategy: (times) => Math.min(times * 50, 1000),
    connectionName: options.connectionName,
    ...options.redis,
  })
  client.on('error', (error: Error) => errors.set(client, error))
  client.on('ready', () => errors.delete(client))
  return client
}

const errors = new WeakMap<Redis, Error>()

/** The client's last connection error since it was last ready, if any. */
export function lastError(client: Redis): Error | undefined {
  return errors.get(client)
}

/**
 * Resolves when the client is ready (connecting it if it has not started); rejects with a
 * RedisUnavailableError after `timeoutMs`, or at once if the client was closed.
 */
export function whenReady(client: Redis, timeoutMs: number, target = 'Redis'): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  if (client.status === 'end') return Promise.reject(new RedisUnavailableError(`${target}: the client is closed`))
  if (client.status === 'wait') client.connect().catch(() => undefined)
  return new Promise<void>((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer)
      client.off('ready', onReady)
      client.off('end', onEnd)
      if (error) reject(error)
      else resolve()
    }
    const onReady = () => done()
    const onEnd = () => done(new RedisUnavailableError(`${target}: the client is closed`))
    const timer = setTimeout(() => {
      const cause = lastError(client)
      const reason = cause ? `: ${cause.message}` : ''
      done(new RedisUnavailableError(`cannot reach ${target} within ${timeoutMs} ms${reason}`, { cause }))
    }, timeoutMs)
    client.on('ready', onReady)
    client.on('end', onEnd)
  })
}

/** Connects a client from `createRedisClient`; on failure closes it and rejects with a RedisUnavailableError. */
export async function connectRedis(client: Redis, timeoutMs: number, target = 'Redis'): Promise<void> {
  try {
    await whenReady(client, timeoutMs, target)
  } catch (error) {
    client.disconnect()
    throw error
  }
}

/** Closes a client: politely (QUIT) when it is connected, else at once. Never rejects. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return
  if (client.status === 'ready') {
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()))
    try {
      await client.quit()
      await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 1000).unref())])
    } catch {
      // fall through to the hard close
    }
  }
  // (Not once ended: ioredis would arm a 2 s timer for the closed socket, holding the process open.)
  if ((client.status as string) !== 'end') client.disconnect()
}
