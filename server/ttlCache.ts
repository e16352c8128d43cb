/**
 * A map whose entries lapse `ttl` ms after they were set, holding at most `capacity` of them (the
 * oldest set goes first). Lapsed entries are dropped as they are met, so it needs no timer.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>()

  constructor(
    private readonly ttl: number,
    private readonly capacity: number,
  ) {}

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expires > now) return entry.value
    this.entries.delete(key)
    return undefined
  }

  set(key: string, value: V, now = Date.now(), ttl = this.ttl): void {
    this.entries.delete(key)
    this.entries.set(key, { value, expires: now + ttl })
    // Insertion order is the order of setting: the first entries are the oldest.
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.capacity && entry.expires > now) break
      this.entries.delete(oldest)
    }
  }

  delete(key: string): void {
    this.entries.delete(key)
  }

  get size(): number {
    return this.entries.size
  }
}
