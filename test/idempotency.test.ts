// Idempotent creation (Idempotency-Key): a repeat answers the first creation's 201 and Location and
// creates nothing; another request under the key 422; a repeat while the first runs 409. In the process,
// and in Redis across two server processes.
import { createHash } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createUpload, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { processPool, startServer, useServer } from './helpers/servers.js'
import { bearer, hsTokens, TEST_SECRET } from './helpers/tokens.js'

const b64 = (text: string) => Buffer.from(text).toString('base64')
const IETF = { 'Upload-Draft-Interop-Version': '8' }

/** The uploads stored in a file store's folder. */
const uploadsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith('.json')).length : 0)

/** An absolute Location's path: the same upload on any instance. */
const pathOf = (location: string | undefined) => new URL(location as string).pathname

/** Resolves once `check` holds, polling every 20 ms; rejects after 5 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 5_000; !check(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
  }
}

const post = (base: string, headers: Record<string, string | number>, body?: Buffer | string) =>
  request(`${base}/files`, { method: 'POST', headers: { ...TUS, ...headers }, body })

describe('in the process', () => {
  const server = useServer({ MAX_SIZE: '1MB' })

  test('a repeated tus creation answers the same 201 and Location and creates nothing', async () => {
    const headers = { 'Upload-Length': 10, 'Upload-Metadata': `filename ${b64('a.txt')}`, 'Idempotency-Key': '"k-1"' }
    const first = await post(server.url, headers)
    expect(first.status).toBe(201)
    const before = uploadsIn(server.dir)
    const again = await post(server.url, headers)
    expect([again.status, again.headers.location]).toEqual([201, first.headers.location])
    expect(uploadsIn(server.dir)).toBe(before)
    // The repeat's Location is the upload, which goes on as usual.
    expect((await patch(new URL(first.headers.location as string, server.url).toString(), 0, '0123456789')).status).toBe(204)
    const third = await post(server.url, headers)
    expect(third.headers.location).toBe(first.headers.location)
    // A bare token is taken as the same key.
    expect((await post(server.url, { ...headers, 'Idempotency-Key': 'k-1' })).headers.location).toBe(first.headers.location)
  })

  test('the same key with another length, metadata or kind answers 422; another key creates anew', async () => {
    const headers = { 'Upload-Length': 10, 'Upload-Metadata': `filename ${b64('a.txt')}`, 'Idempotency-Key': '"k-2"' }
    const first = await post(server.url, headers)
    expect(first.status).toBe(201)
    const before = uploadsIn(server.dir)
    for (const changed of [{ 'Upload-Length': 11 }, { 'Upload-Metadata': `filename ${b64('b.txt')}` }, { 'Upload-Concat': 'partial' }] as Record<
      string,
      string | number
    >[]) {
      const refused = await post(server.url, { ...headers, ...changed })
      expect([refused.status, refused.body.toString()]).toEqual([422, 'This Idempotency-Key was used for a different request\n'])
    }
    expect(uploadsIn(server.dir)).toBe(before)
    const other = await post(server.url, { ...headers, 'Idempotency-Key': '"k-2b"' })
    expect(other.status).toBe(201)
    expect(other.headers.location).not.toBe(first.headers.location)
  })

  test('a key whose first request still runs answers 409; once it is done, its upload', async () => {
    const data = randomData(2_000, 7)
    const headers = { 'Upload-Length': String(data.length), 'Idempotency-Key': '"k-3"' }
    const before = uploadsIn(server.dir)
    const first = pacedPatch(`${server.url}/files`, undefined, data, { method: 'POST', piece: 200, delayMs: 100, holdMs: 0, headers })
    await until(() => uploadsIn(server.dir) > before, 'the first creation to store its upload')
    const during = await post(server.url, headers)
    expect([during.status, during.headers['retry-after']]).toEqual([409, '1'])
    const created = await first
    expect([created.status, created.offset]).toEqual([201, String(data.length)])
    const after = await post(server.url, { ...headers, 'Content-Type': 'application/offset+octet-stream' }, data)
    expect([after.status, after.headers.location, after.headers['upload-offset']]).toEqual([201, created.headers?.location, String(data.length)])
    expect((await sha256OfDownload(new URL(created.headers?.location as string, server.url).toString())).sha).toBe(sha256(data))
  })

  test('a first request that fails leaves the key free: the retry creates the upload', async () => {
    const headers = { 'Upload-Length': 3, 'Content-Type': 'application/offset+octet-stream', 'Idempotency-Key': '"k-4"' }
    const wrong = `sha1 ${createHash('sha1').update('xyz').digest('base64')}`
    expect((await post(server.url, { ...headers, 'Upload-Checksum': wrong }, 'abc')).status).toBe(460)
    const before = uploadsIn(server.dir)
    const retry = await post(server.url, headers, 'abc')
    expect([retry.status, retry.headers['upload-offset']]).toEqual([201, '3'])
    expect(uploadsIn(server.dir)).toBe(before + 1)
    expect((await post(server.url, headers, 'abc')).headers.location).toBe(retry.headers.location)
  })

  test('a repeated final concatenation answers the same final upload; another list of partials 422', async () => {
    const partials: string[] = []
    for (const part of ['ab', 'cd']) {
      const location = await createUpload(server.url, { 'Upload-Length': 2, 'Upload-Concat': 'partial' })
      expect((await patch(location, 0, part)).status).toBe(204)
      partials.push(new URL(location).pathname)
    }
    const final = { 'Upload-Concat': `final;${partials.join(' ')}`, 'Idempotency-Key': '"k-5"' }
    const first = await post(server.url, final)
    expect(first.status).toBe(201)
    const before = uploadsIn(server.dir)
    const again = await post(server.url, final)
    expect([again.status, again.headers.location, again.headers['upload-concat']]).toEqual([201, first.headers.location, final['Upload-Concat']])
    expect(uploadsIn(server.dir)).toBe(before)
    const reordered = await post(server.url, { ...final, 'Upload-Concat': `final;${[...partials].reverse().join(' ')}` })
    expect(reordered.status).toBe(422)
  })

  test('a repeated IETF creation answers the same 201 and Location; its content is stored once', async () => {
    const body = randomData(5_000, 8)
    const headers = { ...IETF, 'Upload-Complete': '?1', 'Content-Type': 'image/png', 'Idempotency-Key': '"k-6"' }
    const first = await request(`${server.url}/files`, { method: 'POST', headers, body })
    expect(first.status).toBe(201)
    const before = uploadsIn(server.dir)
    const again = await request(`${server.url}/files`, { method: 'POST', headers, body })
    expect([again.status, again.headers.location, again.headers['upload-complete'], again.headers['upload-offset']]).toEqual([
      201,
      first.headers.location,
      '?1',
      String(body.length),
    ])
    expect(again.informational).toEqual([])
    expect(uploadsIn(server.dir)).toBe(before)
    const other = await request(`${server.url}/files`, { method: 'POST', headers: { ...headers, 'Content-Type': 'image/gif' }, body })
    expect(other.status).toBe(422)
    expect((await sha256OfDownload(new URL(first.headers.location as string, server.url).toString())).sha).toBe(sha256(body))
  })

  test('a malformed key answers 400 and creates nothing', async () => {
    const before = uploadsIn(server.dir)
    for (const key of ['"unterminated', '"a" "b"', '""', `"${'x'.repeat(256)}"`]) {
      const refused = await post(server.url, { 'Upload-Length': 3, 'Idempotency-Key': key })
      expect([key, refused.status]).toEqual([key, 400])
    }
    expect(uploadsIn(server.dir)).toBe(before)
  })

  test('a browser may send the key (CORS preflight)', async () => {
    const preflight = await request(`${server.url}/files`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'idempotency-key' },
    })
    expect(String(preflight.headers['access-control-allow-headers']).split(', ')).toContain('Idempotency-Key')
  })
})

test('keys are per principal under AUTH_MODE=jwt', async () => {
  const server = await startServer({ AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET })
  try {
    const mint = hsTokens()
    const headers = { 'Upload-Length': 3, 'Idempotency-Key': '"shared"' }
    const alice = await post(server.url, { ...headers, ...bearer(await mint({ sub: 'alice' })) })
    const bob = await post(server.url, { ...headers, ...bearer(await mint({ sub: 'bob' })) })
    expect([alice.status, bob.status]).toEqual([201, 201])
    expect(bob.headers.location).not.toBe(alice.headers.location)
    expect((await post(server.url, { ...headers, ...bearer(await mint({ sub: 'alice' })) })).headers.location).toBe(alice.headers.location)
  } finally {
    await server.stop()
  }
})

test('keys lapse after IDEMPOTENCY_TTL; IDEMPOTENCY_TTL=0 ignores them', async () => {
  for (const [ttl, wait, same] of [
    ['1s', 1_200, false],
    ['1h', 0, true],
    ['0', 0, false],
  ] as const) {
    const server = await startServer({ IDEMPOTENCY_TTL: ttl })
    try {
      const headers = { 'Upload-Length': 3, 'Idempotency-Key': '"k"' }
      const first = await post(server.url, headers)
      await sleep(wait)
      const again = await post(server.url, headers)
      expect([ttl, again.status, again.headers.location === first.headers.location]).toEqual([ttl, 201, same])
    } finally {
      await server.stop()
    }
  }
})

describe('in Redis, across two server processes', () => {
  let redis: RedisServer
  const pool = processPool('tusgate-idempotency-')
  beforeAll(async () => {
    redis = await startRedis()
  }, 30_000)
  afterEach(() => pool.cleanup())
  afterAll(() => redis?.dispose())

  test("a creation repeated on another instance answers the first one's upload; a different one 422, a running one 409", async () => {
    const dir = pool.newDir()
    const env = { REDIS_URL: redis.url, LOCKER: 'redis' }
    const [a, b] = await Promise.all([pool.launch(dir, env), pool.launch(dir, env)])
    const headers = { 'Upload-Length': 10, 'Idempotency-Key': '"across"' }
    const first = await post(a.url, headers)
    expect(first.status).toBe(201)
    const again = await post(b.url, headers)
    expect([again.status, pathOf(again.headers.location)]).toEqual([201, pathOf(first.headers.location)])
    expect(uploadsIn(path.join(dir, 'data'))).toBe(1)
    expect((await post(b.url, { ...headers, 'Upload-Length': 11 })).status).toBe(422)

    const data = randomData(2_000, 9)
    const slow = { 'Upload-Length': String(data.length), 'Idempotency-Key': '"slow"' }
    const running = pacedPatch(`${a.url}/files`, undefined, data, { method: 'POST', piece: 200, delayMs: 100, holdMs: 0, headers: slow })
    await until(() => uploadsIn(path.join(dir, 'data')) === 2, 'the first creation to store its upload')
    expect((await post(b.url, slow)).status).toBe(409)
    const created = await running
    expect(created.status).toBe(201)
    const repeated = await post(b.url, slow)
    expect([repeated.status, pathOf(repeated.headers.location)]).toEqual([201, pathOf(created.headers?.location)])
    expect(uploadsIn(path.join(dir, 'data'))).toBe(2)
  }, 60_000)
})
