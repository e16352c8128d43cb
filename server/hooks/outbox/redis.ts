import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import { closeRedis, connectRedis, createRedisClient, RedisUnavailableError, redisTarget, whenReady } from '../../../stores/redis/client.js'
import type { Config } from '../../config.js'
import type { Logger } from '../../logger.js'
import type { DurableHookType, Outbox, OutboxEntry } from './types.js'

// The outbox is five keys under `${REDIS_KEY_PREFIX}hooks:`, changed only by the scripts below (or
// one MULTI), so they always agree:
//   entries  hash  id -> {"id","type","payload","createdAt"} (JSON, written once)
//   states   hash  id -> {"attempts","nextAttemptAt","lastError"?} (JSON, rewritten by retry)
//   due      zset  id -> nextAttemptAt, or the lease's expiry while leased
//   leases   hash  id -> token of the claim that leased it last
//   dead     hash  id -> {"entry":…,"state":…,"lastError":…} (JSON)
// Scripts never decode JSON (cjson would turn [] into {} and round large numbers): they store and
// splice the strings built here.
//
// Time: every time the outbox itself takes (createdAt, "due now", "now" when claiming, lease
// expiries) is the Redis server's clock (TIME, in the scripts), so leases hold between instances
// whose clocks disagree. `retry`'s nextAttemptAt is the caller's clock, stored as given: a skew
// between that instance and Redis moves that one retry by the skew, never shortens a lease.
const SCRIPTS = {
  // KEYS: entries, states, due. ARGV: id, the entry's JSON without createdAt. Returns createdAt (ms).
  // Idempotent for one id, so a call whose reply was lost can be sent again.
  tusgateOutboxAdd: {
    numberOfKeys: 3,
    lua: `local now = redis.call('TIME')
now = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
if redis.call('HSETNX', KEYS[1], ARGV[1], string.sub(ARGV[2], 1, -2) .. ',"createdAt":' .. now .. '}') == 0 then
  return tonumber(string.match(redis.call('HGET', KEYS[1], ARGV[1]), '"createdAt":(%d+)}$'))
end
redis.call('HSET', KEYS[2], ARGV[1], '{"attempts":0,"nextAttemptAt":' .. now .. '}')
redis.call('ZADD', KEYS[3], now, ARGV[1])
return tonumber(now)`,
  },
  // KEYS: due, entries, states, leases. ARGV: limit, leaseMs, token. Returns [entry, state, ...] of
  // the earliest due entries, each now leased to `token` until now + leaseMs.
  tusgateOutboxClaim: {
    numberOfKeys: 4,
    lua: `local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local leasedUntil = string.format('%d', now + tonumber(ARGV[2]))
local claimed = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local entry = redis.call('HGET', KEYS[2], id)
  if entry then
    redis.call('ZADD', KEYS[1], leasedUntil, id)
    redis.call('HSET', KEYS[4], id, ARGV[3])
    claimed[#claimed + 1] = entry
    claimed[#claimed + 1] = redis.call('HGET', KEYS[3], id)
  else
    -- due without an entry: only a hand-edited key does that; not worth a lease
    redis.call('ZREM', KEYS[1], id)
  end
end
return claimed`,
  },
  // KEYS: entries, states, due, leases. ARGV: id, token ('' for any holder), state JSON, nextAttemptAt.
  // 1 rescheduled, 0 no such entry, -1 leased to another claim since (left to that holder).
  tusgateOutboxRetry: {
    numberOfKeys: 4,
    lua: `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) -- first: a bad time fails the script before it writes
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`,
  },
  // KEYS: entries, states, due, leases, dead. ARGV: id, token ('' for any holder), lastError as JSON.
  // 1 moved, 0 no such entry, -1 leased to another claim since (left to that holder).
  tusgateOutboxDeadLetter: {
    numberOfKeys: 5,
    lua: `local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return -1 end
local state = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[5], ARGV[1], '{"entry":' .. entry .. ',"state":' .. state .. ',"lastError":' .. ARGV[3] .. '}')
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`,
  },
} as const

