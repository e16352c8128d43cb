// Authentication (AUTH_MODE=jwt) and per-user isolation, over real HTTP against tusgate in this process,
// with raw requests and with the real tus-js-client; a JWKS is served by a small local HTTP server.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from 'jose'
import * as tus from 'tus-js-client'
import { createUpload, OFFSET_STREAM, pacedPatch, patch, type RawResponse, request, sha256, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, tempDir } from './helpers/servers.js'
import { bearer, hsTokens, TEST_SECRET } from './helpers/tokens.js'

const SECRET = TEST_SECRET
const ISSUER = 'https://idp.test'
const AUDIENCE = 'tusgate-test'
const ORIGIN = 'https://app.example.com'
const b64 = (s: string) => Buffer.from(s).toString('base64')
const now = () => Math.floor(Date.now() / 1000)
const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string

/** An HS256 token; `claims` override the defaults (undefined removes one). */
const hsToken = hsTokens({ iss: ISSUER, aud: AUDIENCE })

/** Every file in FILE_DIR (the bytes `<id>` and the info `<id>.json`), sorted; none when it is not there yet. */
const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : [])
const fileSha = (dir: string, id: string) => sha256(readFileSync(path.join(dir, id)))
const storedInfo = (dir: string, id: string) => JSON.parse(readFileSync(path.join(dir, `${id}.json`), 'utf8'))

/** A response as a client could compare two of them: everything but what differs per request. */
function comparable(res: RawResponse) {
  const { date: _date, 'x-request-id': _id, ...headers } = res.headers
  return { status: res.status, headers, body: res.body.toString() }
}

async function create(base: string, token: string, headers: Record<string, string | number> = { 'Upload-Length': 10 }) {
  return createUpload(base, { ...bearer(token), ...headers })
}

