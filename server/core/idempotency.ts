import { createHash } from 'node:crypto'
import { ERRORS } from './errors.js'

/** What a key is remembered as: a request in progress, or the upload a finished one made. */
export type KeyEntry = { fingerprint: string; state: 'running'; token: string } | { fingerprint: string; state: 'done'; id: string }

/** A key claimed by this request: it ends with the upload made (`done`) or with none (`release`, the key is free again). */
export interface ClaimedKey {
  done(id: string): Promise<void>
  release(): Promise<void>
}

/**
 * Where Idempotency-Keys of creations are remembered (the process's memory, or Redis for every instance).
 * `claim` resolves with the key claimed for this request, or with the id of the upload an earlier request
 * with the same key made; it throws 422 for a key of a different request and 409 while that one runs.
 */
export interface IdempotencyKeys {
  claim(key: string, fingerprint: string): Promise<ClaimedKey | { replay: string }>
  close(): Promise<void>
}

/** The outcome of a key found taken: the upload to answer with, or why not. */
export function judge(entry: KeyEntry, fingerprint: string): { replay: string } {
  if (entry.fingerprint !== fingerprint) throw ERRORS.idempotencyKeyReused
  if (entry.state === 'running') throw ERRORS.idempotencyKeyRunning
  return { replay: entry.id }
}

/** A key as stored: the principal's and the client's key together, hashed (a key may be long or odd). */
export function scopedKey(principal: string | undefined, key: string): string {
  return createHash('sha256')
    .update(JSON.stringify([principal ?? '', key]))
    .digest('base64url')
}

/** What makes two creations the same request: what is created (sorted metadata), not how the bytes come. */
export function fingerprintOf(request: {
  kind: 'create' | 'final'
  size?: number
  metadata?: Record<string, string | null>
  concat?: string | string[]
}): string {
  const metadata = Object.entries(request.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash('sha256')
    .update(JSON.stringify([request.kind, request.size ?? null, metadata, request.concat ?? null]))
    .digest('base64url')
}
