import { PartSlots } from '../../stores/s3/partSlots.js'

// S3_CONCURRENT_PARTS's slots: at most the limit held, the rest waiting in arrival order, and the counts
// /metrics reads.

test('at most the limit hold a slot; the others wait and get one in arrival order; a permit released twice counts once', async () => {
  const slots = new PartSlots(2)
  const granted: number[] = []
  const requests = Array.from({ length: 5 }, (_, i) =>
    slots.acquire().then((permit) => {
      granted.push(i)
      return permit
    }),
  )
  const [first, second] = await Promise.all(requests.slice(0, 2))
  expect({ inFlight: slots.inFlight, waiting: slots.waiting, granted }).toEqual({ inFlight: 2, waiting: 3, granted: [0, 1] })

  await first.release()
  await first.release()
  const third = await requests[2]
  expect({ inFlight: slots.inFlight, waiting: slots.waiting, granted }).toEqual({ inFlight: 2, waiting: 2, granted: [0, 1, 2] })

  // A newcomer queues behind those already waiting.
  const late = slots.acquire().then((permit) => {
    granted.push(5)
    return permit
  })
  await second.release()
  await third.release()
  const [fourth, fifth] = await Promise.all([requests[3], requests[4]])
  expect({ inFlight: slots.inFlight, waiting: slots.waiting, granted }).toEqual({ inFlight: 2, waiting: 1, granted: [0, 1, 2, 3, 4] })
  await fourth.release()
  await fifth.release()
  await (await late).release()
  expect({ inFlight: slots.inFlight, waiting: slots.waiting, granted }).toEqual({ inFlight: 0, waiting: 0, granted: [0, 1, 2, 3, 4, 5] })
})