describe('AUTH_MODE=jwt with JWT_SECRET (HS256)', () => {
  let server: InProcessServer
  /** The same service without authentication: what an unknown upload really answers. */
  let plain: InProcessServer
  let alice: string
  let bob: string
  beforeAll(async () => {
    plain = await startServer({ CORS_ORIGINS: ORIGIN })
    server = await startServer({
      AUTH_MODE: 'jwt',
      JWT_SECRET: SECRET,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      CORS_ORIGINS: ORIGIN,
      LOCK_DRAIN_TIMEOUT: '200ms',
    })
    alice = await hsToken({ sub: 'alice' })
    bob = await hsToken({ sub: 'bob' })
  })
  afterAll(() => Promise.all([server.stop(), plain.stop()]))

  test('a valid token creates, appends to, reads, downloads and terminates its own upload', async () => {
    const res = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { ...TUS, ...bearer(alice), 'Upload-Length': 5, 'Upload-Metadata': `filename ${b64('a.txt')}` },
    })
    expect(res.status).toBe(201)
    const url = new URL(res.headers.location as string, server.url).toString()
    expect((await patch(url, 0, 'hello', bearer(alice))).status).toBe(204)
    const head = await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } })
    expect(head.status).toBe(200)
    expect(head.headers['upload-offset']).toBe('5')
    expect(head.headers['upload-metadata']).toBe(`filename ${b64('a.txt')}`)
    const get = await request(url, { headers: bearer(alice) })
    expect(get.status).toBe(200)
    expect(get.body.toString()).toBe('hello')
    // The principal, the token's sub, is recorded with the upload.
    expect(storedInfo(server.dir, idOf(url)).metadata).toEqual({ filename: 'a.txt', 'tusgate-owner': 'alice' })
    expect((await request(url, { method: 'DELETE', headers: { ...TUS, ...bearer(alice) } })).status).toBe(204)
    expect(existsSync(path.join(server.dir, idOf(url)))).toBe(false)
  })

  const refused: Array<[string, () => Promise<string>, RegExp]> = [
    ['a token signed with another secret', () => hsToken({}, 'another-secret-that-is-also-long-enough!'), /signature is invalid/],
    [
      'a token whose payload was changed after signing',
      async () => {
        const [header, , signature] = (await hsToken({ sub: 'alice' })).split('.')
        const forged = Buffer.from(JSON.stringify({ sub: 'bob', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 })).toString('base64url')
        return `${header}.${forged}.${signature}`
      },
      /signature is invalid/,
    ],
    ['an expired token', () => hsToken({ exp: now() - 60 }), /has expired/],
    ['a token not valid yet', () => hsToken({ nbf: now() + 3600 }), /not valid yet/],
    ['a token for another audience', () => hsToken({ aud: 'someone-else' }), /wrong audience/],
    ['a token from another issuer', () => hsToken({ iss: 'https://evil.test' }), /wrong issuer/],
    ['a token without exp', () => hsToken({ exp: undefined }), /no exp claim/],
    ['a token without sub', () => hsToken({ sub: undefined }), /no sub claim/],
    ['a token whose sub is not a string', () => hsToken({ sub: 42 as unknown as string }), /sub claim/],
    [
      'an unsigned token (alg none)',
      async () => new UnsecuredJWT({ sub: 'alice', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 }).encode(),
      /algorithm is not accepted|malformed/,
    ],
    ['a token that is not a JWT', async () => 'not.a.jwt', /malformed/],
    ['a malformed max_size claim', () => hsToken({ max_size: '10' }), /max_size/],
    ['a malformed allowed_types claim', () => hsToken({ allowed_types: 'image/png' }), /allowed_types/],
  ]

  test.each(refused)('%s answers 401 invalid_token with CORS and creates nothing', async (_name, token, reason) => {
    const before = filesIn(server.dir)
    const res = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { ...OFFSET_STREAM, ...bearer(await token()), Origin: ORIGIN, 'Upload-Length': 5 },
      body: 'hello',
    })
    expect(res.status).toBe(401)
    const challenge = res.headers['www-authenticate'] as string
    expect(challenge).toMatch(/^Bearer realm="tusgate", error="invalid_token", error_description="[^"]+"$/)
    expect(challenge).toMatch(reason)
    expect(res.body.toString()).toMatch(/^Invalid token: /)
    expect(res.body.toString()).toMatch(reason)
    expect(res.headers['tus-resumable']).toBe('1.0.0')
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect(res.headers['access-control-expose-headers']).toMatch(/WWW-Authenticate/)
    expect(filesIn(server.dir)).toEqual(before)
  })

  test('no token, or another scheme, answers 401 with a bare Bearer challenge on every route', async () => {
    const url = await create(server.url, alice)
    await patch(url, 0, 'abc', bearer(alice))
    const sha = fileSha(server.dir, idOf(url))
    const attempts: Array<[string, string, Record<string, string | number>, string?]> = [
      ['POST', `${server.url}/files`, { ...TUS, 'Upload-Length': 1 }],
      ['HEAD', url, TUS],
      ['PATCH', url, { ...OFFSET_STREAM, 'Upload-Offset': 3 }, 'def'],
      ['DELETE', url, TUS],
      ['GET', url, {}],
    ]
    const without: Record<string, string>[] = [{}, { Authorization: `Basic ${b64('alice:pw')}` }, { Authorization: 'Bearer' }]
    for (const auth of without) {
      for (const [method, target, headers, body] of attempts) {
        const res = await request(target, { method, headers: { ...headers, ...auth, Origin: ORIGIN }, body })
        expect([method, res.status]).toEqual([method, 401])
        expect(res.headers['www-authenticate']).toBe('Bearer realm="tusgate"')
        expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
        if (method !== 'HEAD') expect(res.body.toString()).toBe('Authorization: Bearer <token> required\n')
      }
    }
    // Nothing was written, removed or created.
    expect(fileSha(server.dir, idOf(url))).toBe(sha)
    expect((await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } })).headers['upload-offset']).toBe('3')
  })

  test('a CORS preflight needs no token and allows the Authorization header', async () => {
    const res = await request(`${server.url}/files`, {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, tus-resumable' },
    })
    expect(res.status).toBe(200)
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect((res.headers['access-control-allow-headers'] as string).toLowerCase().split(/,\s*/)).toContain('authorization')
  })

  describe('isolation', () => {
    test("another principal's upload answers HEAD, PATCH, DELETE and GET exactly as an unknown one, and stays intact", async () => {
      const url = await create(server.url, bob, { 'Upload-Length': 10 })
      expect((await patch(url, 0, 'hello', bearer(bob))).status).toBe(204)
      const id = idOf(url)
      const sha = fileSha(server.dir, id)
      const unknown = `${plain.url}/files/${'0'.repeat(32)}`
      const as = (token: string, extra: Record<string, string | number> = {}) => ({ ...TUS, ...bearer(token), Origin: ORIGIN, ...extra })
      const attempts: Array<[string, Record<string, string | number>, string?]> = [
        ['HEAD', as(alice)],
        // Offset 5 and five bytes would succeed if the upload were alice's.
        ['PATCH', as(alice, { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': 5 }), 'world'],
        ['DELETE', as(alice)],
        ['GET', { ...bearer(alice), Origin: ORIGIN }],
        // Method override reaches the same checks.
        ['POST', as(alice, { 'X-HTTP-Method-Override': 'DELETE' })],
        ['POST', as(alice, { 'X-HTTP-Method-Override': 'HEAD' })],
      ]
      for (const [method, headers, body] of attempts) {
        const foreign = await request(url, { method, headers, body })
        const missing = await request(unknown, { method, headers, body })
        expect([method, foreign.status]).toEqual([method, 404])
        expect(comparable(foreign)).toEqual(comparable(missing))
      }
      // Bob's bytes, offset and upload are untouched, and he carries on.
      expect(fileSha(server.dir, id)).toBe(sha)
      expect(readFileSync(path.join(server.dir, id)).toString()).toBe('hello')
      const head = await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(bob) } })
      expect(head.status).toBe(200)
      expect(head.headers['upload-offset']).toBe('5')
      expect((await patch(url, 5, 'there', bearer(bob))).status).toBe(204)
      // Finished, it downloads for bob and is still unknown to alice.
      expect((await request(url, { headers: bearer(bob) })).body.toString()).toBe('hellothere')
      const get = await request(url, { headers: { ...bearer(alice), Origin: ORIGIN } })
      expect(comparable(get)).toEqual(comparable(await request(unknown, { headers: { ...bearer(alice), Origin: ORIGIN } })))
      expect(get.body.toString()).toBe('Upload not found\n')
      expect(server.logs.some((l) => l.message === 'upload of another principal refused' && l.uploadId === id && l.principal === 'alice')).toBe(true)
    })

    test("refusing another principal takes no lock: bob's PATCH in flight is not asked to let go", async () => {
      const data = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz0123')
      const url = await create(server.url, bob, { 'Upload-Length': data.length })
      const headers = bearer(bob)
      // 40 bytes, 4 every 80 ms: bob's PATCH holds the upload's lock for about 800 ms.
      const inFlight = pacedPatch(url, 0, data, { piece: 4, delayMs: 80, holdMs: 0, headers })
      await sleep(150)
      for (const method of ['HEAD', 'DELETE']) {
        expect((await request(url, { method, headers: { ...TUS, ...bearer(alice) } })).status).toBe(404)
      }
      expect((await patch(url, 0, 'x', bearer(alice))).status).toBe(404)
      const result = await inFlight
      // Had any of alice's requests taken the lock, bob's PATCH would have been cut after LOCK_DRAIN_TIMEOUT (200 ms).
      expect(result).toMatchObject({ status: 204, offset: String(data.length) })
      expect(readFileSync(path.join(server.dir, idOf(url)))).toEqual(data)

      // The control: bob's own HEAD does take the lock, and his stale PATCH lets go.
      const second = await create(server.url, bob, { 'Upload-Length': data.length })
      const stale = pacedPatch(second, 0, data, { piece: 4, delayMs: 80, holdMs: 0, headers })
      await sleep(150)
      expect((await request(second, { method: 'HEAD', headers: { ...TUS, ...bearer(bob) } })).status).toBe(200)
      const cut = await stale
      expect(cut.status).toBe(204)
      expect(Number(cut.offset)).toBeLessThan(data.length)
    })

    test('a client-sent tusgate-owner metadata key is dropped, never echoed, and the creator owns the upload', async () => {
      const url = await create(server.url, alice, {
        'Upload-Length': 4,
        'Upload-Metadata': `filename ${b64('x.txt')},tusgate-owner ${b64('bob')},Tusgate-Owner ${b64('bob')},filetype ${b64('text/plain')}`,
      })
      const id = idOf(url)
      expect(storedInfo(server.dir, id).metadata).toEqual({ filename: 'x.txt', filetype: 'text/plain', 'tusgate-owner': 'alice' })
      const head = await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } })
      expect(head.status).toBe(200)
      expect((head.headers['upload-metadata'] as string).split(',').sort()).toEqual([`filename ${b64('x.txt')}`, `filetype ${b64('text/plain')}`])
      // Bob, whom the client named, cannot see it.
      expect((await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(bob) } })).status).toBe(404)
      await patch(url, 0, 'abcd', bearer(alice))
      const get = await request(url, { headers: bearer(alice) })
      expect(get.status).toBe(200)
      const shown = JSON.stringify(get.headers).toLowerCase()
      expect(shown).not.toMatch(/tusgate-owner|alice/)
      expect(shown).not.toContain(b64('alice').toLowerCase())
      // An upload whose only metadata is the owner shows none.
      const bare = await create(server.url, alice, { 'Upload-Length': 1 })
      expect((await request(bare, { method: 'HEAD', headers: { ...TUS, ...bearer(alice) } })).headers['upload-metadata']).toBeUndefined()
    })
  })

  describe('claims narrowing an upload', () => {
    test('max_size: a larger Upload-Length, body or declared length answers 413 and stores nothing', async () => {
      const token = await hsToken({ max_size: 100 })
      const before = filesIn(server.dir)
      const tooLong = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, ...bearer(token), 'Upload-Length': 101 } })
      expect(tooLong.status).toBe(413)
      expect(tooLong.body.toString()).toBe('This token allows uploads of at most 100 bytes\n')
      const withBody = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, ...bearer(token), 'Upload-Defer-Length': 1 },
        body: Buffer.alloc(101, 1),
      })
      expect(withBody.status).toBe(413)
      const chunked = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, ...bearer(token), 'Upload-Defer-Length': 1, 'Transfer-Encoding': 'chunked' },
        body: Buffer.alloc(10, 1),
      })
      expect(chunked.status).toBe(411)
      expect(filesIn(server.dir)).toEqual(before)

      // At the limit it is fine; a deferred upload cannot be declared or written past it.
      const exact = await create(server.url, token, { 'Upload-Length': 100 })
      expect(exact).toMatch(/\/files\/[0-9a-f]{32}$/)
      const deferred = await create(server.url, token, { 'Upload-Defer-Length': 1 })
      const id = idOf(deferred)
      expect((await patch(deferred, 0, 'abc', { ...bearer(token), 'Upload-Length': 101 })).status).toBe(413)
      expect((await patch(deferred, 0, Buffer.alloc(101, 2), bearer(token))).status).toBe(413)
      const chunkedPatch = await request(deferred, {
        method: 'PATCH',
        headers: { ...OFFSET_STREAM, ...bearer(token), 'Upload-Offset': 0, 'Transfer-Encoding': 'chunked' },
        body: 'abc',
      })
      expect(chunkedPatch.status).toBe(411)
      expect(statSync(path.join(server.dir, id)).size).toBe(0)
      expect((await patch(deferred, 0, Buffer.alloc(100, 3), { ...bearer(token), 'Upload-Length': 100 })).status).toBe(204)
      expect(statSync(path.join(server.dir, id)).size).toBe(100)
    })

    test('allowed_types: a filetype outside the list, or none, answers 415 and stores nothing', async () => {
      const token = await hsToken({ allowed_types: ['image/*', 'application/pdf'] })
      const before = filesIn(server.dir)
      for (const metadata of [`filetype ${b64('text/plain')}`, `filename ${b64('a.png')}`, 'filetype', `filetype ${b64('imagex/png')}`]) {
        const res = await request(`${server.url}/files`, {
          method: 'POST',
          headers: { ...OFFSET_STREAM, ...bearer(token), 'Upload-Length': 3, 'Upload-Metadata': metadata },
          body: 'abc',
        })
        expect([metadata, res.status]).toEqual([metadata, 415])
        expect(res.body.toString()).toBe('This token allows only uploads whose filetype is image/*, application/pdf\n')
      }
      expect(filesIn(server.dir)).toEqual(before)
      for (const type of ['image/png', 'IMAGE/JPEG', 'application/pdf; name=x']) {
        const url = await create(server.url, token, { 'Upload-Length': 3, 'Upload-Metadata': `filetype ${b64(type)}` })
        expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
      }
    })
  })

  describe('tus-js-client', () => {
    function upload(data: Buffer, options: tus.UploadOptions): Promise<{ url: string; upload: tus.Upload }> {
      return new Promise((resolve, reject) => {
        const u = new tus.Upload(data, {
          retryDelays: null,
          chunkSize: 16,
          ...options,
          onSuccess: () => resolve({ url: u.url as string, upload: u }),
          onError: reject,
        })
        u.start()
      })
    }
    const statusOf = (error: unknown) => (error as tus.DetailedError).originalResponse?.getStatus()

    test('uploads with headers: { Authorization }, and fails with 401 without it', async () => {
      const data = Buffer.from('a file from tus-js-client, in several chunks')
      const { url } = await upload(data, {
        endpoint: `${server.url}/files`,
        headers: bearer(alice),
        metadata: { filename: 'c.txt', filetype: 'text/plain' },
      })
      expect(fileSha(server.dir, idOf(url))).toBe(sha256(data))
      expect(storedInfo(server.dir, idOf(url)).metadata['tusgate-owner']).toBe('alice')
      const before = filesIn(server.dir)
      const refused = await upload(data, { endpoint: `${server.url}/files` }).catch((e: unknown) => e)
      expect(statusOf(refused)).toBe(401)
      const expired = await upload(data, { endpoint: `${server.url}/files`, headers: bearer(await hsToken({ exp: now() - 5 })) }).catch((e: unknown) => e)
      expect(statusOf(expired)).toBe(401)
      expect(filesIn(server.dir)).toEqual(before)
    })

    test("resuming another principal's upload URL fails (or starts anew), and leaves its bytes alone", async () => {
      const url = await create(server.url, bob, { 'Upload-Length': 32 })
      await patch(url, 0, 'sixteen bytes...', bearer(bob))
      const sha = fileSha(server.dir, idOf(url))
      const data = Buffer.alloc(32, 7)
      // No endpoint: the client cannot resume and says why.
      const failed = await upload(data, { uploadUrl: url, headers: bearer(alice) }).catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(Error)
      expect(String(failed)).toMatch(/unable to resume upload/)
      // With an endpoint: it treats the URL as gone and creates an upload of alice's own.
      const { url: fresh } = await upload(data, { uploadUrl: url, endpoint: `${server.url}/files`, headers: bearer(alice) })
      expect(fresh).not.toBe(url)
      expect(fileSha(server.dir, idOf(fresh))).toBe(sha256(data))
      expect(storedInfo(server.dir, idOf(fresh)).metadata['tusgate-owner']).toBe('alice')
      expect(fileSha(server.dir, idOf(url))).toBe(sha)
      expect((await request(url, { method: 'HEAD', headers: { ...TUS, ...bearer(bob) } })).headers['upload-offset']).toBe('16')
    })
  })
})

