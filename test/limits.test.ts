// Upload limits (issue 4, item 4) and CORS and security headers (item 5), over real HTTP against tusgate in
// this process with a real file store: each limit answers a clear 4xx with a short text body and stores
// nothing; what keeps to the limits is stored byte for byte (SHA-256).
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import zlib from 'node:zlib'
import { createUpload, OFFSET_STREAM, patch, type RawResponse, randomData, request, sha256, TUS } from './helpers/http.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { type InProcessServer, startServer, tempDir, useServer } from './helpers/servers.js'
import { bearer, hsTokens, TEST_SECRET } from './helpers/tokens.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const metadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([key, value]) => `${key} ${b64(value)}`)
    .join(',')
const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string
/** Every file in FILE_DIR (bytes `<id>` and info `<id>.json`); none when it does not exist yet. */
const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : [])
const token = hsTokens()
const JWT = { AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET }

/** A valid 1x1 PNG, padded with an ancillary chunk to `size` bytes (more than one sniffing window when large). */
function png(size = 200): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(zlib.crc32(body))
    return Buffer.concat([length, body, crc])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(1, 0)
  header.writeUInt32BE(1, 4)
  header[8] = 8
  const start = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', header)])
  const end = Buffer.concat([chunk('IDAT', zlib.deflateSync(Buffer.from([0, 0]))), chunk('IEND', Buffer.alloc(0))])
  const padding = Math.max(0, size - start.length - end.length - 12)
  return Buffer.concat([start, chunk('tEXt', randomData(padding)), end])
}

/** A Windows executable's first bytes (MZ header pointing at a PE signature). */
function exe(size = 5000): Buffer {
  const bytes = randomData(size, 7)
  bytes.write('MZ', 0, 'latin1')
  bytes.writeUInt32LE(128, 60)
  bytes.write('PE\0\0', 128, 'latin1')
  return bytes
}

const zip = () => Buffer.concat([Buffer.from('504b0304', 'hex'), randomData(3000, 3)])

function expectRefusal(res: RawResponse, status: number, body: RegExp) {
  expect({ status: res.status, body: res.body.toString() }).toEqual({ status, body: expect.stringMatching(body) })
  expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
  expect(res.body.toString()).toMatch(/\n$/)
  expect(res.body.length).toBeLessThan(200)
}

function post(base: string, headers: Record<string, string | number>, body?: Buffer) {
  return request(`${base}/files`, { method: 'POST', headers: { ...(body ? OFFSET_STREAM : TUS), ...headers }, body })
}

/** A PATCH with a chunked body (no Content-Length), sent in `pieces`. */
function chunkedPatch(url: string, offset: number, pieces: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'PATCH', agent: false, headers: { ...OFFSET_STREAM, 'Upload-Offset': offset } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    for (const piece of pieces) req.write(piece)
    req.end()
  })
}

describe('Upload-Metadata limits', () => {
  const server = useServer({ MAX_METADATA_KEYS: '3', MAX_METADATA_KEY_LENGTH: '10', MAX_METADATA_VALUE_SIZE: '16' })

  test.each([
    ['more keys than MAX_METADATA_KEYS', 'a,b,c,d', /^Upload-Metadata has more than 3 keys\n$/],
    ['a key longer than MAX_METADATA_KEY_LENGTH', `abcdefghijk ${b64('x')}`, /^Upload-Metadata key longer than 10 characters\n$/],
    ['a value larger than MAX_METADATA_VALUE_SIZE once decoded', `name ${b64('x'.repeat(17))}`, /^Upload-Metadata value of name is larger than 16 bytes\n$/],
    ['a key that is not ASCII', `n\u00e9 ${b64('x')}`, /^Upload-Metadata keys must be ASCII without spaces or commas/],
    ['a value that is not Base64', 'name abc$', /^Upload-Metadata value of name is not Base64\n$/],
  ])('%s: 400, nothing stored', async (_name, header, body) => {
    const res = await post(server.url, { 'Upload-Length': 5, 'Upload-Metadata': header })
    expectRefusal(res, 400, body)
    expect(res.headers['tus-resumable']).toBe('1.0.0')
    expect(filesIn(server.dir)).toEqual([])
  })

  test('at the limits an upload is created and keeps its metadata', async () => {
    const header = `abcdefghij ${b64('x'.repeat(16))},b,c`
    const url = await createUpload(server.url, { 'Upload-Length': 5, 'Upload-Metadata': header })
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-metadata']).toBe(header)
  })
})