type OutboxClient = Redis & {
  tusgateOutboxAdd(entries: string, states: string, due: string, id: string, head: string): Promise<number>
  tusgateOutboxClaim(due: string, entries: string, states: string, leases: string, limit: number, leaseMs: number, token: string): Promise<string[]>
  tusgateOutboxRetry(
    entries: string,
    states: string,
    due: string,
    leases: string,
    id: string,
    token: string,
    state: string,
    nextAttemptAt: number,
  ): Promise<number>
  tusgateOutboxDeadLetter(
    entries: string,
    states: string,
    due: string,
    leases: string,
    dead: string,
    id: string,
    token: string,
    lastError: string,
  ): Promise<number>
}

type StoredEntry = Pick<OutboxEntry, 'id' | 'type' | 'payload' | 'createdAt'>
type StoredState = Pick<OutboxEntry, 'attempts' | 'nextAttemptAt'> & { lastError?: string }

export interface RedisOutboxOptions {
  /** A client from `createRedisClient` (no offline queue, bounded commands), connected; closed by close(). */
  client: Redis
  /** Key prefix (REDIS_KEY_PREFIX); the outbox's keys are `${prefix}hooks:…`. */
  prefix: string
  logger: Logger
  /** How long an operation rides out a dropped connection (the client reconnecting) before it rejects. */
  unavailableWaitMs?: number
  /** For messages: where Redis is, without credentials. */
  target?: string
}

/**
 * The hook outbox in Redis, shared by every instance using the same Redis and prefix: any of them
 * delivers any pending entry, a claim leases entries atomically (one script), and the entries of an
 * instance that died mid-delivery are claimed again once their lease lapses.
 *
 * `add` resolves once Redis has acknowledged the write. Whether that survives a crash of Redis itself
 * is the operator's choice of Redis persistence: `appendonly yes` with `appendfsync always` loses
 * nothing acknowledged, `everysec` (Redis' default with AOF) up to a second, RDB snapshots alone
 * everything since the last one, and no persistence everything on a restart.
 *
 * A report (`retry`, `deadLetter`) from an instance whose lease lapsed and was claimed again since is
 * ignored (and logged): the entry is the new holder's, and rescheduling it would let a third claimer
 * deliver it alongside. `complete` always counts: the receiver has the call. (Only the latest claim of
 * an id by this instance is remembered: a report from an earlier, lapsed claim by this same instance
 * counts. A dispatcher whose delivery timeout is shorter than its lease never meets that.)
 */
export class RedisOutbox implements Outbox {
  private readonly client: OutboxClient
  private readonly logger: Logger
  private readonly unavailableWaitMs: number
  private readonly target: string
  private readonly keys: { entries: string; states: string; due: string; leases: string; dead: string }
  /** Token of this instance's latest claim of each id it has not yet reported on. */
  private readonly claims = new Map<string, string>()

  constructor(options: RedisOutboxOptions) {
    this.client = options.client as OutboxClient
    for (const [name, script] of Object.entries(SCRIPTS)) {
      if (!(name in this.client)) this.client.defineCommand(name, script)
    }
    this.logger = options.logger
    this.unavailableWaitMs = options.unavailableWaitMs ?? 2000
    this.target = options.target ?? 'Redis'
    const key = (name: string) => `${options.prefix}hooks:${name}`
    this.keys = { entries: key('entries'), states: key('states'), due: key('due'), leases: key('leases'), dead: key('dead') }
  }

  async add(type: DurableHookType, payload: unknown): Promise<OutboxEntry> {
    const id = randomUUID()
    const { entries, states, due } = this.keys
    const head = JSON.stringify({ id, type, payload } satisfies Omit<StoredEntry, 'createdAt'>)
    const createdAt = await this.run(() => this.client.tusgateOutboxAdd(entries, states, due, id, head))
    return { id, type, payload, attempts: 0, nextAttemptAt: createdAt, createdAt }
  }

  async claimDue(limit: number, leaseMs: number): Promise<OutboxEntry[]> {
    if (limit < 1) return [] // (to Redis, a negative LIMIT count means all)
    const token = randomBytes(12).toString('hex')
    const { due, entries, states, leases } = this.keys
    const reply = await this.run(() => this.client.tusgateOutboxClaim(due, entries, states, leases, limit, leaseMs, token))
    const claimed: OutboxEntry[] = []
    for (let i = 0; i < reply.length; i += 2) {
      const entry = toEntry(reply[i], reply[i + 1])
      this.claims.set(entry.id, token)
      claimed.push(entry)
    }
    return claimed
  }