describe('uploads across a change of AUTH_MODE', () => {
  test("an upload made with authentication off is nobody's once it is on; an owned one shows no owner when it is off", async () => {
    const temp = tempDir()
    const dir = path.join(temp.dir, 'data')
    try {
      const open = await startServer({ FILE_DIR: dir })
      let anonymous: string
      try {
        anonymous = await createUpload(open.url, { 'Upload-Length': 3, 'Upload-Metadata': `tusgate-owner ${b64('alice')}` })
        // Even with authentication off a client cannot pre-claim an upload.
        expect(storedInfo(dir, idOf(anonymous)).metadata).toEqual({})
      } finally {
        await open.stop()
      }
      const guarded = await startServer({ FILE_DIR: dir, AUTH_MODE: 'jwt', JWT_SECRET: SECRET })
      let owned: string
      try {
        const token = await hsToken({ iss: undefined, aud: undefined })
        const moved = anonymous.replace(/^http:\/\/[^/]+/, guarded.url)
        expect((await request(moved, { method: 'HEAD', headers: { ...TUS, ...bearer(token) } })).status).toBe(404)
        expect((await patch(moved, 0, 'abc', bearer(token))).status).toBe(404)
        owned = await create(guarded.url, token, { 'Upload-Length': 3, 'Upload-Metadata': `filename ${b64('o.txt')}` })
      } finally {
        await guarded.stop()
      }
      const reopened = await startServer({ FILE_DIR: dir })
      try {
        const head = await request(owned.replace(/^http:\/\/[^/]+/, reopened.url), { method: 'HEAD', headers: TUS })
        expect(head.status).toBe(200)
        expect(head.headers['upload-metadata']).toBe(`filename ${b64('o.txt')}`)
      } finally {
        await reopened.stop()
      }
    } finally {
      temp.remove()
    }
  })
})

