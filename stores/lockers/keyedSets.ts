/** Sets of values by key (a lock's holders, its waiters' wake-ups); a key whose set empties is dropped. */
export class KeyedSets<T> {
  private readonly sets = new Map<string, Set<T>>()

  add(key: string, value: T): void {
    let set = this.sets.get(key)
    if (!set) {
      set = new Set()
      this.sets.set(key, set)
    }
    set.add(value)
  }

  /** false when `value` was not in `key`'s set. */
  delete(key: string, value: T): boolean {
    const set = this.sets.get(key)
    if (!set?.delete(value)) return false
    if (set.size === 0) this.sets.delete(key)
    return true
  }

  /** A copy, so that a caller may change the sets while going through it. */
  get(key: string): T[] {
    return [...(this.sets.get(key) ?? [])]
  }

  all(): T[] {
    return [...this.sets.values()].flatMap((set) => [...set])
  }

  clear(): void {
    this.sets.clear()
  }
}