describe('ALLOWED_TYPES and MAGIC_BYTES_CHECK', () => {
  const server = useServer({ ALLOWED_TYPES: 'image/*,application/pdf,text/plain', MAGIC_BYTES_CHECK: 'true' })

  test.each([
    ['no filetype', metadata({ filename: 'a.png' })],
    ['a filetype not allowed', metadata({ filename: 'a.html', filetype: 'text/html' })],
    ['no metadata at all', undefined],
  ])('%s: 415 at creation, nothing stored', async (_name, header) => {
    const before = filesIn(server.dir)
    const res = await post(server.url, { 'Upload-Length': 5, ...(header ? { 'Upload-Metadata': header } : {}) })
    expectRefusal(res, 415, /^Only uploads whose filetype metadata is image\/\*, application\/pdf, text\/plain are accepted\n$/)
    expect(filesIn(server.dir)).toEqual(before)
  })

  test('a real PNG declared image/png is stored byte for byte, in one POST and across PATCHes', async () => {
    const image = png(20_000)
    const res = await post(server.url, { 'Upload-Length': image.length, 'Upload-Metadata': metadata({ filetype: 'image/png' }) }, image)
    expect(res.status).toBe(201)
    const url = new URL(res.headers.location as string, server.url).toString()
    expect(sha256(readFileSync(path.join(server.dir, idOf(url))))).toBe(sha256(image))

    // The first PATCH is sniffed (in pieces, without Content-Length), the later ones are not.
    const other = await createUpload(server.url, { 'Upload-Length': image.length, 'Upload-Metadata': metadata({ filetype: 'image/png; charset=x' }) })
    expect(await chunkedPatch(other, 0, [image.subarray(0, 10), image.subarray(10, 5000)])).toBe(204)
    expect((await patch(other, 5000, image.subarray(5000))).status).toBe(204)
    expect((await request(other)).body.equals(image)).toBe(true)
  })

  test.each([
    ['an executable declared image/png', 'image/png', exe(), /^The content is application\/x-msdownload, which is not allowed here\n$/],
    ['a zip declared image/png', 'image/png', zip(), /^The content is application\/zip, which is not allowed here\n$/],
    ['plain text declared image/png', 'image/png', Buffer.from('just some text'), /^The content is not image\/png\n$/],
    ['a PNG declared text/plain', 'text/plain', png(), /^The content is image\/png, not text\/plain\n$/],
    ['a PNG declared application/pdf', 'application/pdf', png(), /^The content is image\/png, not application\/pdf\n$/],
  ])('%s: 415 at creation-with-upload, nothing stored', async (_name, filetype, body, message) => {
    const before = filesIn(server.dir)
    const res = await post(server.url, { 'Upload-Length': body.length, 'Upload-Metadata': metadata({ filetype }) }, body)
    expectRefusal(res, 415, message)
    expect(res.headers.connection).toBe('close')
    expect(filesIn(server.dir)).toEqual(before)
  })

  test('a renamed executable in the first PATCH: 415, offset 0 and no byte on disk; the real file then goes in', async () => {
    const image = png(9000)
    const url = await createUpload(server.url, { 'Upload-Length': image.length, 'Upload-Metadata': metadata({ filetype: 'image/png' }) })
    expectRefusal(await patch(url, 0, exe(image.length)), 415, /^The content is application\/x-msdownload/)
    expectRefusal(await patch(url, 0, zip()), 415, /^The content is application\/zip/)
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-offset']).toBe('0')
    expect(readFileSync(path.join(server.dir, idOf(url))).length).toBe(0)
    expect((await patch(url, 0, image)).status).toBe(204)
    expect(sha256(readFileSync(path.join(server.dir, idOf(url))))).toBe(sha256(image))
  })

  test('text, which file-type cannot recognize, passes as text/plain', async () => {
    const text = Buffer.from('name,size\nreport.txt,42\n'.repeat(400))
    const res = await post(server.url, { 'Upload-Length': text.length, 'Upload-Metadata': metadata({ filetype: 'text/plain' }) }, text)
    expect(res.status).toBe(201)
    expect(sha256(readFileSync(path.join(server.dir, idOf(new URL(res.headers.location as string, server.url).toString()))))).toBe(sha256(text))
  })
})

