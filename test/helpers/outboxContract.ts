import { setTimeout as sleep } from 'node:timers/promises'
import type { Outbox } from '../../server/hooks/outbox/types.js'

export interface OutboxSubject {
  /** A fresh, empty outbox. */
  outbox: Outbox
  /** A new instance over the same storage, as after a restart of tusgate (the caller closes the old one first). */
  reopen(): Promise<Outbox>
  /** Closes what is still open (close() may already have been called) and removes what the subject made. */
  cleanup(): Promise<void>
}

// A payload as a hook builds it, with what a careless encoder would change: an empty array and object,
// a number past 2^53's neighbourhood of precision, a string with quotes, slashes and non-ASCII.
const PAYLOAD = {
  Type: 'post-finish',
  Event: {
    Upload: { ID: 'a1b2', Size: 9007199254740991, Offset: 9007199254740991, MetaData: { filename: 'ä "x"/y\\z.txt' } },
    HTTPRequest: { Method: 'PATCH', URI: '/files/a1b2', Header: {} },
    Tags: [],
  },
}

/**
 * The behaviour every hook outbox owes the dispatcher, run against each implementation: add, claim
 * (leased), complete, retry, dead-letter, pending counts, survival across a restart. `make()` builds
 * a fresh, empty outbox.
 */
