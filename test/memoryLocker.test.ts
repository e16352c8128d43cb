import { ERRORS } from '@tus/utils'
import { MemoryLocker } from '../stores/lockers/memory.js'

// The in-process locker (LOCKER=memory, the default): exclusion, hand-over order, release requests,
// timeouts and aborts.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const never = () => new AbortController().signal
const noop = () => {}

test('50 contenders: one holder at a time, no lost update, handed over in arrival order', async () => {
  const locker = new MemoryLocker(10_000)
  let holders = 0
  let maxHolders = 0
  let counter = 0
  const order: number[] = []
  await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const lock = locker.newLock('a')
      await lock.lock(never(), noop)
      holders++
      maxHolders = Math.max(maxHolders, holders)
      order.push(i)
      const seen = counter
      await sleep(1)
      counter = seen + 1
      holders--
      await lock.unlock()
    }),
  )
  expect(maxHolders).toBe(1)
  expect(counter).toBe(50)
  expect(order).toEqual(Array.from({ length: 50 }, (_, i) => i))
})

test('a waiter asks the holder to let go, once; the next holder is asked while others still wait', async () => {
  const locker = new MemoryLocker(10_000)
  const asked = { first: 0, second: 0, third: 0 }
  const first = locker.newLock('a')
  await first.lock(never(), () => void asked.first++)
  expect(asked.first).toBe(0)
  const second = locker.newLock('a')
  const secondHeld = second.lock(never(), () => void asked.second++)
  const third = locker.newLock('a')
  const thirdHeld = third.lock(never(), () => void asked.third++)
  await sleep(20)
  expect(asked).toEqual({ first: 2, second: 0, third: 0 })
  await first.unlock()
  await secondHeld
  await sleep(20)
  expect(asked.second).toBe(1)
  await second.unlock()
  await thirdHeld
  expect(asked.third).toBe(0)
  await third.unlock()
  // Free again: taken at once.
  const fourth = locker.newLock('a')
  await fourth.lock(never(), noop)
  await fourth.unlock()
})

test('locks of different ids are independent', async () => {
  const locker = new MemoryLocker(200)
  const a = locker.newLock('a')
  const b = locker.newLock('b')
  await a.lock(never(), noop)
  await b.lock(never(), noop)
  await Promise.all([a.unlock(), b.unlock()])
})

test('ERR_LOCK_TIMEOUT after the timeout when the holder never lets go; the holder keeps the lock', async () => {
  const locker = new MemoryLocker(150)
  const holder = locker.newLock('a')
  await holder.lock(never(), noop)
  const started = Date.now()
  await expect(locker.newLock('a').lock(never(), noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  // The timed-out waiter left the queue: after the holder unlocks, a newcomer gets the lock at once.
  await holder.unlock()
  const next = locker.newLock('a')
  await next.lock(never(), noop)
  await next.unlock()
})

test('an aborted signal stops the wait and leaves no waiter behind; an already aborted one never waits', async () => {
  const locker = new MemoryLocker(10_000)
  const holder = locker.newLock('a')
  await holder.lock(never(), noop)
  const stop = new AbortController()
  const waiting = locker.newLock('a').lock(stop.signal, noop)
  setTimeout(() => stop.abort(), 30)
  await expect(waiting).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  await expect(locker.newLock('a').lock(AbortSignal.abort(), noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  await holder.unlock()
  const next = locker.newLock('a')
  await next.lock(stop.signal, noop) // an aborted signal does not matter for a free lock
  await next.unlock()
})

test('unlocking a lock not held is an error, and does not release the holder', async () => {
  const locker = new MemoryLocker(100)
  const holder = locker.newLock('a')
  await holder.lock(never(), noop)
  await expect(locker.newLock('a').unlock()).rejects.toThrow('unlocked')
  await expect(locker.newLock('a').lock(never(), noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  await holder.unlock()
  await expect(holder.unlock()).rejects.toThrow('unlocked')
})

test('a holder whose release request throws does not fail the waiter', async () => {
  const locker = new MemoryLocker(10_000)
  const holder = locker.newLock('a')
  await holder.lock(never(), () => {
    throw new Error('boom')
  })
  const waiter = locker.newLock('a')
  const held = waiter.lock(never(), noop)
  await sleep(10)
  await holder.unlock()
  await held
  await waiter.unlock()
})
