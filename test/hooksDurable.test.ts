// post-finish and post-terminate survive a receiver outage and a restart of tusgate; given up only into the dead letters.
import { randomUUID } from 'node:crypto'
import { readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileOutbox } from '../server/hooks/outbox/file.js'
import { type HookReceiver, startHookReceiver } from './helpers/hookReceiver.js'
import { createUpload, patch, request, TUS } from './helpers/http.js'
import { outboxContract } from './helpers/outboxContract.js'
import { freePort, startRedis } from './helpers/redis.js'
import { type InProcessServer, processPool, startServer, tempDir } from './helpers/servers.js'

const pool = processPool('tusgate-hooks-')
const receivers: HookReceiver[] = []
let server: InProcessServer | undefined
const temps: Array<{ remove(): void }> = []

afterEach(async () => {
  await server?.stop()
  server = undefined
  await pool.cleanup()
  await Promise.all(receivers.splice(0).map((r) => r.stop()))
  for (const temp of temps.splice(0)) temp.remove()
})

const receiverOn = async (port = 0) => {
  const receiver = await startHookReceiver(port)
  receivers.push(receiver)
  return receiver
}

const idOf = (url: string) => url.split('/').pop() as string
const RETRY_FAST = { HOOKS_BACKOFF: '200ms', HOOKS_BACKOFF_MAX: '1s' }

/** Creates and finishes a 3-byte upload; returns its id. */
async function finishUpload(base: string): Promise<string> {
  const location = await createUpload(base, { 'Upload-Length': 3 })
  expect((await patch(location, 0, 'abc')).status).toBe(204)
  return idOf(location)
}

const metric = async (name: string) => (await server?.app.metrics.registry.getSingleMetricAsString(name)) ?? ''

test('post-finish reaches a receiver that was down for 10 s', async () => {
  const port = await freePort()
  server = await startServer({ HOOKS_URL: `http://127.0.0.1:${port}/hooks`, HOOKS_ENABLED: 'post-finish', ...RETRY_FAST })
  const id = await finishUpload(server.url)
  expect(await metric('tusgate_hook_outbox_pending')).toContain('tusgate_hook_outbox_pending 1')
  await sleep(10_000)
  const failures = server.logs.filter((l) => l.message === 'hook delivery failed' && l.uploadId === id)
  expect(failures.length).toBeGreaterThan(3)

  const receiver = await receiverOn(port)
  await receiver.waitFor(() => receiver.of('post-finish', id).length > 0, 5_000, 'post-finish after the outage')
  expect(receiver.of('post-finish', id)[0].Event.Upload).toMatchObject({ ID: id, Size: 3, Offset: 3 })
  expect(server.logs.some((l) => l.message === 'hook dead-lettered')).toBe(false)
  // Completed once the receiver's answer is in.
  const deadline = Date.now() + 2_000
  while (!(await metric('tusgate_hook_outbox_pending')).includes('tusgate_hook_outbox_pending 0')) {
    if (Date.now() > deadline) throw new Error('the outbox did not empty')
    await sleep(50)
  }
})

test('post-finish and post-terminate survive a SIGKILL of tusgate while the receiver is down', async () => {
  const port = await freePort()
  const dir = pool.newDir()
  const env = { HOOKS_URL: `http://127.0.0.1:${port}/hooks`, HOOKS_ENABLED: 'post-finish,post-terminate', ...RETRY_FAST }
  const first = await pool.launch(dir, env)
  const finished = await finishUpload(first.url)
  const doomed = await createUpload(first.url, { 'Upload-Length': 5 })
  expect((await request(doomed, { method: 'DELETE', headers: TUS })).status).toBe(204)
  await pool.stop(first, 'SIGKILL')
  // A retry may be rewriting an entry when the kill lands: its `.tmp` is no entry (the outbox ignores it).
  const pending = readdirSync(path.join(dir, 'data', 'hooks-outbox', 'pending')).filter((name) => name.endsWith('.json'))
  expect(pending).toHaveLength(2)

  // Back up while the receiver is still down, then the receiver comes back.
  const second = await pool.launch(dir, env)
  await sleep(1_000)
  const receiver = await receiverOn(port)
  await receiver.waitFor(
    () => receiver.of('post-finish', finished).length > 0 && receiver.of('post-terminate', idOf(doomed)).length > 0,
    8_000,
    'both hooks after the restart',
  )
  expect(receiver.of('post-finish', finished)[0].Event.HTTPRequest).toMatchObject({ Method: 'PATCH', URI: `/files/${finished}` })
  expect(receiver.of('post-terminate', idOf(doomed))[0].Event.Upload).toMatchObject({ ID: idOf(doomed), Size: 5, Offset: 0 })
  await receiver.waitFor(() => readdirSync(path.join(dir, 'data', 'hooks-outbox', 'pending')).length === 0, 2_000, 'an empty outbox')
  await pool.stop(second)
})