export function outboxContract(name: string, make: () => Promise<OutboxSubject>) {
  describe(`outbox contract: ${name}`, () => {
    let subject: OutboxSubject
    let outbox: Outbox
    beforeEach(async () => {
      subject = await make()
      outbox = subject.outbox
    })
    afterEach(() => subject?.cleanup())

    test('an added entry is due at once, claimed with its payload intact, and gone once completed', async () => {
      const before = Date.now()
      const added = await outbox.add('post-finish', PAYLOAD)
      expect(added).toMatchObject({ type: 'post-finish', payload: PAYLOAD, attempts: 0 })
      expect(added.id).toMatch(/\S{8,}/)
      // Within a second of this process' clock (an implementation may use its storage's clock).
      expect(Math.abs(added.createdAt - before)).toBeLessThan(1000)
      expect(added.nextAttemptAt).toBe(added.createdAt)
      expect(await outbox.pending()).toBe(1)

      const claimed = await outbox.claimDue(10, 30_000)
      expect(claimed).toEqual([added])
      await outbox.complete(added.id)
      expect(await outbox.pending()).toBe(0)
      expect(await outbox.claimDue(10, 30_000)).toEqual([])
      expect(await outbox.deadLetters()).toEqual([])
    })

    test('a claimed entry is leased: no other claim returns it until the lease lapses', async () => {
      const added = await outbox.add('post-terminate', { id: 'x' })
      expect((await outbox.claimDue(10, 400)).map((e) => e.id)).toEqual([added.id])
      expect(await outbox.claimDue(10, 400)).toEqual([])
      expect(await outbox.pending()).toBe(1) // leased entries still count
      await sleep(600)
      const again = await outbox.claimDue(10, 30_000)
      expect(again.map((e) => e.id)).toEqual([added.id])
      expect(again[0].attempts).toBe(0)
    })

    test('claims honour the limit, earliest due first, and concurrent claims never share an entry', async () => {
      const ids: string[] = []
      for (let i = 0; i < 30; i++) {
        ids.push((await outbox.add('post-finish', { n: i })).id)
        await sleep(2) // each due a little later than the one before
      }
      const first = await outbox.claimDue(4, 30_000)
      expect(first.map((e) => e.id)).toEqual(ids.slice(0, 4))
      const rest = await Promise.all(Array.from({ length: 6 }, () => outbox.claimDue(5, 30_000)))
      const claimed = [...first, ...rest.flat()].map((e) => e.id)
      expect(new Set(claimed).size).toBe(claimed.length)
      expect(claimed.sort()).toEqual([...ids].sort())
      expect(await outbox.claimDue(5, 30_000)).toEqual([])
    })

    test('retry records the attempts and error, ends the lease and makes the entry due at nextAttemptAt', async () => {
      const added = await outbox.add('post-finish', PAYLOAD)
      await outbox.claimDue(1, 30_000)
      const nextAttemptAt = Date.now() + 700
      await outbox.retry(added.id, 1, nextAttemptAt, 'receiver answered 503')
      expect(await outbox.claimDue(10, 30_000)).toEqual([]) // not yet due
      expect(await outbox.pending()).toBe(1)
      await sleep(nextAttemptAt - Date.now() + 300)
      const [due] = await outbox.claimDue(10, 30_000)
      expect(due).toEqual({ ...added, attempts: 1, nextAttemptAt })

      // A retry due at once is claimable at once: the earlier lease ended with the report.
      await outbox.retry(added.id, 2, Date.now(), 'connection refused')
      expect((await outbox.claimDue(10, 30_000)).map((e) => ({ id: e.id, attempts: e.attempts }))).toEqual([{ id: added.id, attempts: 2 }])
    })

    test('a late report on an entry that is gone does not bring it back', async () => {
      const done = await outbox.add('post-finish', { id: 'done' })
      const dead = await outbox.add('post-finish', { id: 'dead' })
      await outbox.claimDue(10, 30_000)
      await outbox.complete(done.id)
      await outbox.deadLetter(dead.id, 'receiver answered 400')
      // Whether such a report resolves or rejects is the implementation's; it must not resurrect the entry.
      await outbox.retry(done.id, 1, Date.now(), 'late').catch(() => undefined)
      await outbox.retry(dead.id, 1, Date.now(), 'late').catch(() => undefined)
      await outbox.deadLetter(done.id, 'late').catch(() => undefined)
      await outbox.complete(done.id).catch(() => undefined)
      expect(await outbox.pending()).toBe(0)
      expect(await outbox.claimDue(10, 30_000)).toEqual([])
      expect((await outbox.deadLetters()).map((e) => [e.id, e.lastError])).toEqual([[dead.id, 'receiver answered 400']])
    })

    test('dead letters leave the outbox for good and are listed oldest first with their last error', async () => {
      const older = await outbox.add('post-finish', PAYLOAD)
      await sleep(5) // distinct createdAt
      const newer = await outbox.add('post-terminate', { id: 'gone' })
      const kept = await outbox.add('post-finish', { id: 'kept' })
      await outbox.claimDue(10, 30_000)
      await outbox.retry(older.id, 3, Date.now(), 'timeout')
      await outbox.claimDue(10, 30_000)
      // Given up in the opposite order of their creation.
      await outbox.deadLetter(newer.id, 'receiver answered 410')
      await outbox.deadLetter(older.id, 'receiver answered 500 "oops"')

      expect(await outbox.pending()).toBe(1)
      await outbox.retry(kept.id, 1, Date.now(), 'timeout')
      expect((await outbox.claimDue(10, 30_000)).map((e) => e.id)).toEqual([kept.id])
      const dead = await outbox.deadLetters()
      expect(dead).toEqual([
        { ...older, attempts: 3, nextAttemptAt: expect.any(Number), lastError: 'receiver answered 500 "oops"' },
        { ...newer, attempts: 0, nextAttemptAt: expect.any(Number), lastError: 'receiver answered 410' },
      ])
    })

    test('entries, attempts and dead letters survive a restart', async () => {
      const retried = await outbox.add('post-terminate', { id: 'r' })
      const dead = await outbox.add('post-finish', { id: 'd' })
      await outbox.claimDue(10, 30_000)
      const waiting = await outbox.add('post-finish', PAYLOAD)
      await outbox.retry(retried.id, 4, Date.now(), 'connection refused')
      await outbox.deadLetter(dead.id, 'receiver answered 400')
      await outbox.close()

      outbox = await subject.reopen()
      expect(await outbox.pending()).toBe(2)
      const claimed = await outbox.claimDue(10, 30_000)
      expect(claimed.map((e) => ({ id: e.id, attempts: e.attempts, payload: e.payload })).sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(
        [
          { id: waiting.id, attempts: 0, payload: PAYLOAD },
          { id: retried.id, attempts: 4, payload: { id: 'r' } },
        ].sort((a, b) => (a.id < b.id ? -1 : 1)),
      )
      expect((await outbox.deadLetters()).map((e) => [e.id, e.lastError])).toEqual([[dead.id, 'receiver answered 400']])
    })
  })
}