describe('AUTH_MODE=jwt with JWT_JWKS_URL (RS256/ES256) and key rotation', () => {
  interface Key {
    kid: string
    alg: 'RS256' | 'ES256'
    privateKey: CryptoKey
    jwk: JWK
  }
  async function newKey(kid: string, alg: Key['alg']): Promise<Key> {
    const { publicKey, privateKey } = await generateKeyPair(alg)
    return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
  }
  const sign = (key: Key, claims: JWTPayload = {}) =>
    new SignJWT({ sub: 'carol', exp: now() + 600, ...claims }).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey)

  let published: Key[] = []
  let fetches = 0
  let jwks: http.Server
  let jwksUrl: string
  let server: InProcessServer
  beforeAll(async () => {
    jwks = http.createServer((_req, res) => {
      fetches++
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ keys: published.map((k) => k.jwk) }))
    })
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`
    server = await startServer({ AUTH_MODE: 'jwt', JWT_JWKS_URL: jwksUrl, JWT_JWKS_COOLDOWN: '500ms', JWT_JWKS_MAX_AGE: '1s' })
  })
  afterAll(async () => {
    await server.stop()
    await new Promise((resolve) => jwks.close(resolve))
  })

  const post = (token: string) => request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, ...bearer(token), 'Upload-Length': 1 } })

  test('keys are fetched once and cached; a new kid is fetched after the cooldown; a removed key is refused after JWT_JWKS_MAX_AGE', async () => {
    const k1 = await newKey('k1', 'RS256')
    const k2 = await newKey('k2', 'ES256')
    published = [k1]
    const t1 = await sign(k1)
    expect((await post(t1)).status).toBe(201)
    expect(fetches).toBe(1)
    for (let i = 0; i < 5; i++) expect((await post(t1)).status).toBe(201)
    expect(fetches).toBe(1)

    // Unknown kids within the cooldown do not hammer the JWKS (at most one fetch, were the cooldown just over).
    const stranger = await newKey('k-unknown', 'RS256')
    for (let i = 0; i < 5; i++) {
      const res = await post(await sign(stranger))
      expect(res.status).toBe(401)
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token", error_description="no known key matches the token"/)
    }
    expect(fetches).toBeLessThanOrEqual(2)

    // Rotation, step 1: k2 is published next to k1; a k2 token is accepted once the cooldown is over.
    published = [k1, k2]
    await sleep(600)
    const t2 = await sign(k2)
    expect((await post(t2)).status).toBe(201)
    expect((await post(t1)).status).toBe(201)

    // Step 2: k1 is withdrawn; once the cached set is older than JWT_JWKS_MAX_AGE its tokens are refused.
    published = [k2]
    await sleep(1_100)
    const old = await post(t1)
    expect(old.status).toBe(401)
    expect(old.headers['www-authenticate']).toMatch(/no known key matches the token/)
    expect((await post(t2)).status).toBe(201)
    expect((await post(await sign(k2, { sub: 'dave' }))).status).toBe(201)
  })

  test('an HS256 token (even keyed with a published public key) and a token of the wrong key are refused', async () => {
    const k3 = await newKey('k3', 'RS256')
    published = [k3]
    const hs = await new SignJWT({ sub: 'carol', exp: now() + 600 })
      .setProtectedHeader({ alg: 'HS256', kid: 'k3' })
      .sign(new TextEncoder().encode(JSON.stringify(k3.jwk)))
    const res = await post(hs)
    expect(res.status).toBe(401)
    expect(res.headers['www-authenticate']).toMatch(/algorithm is not accepted/)
    // Signed by another private key under k3's kid.
    const impostor = await newKey('k3', 'RS256')
    await sleep(600) // past the cooldown, so k3 is known
    expect((await post(await sign(k3))).status).toBe(201)
    const forged = await post(await sign(impostor))
    expect(forged.status).toBe(401)
    expect(forged.headers['www-authenticate']).toMatch(/signature is invalid/)
  })

  test('an unreachable JWKS answers 503 with Retry-After, not 401', async () => {
    const closed = http.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const down = await startServer({ AUTH_MODE: 'jwt', JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` })
    try {
      const key = await newKey('k1', 'RS256')
      const before = filesIn(down.dir)
      const res = await request(`${down.url}/files`, { method: 'POST', headers: { ...TUS, ...bearer(await sign(key)), 'Upload-Length': 1 } })
      expect(res.status).toBe(503)
      expect(res.headers['retry-after']).toBe('5')
      expect(res.headers['www-authenticate']).toBeUndefined()
      expect(filesIn(down.dir)).toEqual(before)
      expect(down.logs.some((l) => l.message === 'cannot verify tokens' && l.level === 'warn')).toBe(true)
    } finally {
      await down.stop()
    }
  })
})
