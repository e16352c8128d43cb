// CREATE_SLOTS: at most that many creations in progress at once, the others wait their turn.
import { setTimeout as sleep } from 'node:timers/promises'
import { CreationSlots } from '../server/tus/creationSlots.js'
import { startHookReceiver } from './helpers/hookReceiver.js'
import { request, TUS } from './helpers/http.js'
import { startServer } from './helpers/servers.js'

test('CreationSlots runs at most its slots at once, in arrival order, and 0 means no limit', async () => {
  for (const [slots, expected] of [
    [3, 3],
    [0, 10],
  ] as const) {
    const creations = new CreationSlots(slots)
    let active = 0
    let most = 0
    const started: number[] = []
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        creations.run(async () => {
          started.push(i)
          most = Math.max(most, ++active)
          await sleep(20)
          active--
        }),
      ),
    )
    expect(most).toBe(expected)
    expect(started).toEqual(Array.from({ length: 10 }, (_, i) => i))
    expect(creations.queued).toBe(0)
  }
  // A slot is handed to the oldest waiter: a newcomer arriving as it frees neither overtakes nor joins it.
  const handover = new CreationSlots(1)
  let inside = 0
  let crowded = 0
  const order: string[] = []
  const creation = (name: string) => async () => {
    crowded = Math.max(crowded, ++inside)
    order.push(name)
    await sleep(10)
    inside--
  }
  const first = handover.run(creation('a'))
  const waiter = handover.run(creation('b'))
  await first
  const newcomer = handover.run(creation('c'))
  await Promise.all([waiter, newcomer])
  expect(crowded).toBe(1)
  expect(order).toEqual(['a', 'b', 'c'])
  // A failed creation gives its slot back.
  const creations = new CreationSlots(1)
  await expect(creations.run(async () => Promise.reject(new Error('no')))).rejects.toThrow('no')
  await expect(creations.run(async () => 'yes')).resolves.toBe('yes')
})

test('with CREATE_SLOTS=2, six creations at once reach a slow pre-create hook two at a time, and all succeed', async () => {
  const receiver = await startHookReceiver()
  let active = 0
  let most = 0
  receiver.answer(async (hook) => {
    if (hook.Type !== 'pre-create') return {}
    most = Math.max(most, ++active)
    await sleep(150)
    active--
    return {}
  })
  const server = await startServer({ HOOKS_URL: receiver.url, HOOKS_ENABLED: 'pre-create', CREATE_SLOTS: '2' })
  try {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3 } })),
    )
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(201))
    expect(new Set(answers.map((a) => a.headers.location)).size).toBe(6)
    expect(receiver.of('pre-create')).toHaveLength(6)
    expect(most).toBe(2)
    // The waiting was visible to operators.
    const metrics = (await request(`${server.url}/metrics`)).body.toString()
    expect(metrics).toMatch(/^tusgate_creations_waiting 0$/m)
  } finally {
    await server.stop()
    await receiver.stop()
  }
})
