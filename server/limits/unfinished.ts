import type { DataStore } from '@tus/utils'
import { isExpired } from '../../stores/expiry.js'
import type { PrincipalSets } from './principalSets.js'

// A creation in flight holds a slot under this member until it knows its upload id.
const PENDING = 'pending:'
// A pending slot older than this was left by a process that died mid-creation.
const PENDING_TTL_MS = 10 * 60 * 1000

/** What a creation that got a slot does once it is over: records its upload (if one was made) and frees the pending slot. */
export type Settle = (uploadId: string | undefined) => Promise<void>

/**
 * At most `limit` unfinished uploads per principal. Each principal's uploads are a set of ids (in memory,
 * or in Redis for all instances), to which a creation adds itself before it counts; only when the count is
 * over the limit are the members checked against the store, and those finished, expired or gone dropped.
 * So the set heals after a crash and costs no store reads below the limit. Two creations racing for the
 * last slot may both be refused, never both let through.
 */
export function unfinishedLimit(limit: number, sets: PrincipalSets, datastore: DataStore) {
  /** Whether a member still holds a slot. A store error keeps it: better a refusal now than too many uploads. */
  const holds = async (member: string, now: number): Promise<boolean> => {
    if (member.startsWith(PENDING)) return now - Number(member.split(':')[1]) < PENDING_TTL_MS
    try {
      const upload = await datastore.getUpload(member)
      const finished = upload.size !== undefined && upload.offset === upload.size
      return !finished && !isExpired(upload, datastore.getExpiration(), now)
    } catch (error) {
      return (error as { status_code?: number }).status_code !== 404
    }
  }

  /** Drops the members that no longer hold a slot; resolves with how many are left. */
  const prune = async (principal: string): Promise<number> => {
    const members = await sets.members(principal)
    const now = Date.now()
    const held = await Promise.all(members.map((member) => holds(member, now)))
    await sets.remove(
      principal,
      members.filter((_, i) => !held[i]),
    )
    return held.filter(Boolean).length
  }

  return {
    limit,
    /** A slot for a new upload of `principal`, or undefined when it has `limit` unfinished ones. */
    async reserve(principal: string, requestId: string): Promise<Settle | undefined> {
      const pending = `${PENDING}${Date.now()}:${requestId}`
      if ((await sets.add(principal, pending)) > limit && (await prune(principal)) > limit) {
        await sets.remove(principal, [pending])
        return undefined
      }
      return async (uploadId) => {
        if (uploadId) await sets.add(principal, uploadId)
        await sets.remove(principal, [pending])
      }
    },
  }
}

export type UnfinishedLimit = ReturnType<typeof unfinishedLimit>