test('with REDIS_URL the outbox is shared: a post-finish queued by a killed instance is delivered by another', async () => {
  const redis = await startRedis()
  try {
    const port = await freePort()
    const env = { HOOKS_URL: `http://127.0.0.1:${port}/hooks`, HOOKS_ENABLED: 'post-finish', REDIS_URL: redis.url, ...RETRY_FAST }
    const first = await pool.launch(pool.newDir(), env)
    const id = await finishUpload(first.url)
    // Past its first failed attempt (an entry leased by a killed instance waits out the lease, tested in redisOutbox.test.ts).
    await sleep(1_000)
    await pool.stop(first, 'SIGKILL')

    // Another instance, with a disk of its own: what it delivers can only have come through Redis.
    const second = await pool.launch(pool.newDir(), env)
    const receiver = await receiverOn(port)
    await receiver.waitFor(() => receiver.of('post-finish', id).length > 0, 8_000, 'post-finish through the other instance')
    expect(receiver.of('post-finish', id)[0].Event.Upload).toMatchObject({ ID: id, Size: 3, Offset: 3 })
    await pool.stop(second)
  } finally {
    await redis.dispose()
  }
})

test('post-finish delivered by the time SIGTERM returns is not sent again after a restart', async () => {
  const receiver = await receiverOn()
  const dir = pool.newDir()
  const env = { HOOKS_URL: receiver.url, HOOKS_ENABLED: 'post-finish' }
  const first = await pool.launch(dir, env)
  const id = await finishUpload(first.url)
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
  await pool.stop(first)
  const second = await pool.launch(dir, env)
  await sleep(1_000)
  expect(receiver.of('post-finish', id)).toHaveLength(1)
  await pool.stop(second)
})

test('after HOOKS_MAX_ATTEMPTS a post-finish goes to the dead letters with an error line, never silently', async () => {
  const receiver = await receiverOn()
  receiver.answer(() => ({ status: 503, text: 'busy' }))
  const outboxDir = tempDir('tusgate-outbox-')
  temps.push(outboxDir)
  server = await startServer({
    HOOKS_URL: receiver.url,
    HOOKS_ENABLED: 'post-finish',
    HOOKS_MAX_ATTEMPTS: '3',
    HOOKS_BACKOFF: '50ms',
    HOOKS_BACKOFF_MAX: '100ms',
    HOOKS_OUTBOX_DIR: outboxDir.dir,
  })
  const id = await finishUpload(server.url)
  await receiver.waitFor(() => server?.logs.some((l) => l.message === 'hook dead-lettered') === true, 5_000, 'the dead letter')
  expect(server.logs.find((l) => l.message === 'hook dead-lettered')).toMatchObject({
    level: 'error',
    type: 'post-finish',
    uploadId: id,
    attempts: 3,
    error: 'hook receiver answered 503: busy',
  })
  await sleep(500)
  expect(receiver.of('post-finish', id)).toHaveLength(3)
  const dead = await new FileOutbox(outboxDir.dir).deadLetters()
  expect(dead).toHaveLength(1)
  expect(dead[0]).toMatchObject({ type: 'post-finish', lastError: 'hook receiver answered 503: busy' })
  expect((dead[0].payload as { Event: { Upload: { ID: string } } }).Event.Upload.ID).toBe(id)
  expect(await metric('tusgate_hook_dead_letters_total')).toContain('tusgate_hook_dead_letters_total{type="post-finish"} 1')
  expect(await metric('tusgate_hook_outbox_pending')).toContain('tusgate_hook_outbox_pending 0')
})

// The behaviour every outbox owes the dispatcher (the Redis outbox runs the same in redisOutbox.test.ts).
outboxContract('file', async () => {
  const temp = tempDir('tusgate-outbox-')
  const opened = [new FileOutbox(temp.dir)]
  return {
    outbox: opened[0],
    async reopen() {
      opened.push(new FileOutbox(temp.dir))
      return opened[opened.length - 1]
    },
    async cleanup() {
      await Promise.all(opened.map((outbox) => outbox.close()))
      temp.remove()
    },
  }
})

test('a file outbox removes the temporary file of a write a crash cut short, and keeps its entries', async () => {
  const temp = tempDir('tusgate-outbox-tmp-')
  const first = new FileOutbox(temp.dir)
  const kept = await first.add('post-finish', { n: 1 })
  await first.close()
  const pending = path.join(temp.dir, 'pending')
  const stray = `${randomUUID()}.json.tmp`
  writeFileSync(path.join(pending, stray), '{"id":')
  writeFileSync(path.join(pending, `${kept.id}.json.tmp`), '{"id":')
  const second = new FileOutbox(temp.dir)
  await second.add('post-terminate', { n: 2 })
  expect(readdirSync(pending).filter((name) => name.endsWith('.tmp'))).toEqual([])
  expect(readdirSync(pending)).toContain(`${kept.id}.json`)
  await second.close()
  temp.remove()
})
