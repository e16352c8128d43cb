import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type HookReceiver, startHookReceiver } from './helpers/hookReceiver.js'
import { OFFSET_STREAM, pacedPatch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { processPool, type ServerProcess } from './helpers/servers.js'
import { bearer, hsTokens, TEST_SECRET } from './helpers/tokens.js'

// Ways a hostile or unlucky client could hurt other users, each against a real server process.
const pool = processPool('tusgate-hardening-')
afterEach(() => pool.cleanup())

/** A request whose body goes out chunked (no Content-Length), `chunks` one write each. */
function chunked(
  url: string,
  method: string,
  headers: Record<string, string>,
  chunks: Buffer[],
): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })
}

/** Sends raw bytes on a new connection; resolves with the status line's code (0 when the server closed without one). */
function raw(port: number, text: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text))
    let answer = ''
    socket.on('data', (c) => (answer += c))
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)))
    socket.on('error', () => {})
  })
}

describe('a chunked body past Upload-Length', () => {
  let receiver: HookReceiver
  let server: ServerProcess
  beforeEach(async () => {
    receiver = await startHookReceiver()
    server = await pool.launch(pool.newDir(), { HOOKS_URL: receiver.url, HOOKS_ENABLED: 'post-receive,pre-finish,post-finish' })
  })
  afterEach(() => receiver.stop())

  const data = randomData(10, 3)
  const extra = Buffer.from('overflow!')

  /** The upload is complete with the first 10 bytes, post-finish went out once, and no hook saw an offset past the length. */
  async function expectFinishedWithLength(url: string) {
    const id = url.split('/').pop() as string
    expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('10')
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: 10 })
    await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
    expect(receiver.of('pre-finish', id)).toHaveLength(1)
    for (const hook of receiver.of('post-receive', id)) expect(hook.Event.Upload.Offset).toBeLessThanOrEqual(10)
    await sleep(200)
    expect(receiver.of('post-finish', id)).toHaveLength(1)
  }

  test('PATCH: 413, the upload finished with its first bytes and its finish hooks', async () => {
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 10 } })
    const url = new URL(String(created.headers.location), server.url).toString()
    const res = await chunked(url, 'PATCH', { ...OFFSET_STREAM, 'Upload-Offset': '0' }, [data, extra])
    expect(res.status).toBe(413)
    await expectFinishedWithLength(url)
  })

  test('creation-with-upload POST: 413 with the Location, the upload finished', async () => {
    const res = await chunked(`${server.url}/files`, 'POST', { ...OFFSET_STREAM, 'Upload-Length': '10' }, [data, extra])
    expect(res.status).toBe(413)
    await expectFinishedWithLength(new URL(String(res.headers.location), server.url).toString())
  })

  test('IETF append: 413, the upload finished', async () => {
    const created = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?0', 'Upload-Length': 10 },
    })
    const url = new URL(String(created.headers.location), server.url).toString()
    const headers = { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Offset': '0', 'Content-Type': 'application/partial-upload' }
    expect((await chunked(url, 'PATCH', headers, [data, extra])).status).toBe(413)
    await expectFinishedWithLength(url)
  })
})

