/** The hook types whose delivery must survive a receiver outage and a restart of tusgate. */
export type DurableHookType = 'post-finish' | 'post-terminate'

/** One hook call waiting to be delivered. */
export interface OutboxEntry {
  /** Unique per entry (random); stable across attempts and restarts. */
  id: string
  type: DurableHookType
  /** The JSON body to POST to the receiver, exactly as built when the event happened. */
  payload: unknown
  /** Failed attempts so far. */
  attempts: number
  /** Epoch ms of the next attempt. */
  nextAttemptAt: number
  /** Epoch ms the event happened. */
  createdAt: number
}

/**
 * Durable storage for hook calls that must be delivered at least once (post-finish, post-terminate).
 * It stores; it does not deliver: the hook dispatcher polls `claimDue`, POSTs each entry, and reports
 * back with `complete`, `retry` or `deadLetter`. Implementations: on disk (one instance) and in Redis
 * (several instances sharing one outbox).
 */
export interface Outbox {
  /** Persists a new entry, due now; resolves only once it would survive a crash of this process. */
  add(type: DurableHookType, payload: unknown): Promise<OutboxEntry>
  /**
   * Up to `limit` entries whose `nextAttemptAt` has passed, each leased to the caller for `leaseMs`:
   * until the lease lapses no other `claimDue` (in this or another process) returns it again.
   */
  claimDue(limit: number, leaseMs: number): Promise<OutboxEntry[]>
  /** Delivered: the entry is gone for good. */
  complete(id: string): Promise<void>
  /** Failed again: due again at `nextAttemptAt`, with `attempts` recorded; the lease ends. */
  retry(id: string, attempts: number, nextAttemptAt: number, lastError: string): Promise<void>
  /** Given up: moved to the dead-letter store (kept for an operator, never retried), with the last error. */
  deadLetter(id: string, lastError: string): Promise<void>
  /** Entries in the dead-letter store, oldest first (for operators and tests). */
  deadLetters(): Promise<(OutboxEntry & { lastError: string })[]>
  /** Entries still waiting (leased or not). */
  pending(): Promise<number>
  close(): Promise<void>
}