describe('creation rate limits', () => {
  const server = useServer({ ...JWT, CREATE_RATE_LIMIT_IP: '4/1m', CREATE_RATE_LIMIT_PRINCIPAL: '2/1m', TRUST_PROXY: '1' })

  test('per principal and per client address: 429 with Retry-After, nothing stored', async () => {
    const [alice, bob] = await Promise.all([token({ sub: 'alice' }), token({ sub: 'bob' })])
    const from = (address: string, who: string) => ({ ...bearer(who), 'X-Forwarded-For': address, 'Upload-Length': 3 })
    for (let i = 0; i < 2; i++) expect((await post(server.url, from('10.0.0.1', alice))).status).toBe(201)
    const before = filesIn(server.dir)
    const limited = await post(server.url, from('10.0.0.2', alice))
    expectRefusal(limited, 429, /^Too many uploads created by this user; retry in \d+ s\n$/)
    const wait = Number(limited.headers['retry-after'])
    expect(wait).toBeGreaterThanOrEqual(1)
    expect(wait).toBeLessThanOrEqual(60)
    expect(limited.body.toString()).toContain(`retry in ${wait} s`)
    expect(filesIn(server.dir)).toEqual(before)

    // Bob has his own budget; 10.0.0.1 has made 2 of its 4 creations.
    expect((await post(server.url, from('10.0.0.1', bob))).status).toBe(201)
    expect((await post(server.url, from('10.0.0.1', bob))).status).toBe(201)
    const byAddress = await post(server.url, from('10.0.0.1', await token({ sub: 'carol' })))
    expectRefusal(byAddress, 429, /^Too many uploads created from this address; retry in \d+ s\n$/)
    expect(Number(byAddress.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    // Other methods are not counted.
    const url = await createUpload(server.url, from('10.0.0.3', await token({ sub: 'dave' })))
    for (let i = 0; i < 5; i++)
      expect((await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(await token({ sub: 'dave' })), 'X-Forwarded-For': '10.0.0.3' } })).status).toBe(
        200,
      )
  })
})

describe('unfinished uploads per principal', () => {
  const server = useServer({ ...JWT, MAX_UNFINISHED_PER_PRINCIPAL: '2' })

  test('at most 2 at a time: 403, nothing stored; finishing or terminating one frees its slot', async () => {
    const [alice, bob] = await Promise.all([token({ sub: 'alice' }), token({ sub: 'bob' })])
    const first = await createUpload(server.url, { ...bearer(alice), 'Upload-Length': 3 })
    const second = await createUpload(server.url, { ...bearer(alice), 'Upload-Length': 3 })
    const before = filesIn(server.dir)
    const refused = await post(server.url, { ...bearer(alice), 'Upload-Length': 3 })
    expectRefusal(refused, 403, /^At most 2 unfinished uploads at a time: finish or terminate one first\n$/)
    // A creation with a body is refused before its body is read.
    expectRefusal(await post(server.url, { ...bearer(alice), 'Upload-Length': 3 }, Buffer.from('abc')), 403, /^At most 2/)
    expect(filesIn(server.dir)).toEqual(before)
    expect((await post(server.url, { ...bearer(bob), 'Upload-Length': 3 })).status).toBe(201)

    expect((await patch(first, 0, 'abc', bearer(alice))).status).toBe(204)
    const third = await createUpload(server.url, { ...bearer(alice), 'Upload-Length': 3 })
    expect((await post(server.url, { ...bearer(alice), 'Upload-Length': 3 })).status).toBe(403)
    expect((await request(second, { method: 'DELETE', headers: { ...TUS, ...bearer(alice) } })).status).toBe(204)
    const fourth = await createUpload(server.url, { ...bearer(alice), 'Upload-Length': 3 })
    expect((await post(server.url, { ...bearer(alice), 'Upload-Length': 3 })).status).toBe(403)
    expect([third, fourth].every((url) => existsSync(path.join(server.dir, idOf(url))))).toBe(true)
  })

  test('creations racing for the last slot: never more than the limit', async () => {
    const carol = await token({ sub: 'carol' })
    const results = await Promise.all(Array.from({ length: 6 }, () => post(server.url, { ...bearer(carol), 'Upload-Length': 3 })))
    const created = results.filter((res) => res.status === 201).length
    expect(created).toBeGreaterThanOrEqual(1)
    expect(created).toBeLessThanOrEqual(2)
    expect(results.every((res) => res.status === 201 || res.status === 403)).toBe(true)
  })
})