test("a final upload naming another user's upload neither locks it nor tells it exists", async () => {
  const sign = hsTokens()
  const server = await pool.launch(pool.newDir(), { AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET, LOCK_DRAIN_TIMEOUT: '200ms' })
  const bob = bearer(await sign({ sub: 'bob' }))
  const alice = bearer(await sign({ sub: 'alice' }))
  const body = randomData(64 * 1024, 5)
  const created = await request(`${server.url}/files`, {
    method: 'POST',
    headers: { ...TUS, ...bob, 'Upload-Length': body.length, 'Upload-Concat': 'partial' },
  })
  const url = new URL(String(created.headers.location), server.url).toString()
  // Bob's PATCH streams for about 1.6 s; a lock taken meanwhile would cut it after LOCK_DRAIN_TIMEOUT.
  const patching = pacedPatch(url, 0, body, { piece: 4096, delayMs: 100, holdMs: 0, headers: bob })
  await sleep(300)
  const unknown = await request(`${server.url}/files`, {
    method: 'POST',
    headers: { ...TUS, ...alice, 'Upload-Concat': `final;${url.replace(/[0-9a-f]{32}$/, 'f'.repeat(32))}` },
  })
  const foreign = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, ...alice, 'Upload-Concat': `final;${url}` } })
  expect(foreign.status).toBe(unknown.status)
  expect(foreign.body.toString().replace(url, 'U')).toBe(unknown.body.toString().replace(/http\S+/, 'U'))
  const patched = await patching
  expect(patched).toMatchObject({ status: 204, offset: String(body.length) })
  const download = await request(url, { headers: bob })
  expect(download.status).toBe(200)
  expect(sha256(download.body)).toBe(sha256(body))
})

test('an IETF DELETE with a malformed Host answers as a tus DELETE does, never 500', async () => {
  const server = await pool.launch(pool.newDir())
  const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1 } })
  const path = new URL(String(created.headers.location), server.url).pathname
  for (const host of ['[', 'a b', 'x:99999999', '%zz']) {
    const status = await raw(server.port, `DELETE ${path} HTTP/1.1\r\nHost: ${host}\r\nUpload-Draft-Interop-Version: 8\r\nConnection: close\r\n\r\n`)
    expect([204, 400, 404]).toContain(status)
  }
  expect((await request(`${server.url}/healthz`)).status).toBe(200)
})

test('a hook-chosen id that is taken is refused, and the upload that has it keeps its bytes and owner', async () => {
  const receiver = await startHookReceiver()
  try {
    const server = await pool.launch(pool.newDir(), { HOOKS_URL: receiver.url, HOOKS_ENABLED: 'pre-create' })
    const ID = 'chosen-by-the-hook-0001'
    receiver.answer((hook) => (hook.Type === 'pre-create' ? { ChangeFileInfo: { ID } } : {}))
    const first = randomData(1000, 7)
    const winner = await request(`${server.url}/files`, { method: 'POST', headers: { ...OFFSET_STREAM, 'Upload-Length': 1000 }, body: first })
    expect(winner.status).toBe(201)
    const loser = await request(`${server.url}/files`, { method: 'POST', headers: { ...OFFSET_STREAM, 'Upload-Length': 1000 }, body: randomData(1000, 8) })
    expect(loser.status).toBe(409)
    expect(loser.headers.location).toBeUndefined()
    expect(await sha256OfDownload(`${server.url}/files/${ID}`)).toEqual({ status: 200, sha: sha256(first), bytes: 1000 })
  } finally {
    await receiver.stop()
  }
})

test('final uploads assemble in slots of their own: a held one never holds up a plain creation', async () => {
  const receiver = await startHookReceiver()
  try {
    const server = await pool.launch(pool.newDir(), { HOOKS_URL: receiver.url, HOOKS_ENABLED: 'pre-create', CREATE_SLOTS: '1', CONCAT_SLOTS: '1' })
    const partial = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { ...OFFSET_STREAM, 'Upload-Length': 2, 'Upload-Concat': 'partial' },
      body: 'ab',
    })
    let release: () => void = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    let held = false
    // The final's pre-create waits until the plain creation has its answer (or 10 s, which fails the test).
    receiver.answer(async (hook) => {
      if (!hook.Event.Upload.IsFinal) return {}
      held = true
      await Promise.race([released, sleep(10_000)])
      held = false
      return {}
    })
    const final = request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${partial.headers.location}` } })
    await receiver.waitFor(() => held, 5_000, 'the final upload held in pre-create')
    const plain = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1 } })
    expect(plain.status).toBe(201)
    expect(held).toBe(true)
    release()
    expect((await final).status).toBe(201)
  } finally {
    await receiver.stop()
  }
})