  async complete(id: string): Promise<void> {
    const { entries, states, due, leases } = this.keys
    await this.run(() => this.client.multi().hdel(entries, id).hdel(states, id).zrem(due, id).hdel(leases, id).exec())
    this.claims.delete(id)
  }

  async retry(id: string, attempts: number, nextAttemptAt: number, lastError: string): Promise<void> {
    const { entries, states, due, leases } = this.keys
    const state = JSON.stringify({ attempts, nextAttemptAt, lastError } satisfies StoredState)
    const token = this.claims.get(id) ?? ''
    const done = await this.run(() => this.client.tusgateOutboxRetry(entries, states, due, leases, id, token, state, nextAttemptAt))
    this.reported(id, token, done, 'retry')
  }

  async deadLetter(id: string, lastError: string): Promise<void> {
    const { entries, states, due, leases, dead } = this.keys
    const token = this.claims.get(id) ?? ''
    const done = await this.run(() => this.client.tusgateOutboxDeadLetter(entries, states, due, leases, dead, id, token, JSON.stringify(lastError)))
    this.reported(id, token, done, 'dead-letter')
  }

  async deadLetters(): Promise<(OutboxEntry & { lastError: string })[]> {
    const stored = await this.run(() => this.client.hvals(this.keys.dead))
    return stored
      .map((json) => {
        const { entry, state, lastError } = JSON.parse(json) as { entry: StoredEntry; state: StoredState; lastError: string }
        return { ...entry, attempts: state.attempts, nextAttemptAt: state.nextAttemptAt, lastError }
      })
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
  }

  pending(): Promise<number> {
    return this.run(() => this.client.hlen(this.keys.entries))
  }

  /** Ends the connection. Leases this instance holds are left to lapse, so other instances claim them. */
  async close(): Promise<void> {
    this.claims.clear()
    await closeRedis(this.client)
  }

  private reported(id: string, token: string, done: number, what: string): void {
    // (Unless a newer claim of ours took the id meanwhile: that one is still to be reported.)
    if (this.claims.get(id) === token) this.claims.delete(id)
    if (done === -1) {
      this.logger.warn('hook outbox: lease lapsed before the report; another claim holds the entry now', { outboxId: id, report: what })
    }
  }

  /**
   * Runs one operation; when the connection had dropped (the client rejects at once without an offline
   * queue), runs it again once the client has reconnected, for up to `unavailableWaitMs`. Every
   * operation is safe to repeat: add keeps its id, a repeated claim only leases entries that lapse again.
   */
  private async run<T>(operation: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.unavailableWaitMs
    for (;;) {
      try {
        return await operation()
      } catch (error) {
        const connected = this.client.status === 'ready' && this.client.stream?.writable
        if (connected || this.client.status === 'end') throw error
        const left = deadline - Date.now()
        const message = `hook outbox: ${this.target} is unreachable: ${(error as Error).message}`
        if (left <= 0) throw new RedisUnavailableError(message, { cause: error })
        await whenReady(this.client, left, this.target)
        // Still 'ready' until ioredis has seen the socket close: not in a tight loop meanwhile.
        if (!this.client.stream?.writable) await sleep(10)
      }
    }
  }
}

function toEntry(entryJson: string, stateJson: string): OutboxEntry {
  const entry = JSON.parse(entryJson) as StoredEntry
  const state = JSON.parse(stateJson) as StoredState
  return { ...entry, attempts: state.attempts, nextAttemptAt: state.nextAttemptAt }
}

/** The outbox in REDIS_URL under REDIS_KEY_PREFIX, with its own connection; rejects if Redis cannot be reached. */
export async function createRedisOutbox(config: Pick<Config, 'REDIS_URL' | 'REDIS_KEY_PREFIX'>, logger: Logger): Promise<RedisOutbox> {
  if (!config.REDIS_URL) throw new Error('the Redis hook outbox needs REDIS_URL')
  const target = redisTarget(config.REDIS_URL)
  const client = createRedisClient(config, { connectionName: 'tusgate-hook-outbox' })
  await connectRedis(client, 5000, target)
  return new RedisOutbox({ client, prefix: config.REDIS_KEY_PREFIX, logger, target })
}
