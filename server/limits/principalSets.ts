import type { Redis } from 'ioredis'

/** A set of strings per principal, in this process or shared through Redis. */
export interface PrincipalSets {
  /** Adds a member; resolves with the set's size after it. */
  add(principal: string, member: string): Promise<number>
  remove(principal: string, members: string[]): Promise<void>
  members(principal: string): Promise<string[]>
}

export class MemorySets implements PrincipalSets {
  private readonly sets = new Map<string, Set<string>>()

  async add(principal: string, member: string): Promise<number> {
    const set = this.sets.get(principal) ?? new Set<string>()
    this.sets.set(principal, set.add(member))
    return set.size
  }

  async remove(principal: string, members: string[]): Promise<void> {
    const set = this.sets.get(principal)
    if (!set) return
    for (const member of members) set.delete(member)
    // No empty sets left behind for principals that come once.
    if (set.size === 0) this.sets.delete(principal)
  }

  async members(principal: string): Promise<string[]> {
    return [...(this.sets.get(principal) ?? [])]
  }
}

/** One Redis set per principal, `<prefix><principal>`; adding and counting are one transaction. */
export class RedisSets implements PrincipalSets {
  constructor(
    private readonly client: Redis,
    private readonly prefix: string,
  ) {}

  async add(principal: string, member: string): Promise<number> {
    const results = await this.client.multi().sadd(this.key(principal), member).scard(this.key(principal)).exec()
    if (!results) throw new Error('the Redis transaction was aborted')
    for (const [error] of results) if (error) throw error
    return results[1][1] as number
  }

  async remove(principal: string, members: string[]): Promise<void> {
    if (members.length > 0) await this.client.srem(this.key(principal), ...members)
  }

  members(principal: string): Promise<string[]> {
    return this.client.smembers(this.key(principal))
  }

  private key(principal: string): string {
    return `${this.prefix}${principal}`
  }
}
