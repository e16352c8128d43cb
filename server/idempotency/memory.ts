import { randomUUID } from 'node:crypto'
import { type ClaimedKey, type IdempotencyKeys, judge, type KeyEntry } from '../core/idempotency.js'
import { TtlCache } from '../ttlCache.js'

/** How many keys one process remembers at most (the oldest are forgotten first). */
const MAX_KEYS = 100_000

/** Idempotency-Keys in this process: one instance, forgotten on restart. */
export function memoryKeys(ttl: number): IdempotencyKeys {
  const entries = new TtlCache<KeyEntry>(ttl, MAX_KEYS)
  const ours = (key: string, token: string) => {
    const entry = entries.get(key)
    return entry?.state === 'running' && entry.token === token
  }
  return {
    async claim(key, fingerprint): Promise<ClaimedKey | { replay: string }> {
      const entry = entries.get(key)
      if (entry) return judge(entry, fingerprint)
      const token = randomUUID()
      entries.set(key, { fingerprint, state: 'running', token })
      return {
        async done(id) {
          if (ours(key, token)) entries.set(key, { fingerprint, state: 'done', id })
        },
        async release() {
          if (ours(key, token)) entries.delete(key)
        },
      }
    },
    async close() {},
  }
}
