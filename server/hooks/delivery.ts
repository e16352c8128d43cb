import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Outbox, OutboxEntry } from './outbox/types.js'
import type { HookTransport } from './transport.js'
import type { HookRequest } from './types.js'

const POLL_MS = 250
const BATCH = 16
const STOP_GRACE_MS = 2_000

export type DeliveryConfig = Pick<Config, 'HOOKS_TIMEOUT' | 'HOOKS_BACKOFF' | 'HOOKS_BACKOFF_MAX' | 'HOOKS_MAX_ATTEMPTS'>

/** The wait before attempt `attempts + 1`: exponential from HOOKS_BACKOFF, capped at HOOKS_BACKOFF_MAX, with jitter (50-100 %). */
export function backoffDelay(config: DeliveryConfig, attempts: number): number {
  const full = Math.min(config.HOOKS_BACKOFF_MAX, config.HOOKS_BACKOFF * 2 ** Math.min(attempts - 1, 30))
  return Math.round(full * (0.5 + Math.random() / 2))
}

/**
 * Delivers the outbox's entries (post-finish, post-terminate) until each is delivered or, after
 * HOOKS_MAX_ATTEMPTS failed attempts, dead-lettered with an error log line: none is dropped silently.
 * Entries left by an earlier run (tusgate restarted) are delivered as soon as it starts.
 */
export class DurableDelivery {
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  private stopped = false

  constructor(
    private readonly outbox: Outbox,
    private readonly hook: HookTransport,
    private readonly config: DeliveryConfig,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  start(): void {
    this.schedule(0)
  }

  /** Something was added: look now rather than at the next poll. */
  wake(): void {
    if (!this.running && !this.stopped) this.schedule(0)
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined
        if (!this.stopped) this.schedule(POLL_MS)
      })
    }, ms)
  }

  private async tick(): Promise<void> {
    // A lease outlasts one attempt, so no other poller takes an entry while it is being sent.
    const leaseMs = this.config.HOOKS_TIMEOUT * 2 + 5_000
    let due: OutboxEntry[]
    try {
      due = await this.outbox.claimDue(BATCH, leaseMs)
    } catch (error) {
      this.logger.error('hook outbox unreadable', { error })
      return
    }
    await Promise.all(due.map((entry) => this.deliver(entry)))
  }

  private async deliver(entry: OutboxEntry): Promise<void> {
    const request = entry.payload as HookRequest
    const ids = { hookId: entry.id, type: entry.type, uploadId: request.Event?.Upload?.ID }
    let reason: string | undefined
    try {
      await this.hook.call(request, { retry: false })
    } catch (error) {
      reason = (error as Error).message
    }
    this.metrics.hookInvocations.inc({ type: entry.type, outcome: reason === undefined ? 'ok' : 'error' })
    const attempts = entry.attempts + 1
    try {
      if (reason === undefined) {
        await this.outbox.complete(entry.id)
      } else if (attempts >= this.config.HOOKS_MAX_ATTEMPTS) {
        await this.outbox.deadLetter(entry.id, reason)
        this.metrics.hookDeadLetters.inc({ type: entry.type })
        this.logger.error('hook dead-lettered', { ...ids, attempts, error: reason })
      } else {
        const delay = backoffDelay(this.config, attempts)
        await this.outbox.retry(entry.id, attempts, Date.now() + delay, reason)
        this.logger.warn('hook delivery failed', { ...ids, attempts, retryInMs: delay, error: reason })
      }
    } catch (outboxError) {
      // The lease lapses and the entry is tried again: delivered twice at worst, never lost.
      this.logger.error('hook outbox update failed', { ...ids, error: outboxError })
    }
  }

  /**
   * Stops polling and gives deliveries in flight a moment to finish. One still waiting on a slow receiver
   * stays in the outbox and is sent again after the next start (at least once, maybe twice).
   */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await Promise.race([this.running, sleep(STOP_GRACE_MS, undefined, { ref: false })])
  }
}