describe('limits shared through Redis by two instances', () => {
  let redis: RedisServer
  let a: InProcessServer
  let b: InProcessServer
  const shared = tempDir('tusgate-limits-')
  beforeAll(async () => {
    redis = await startRedis()
    const env = { ...JWT, REDIS_URL: redis.url, CREATE_RATE_LIMIT_IP: '3/1m', MAX_UNFINISHED_PER_PRINCIPAL: '2', FILE_DIR: shared.dir }
    ;[a, b] = await Promise.all([startServer(env), startServer(env)])
  })
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()])
    await redis?.dispose()
    shared.remove()
  })

  test('the creation rate and the unfinished uploads count across instances', async () => {
    const [alice, bob] = await Promise.all([token({ sub: 'alice' }), token({ sub: 'bob' })])
    expect((await post(a.url, { ...bearer(alice), 'Upload-Length': 3 })).status).toBe(201)
    expect((await post(b.url, { ...bearer(alice), 'Upload-Length': 3 })).status).toBe(201)
    // Alice's third unfinished upload: instance a counts the one b made.
    expectRefusal(await post(a.url, { ...bearer(alice), 'Upload-Length': 3 }), 403, /^At most 2 unfinished uploads/)
    // The address has made 3 creations (one refused): the fourth is over the rate on either instance.
    expectRefusal(await post(b.url, { ...bearer(bob), 'Upload-Length': 3 }), 429, /^Too many uploads created from this address/)
    expect(filesIn(shared.dir).filter((name) => name.endsWith('.json'))).toHaveLength(2)
  })

  test('with Redis down, creations go on unlimited and the skipped checks are logged', async () => {
    await redis.stop()
    const res = await post(a.url, { ...bearer(await token({ sub: 'alice' })), 'Upload-Length': 3 })
    expect(res.status).toBe(201)
    const warnings = a.logs.filter((line) => line.level === 'warn').map((line) => line.message)
    expect(warnings).toEqual(expect.arrayContaining(['creation rate not checked', 'unfinished uploads not checked']))
  })
})

describe('CORS with credentials', () => {
  const ORIGIN = 'https://app.example.com'
  const server = useServer({ ...JWT, CORS_ORIGINS: ORIGIN, CORS_CREDENTIALS: 'true', MAX_UNFINISHED_PER_PRINCIPAL: '1' })

  test('a preflight from a listed origin allows credentials and the Authorization header; another origin gets nothing', async () => {
    const preflight = (origin: string) =>
      request(`${server.url}/files`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,upload-length,tus-resumable' },
      })
    const ok = await preflight(ORIGIN)
    expect(ok.status).toBe(200)
    expect(ok.headers).toMatchObject({ 'access-control-allow-origin': ORIGIN, 'access-control-allow-credentials': 'true', vary: 'Origin' })
    expect(String(ok.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization')
    const other = await preflight('https://evil.example')
    // @tus/server alone would name the first listed origin here.
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  })

  test("tus answers and tusgate's own refusals carry the same CORS headers, the tus headers exposed", async () => {
    const alice = await token({ sub: 'alice' })
    const created = await post(server.url, { Origin: ORIGIN, ...bearer(alice), 'Upload-Length': 3 })
    const refused = await post(server.url, { Origin: ORIGIN, ...bearer(alice), 'Upload-Length': 3 })
    expect([created.status, refused.status]).toEqual([201, 403])
    for (const res of [created, refused]) {
      expect(res.headers).toMatchObject({ 'access-control-allow-origin': ORIGIN, 'access-control-allow-credentials': 'true', vary: 'Origin' })
      const exposed = String(res.headers['access-control-expose-headers']).toLowerCase().split(/,\s*/)
      expect(exposed).toEqual(expect.arrayContaining(['location', 'upload-offset', 'upload-length', 'tus-resumable', 'upload-expires', 'x-request-id']))
    }
  })
})

describe('security headers', () => {
  const server = useServer({ WEB_UI: 'false' })

  test('on health, metrics, downloads and unknown paths; not on tus answers', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 3 })
    expect((await patch(url, 0, 'abc')).status).toBe(204)
    for (const route of ['/healthz', '/readyz', '/metrics', new URL(url).pathname, '/nowhere']) {
      const res = await request(`${server.url}${route}`)
      expect({ route, headers: res.headers }).toMatchObject({
        route,
        headers: {
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'referrer-policy': 'no-referrer',
          'content-security-policy': expect.stringContaining("default-src 'none'"),
        },
      })
      // Express's own 404 replaces the policy with its `default-src 'none'`; X-Frame-Options still forbids framing.
      if (route !== '/nowhere') expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    }
    expect((await request(url)).body.toString()).toBe('abc')
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.headers['content-security-policy']).toBeUndefined()
    const options = await request(`${server.url}/files`, { method: 'OPTIONS' })
    expect(options.headers['x-frame-options']).toBeUndefined()
  })
})
