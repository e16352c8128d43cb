// The tus concatenation extension (parallel uploads) on the file store and on S3 (Ceph radosgw): every
// MUST of tus 1.0.0's section over raw HTTP, tus-js-client with parallelUploads end to end and resumed
// after an abort, the refusals (unknown, foreign partials) storing nothing, and the S3 plan
// of server-side copies.
import { existsSync, readdirSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { ListObjectsV2Command, type S3 } from '@aws-sdk/client-s3'
import * as tus from 'tus-js-client'
import { MIN_PART, planParts } from '../stores/s3/concatPlan.js'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, tempDir, useServer } from './helpers/servers.js'
import { hsTokens, TEST_SECRET } from './helpers/tokens.js'

// tus-js-client exports FileUrlStorage in Node, but its typings leave it out.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (path: string) => tus.UrlStorage }

const MiB = 1024 * 1024
const b64 = (s: string) => Buffer.from(s).toString('base64')
const pathOf = (url: string) => new URL(url).pathname
const head = (url: string, headers: Record<string, string> = {}) => request(url, { method: 'HEAD', headers: { ...TUS, ...headers } })

/** A finished partial upload holding `data`; its absolute URL. */
async function partial(base: string, data: Buffer | string, headers: Record<string, string> = {}): Promise<string> {
  const url = await createUpload(base, { 'Upload-Concat': 'partial', 'Upload-Length': Buffer.byteLength(data), ...headers })
  if (Buffer.byteLength(data) > 0) {
    const res = await patch(url, 0, data, headers)
    if (res.status !== 204) throw new Error(`partial PATCH failed: ${res.status} ${res.body}`)
  }
  return url
}

function final(base: string, urls: string[], headers: Record<string, string> = {}) {
  return request(`${base}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}`, ...headers } })
}

function parallelUpload(data: Buffer, options: tus.UploadOptions): { done: Promise<string>; upload: tus.Upload } {
  let upload!: tus.Upload
  // No kept-alive sockets across tests: the server may close an idle one just as the client reuses it.
  const httpStack = new tus.DefaultHttpStack({ agent: new http.Agent({ keepAlive: false }) })
  const done = new Promise<string>((resolve, reject) => {
    upload = new tus.Upload(data, {
      retryDelays: null,
      parallelUploads: 4,
      httpStack,
      ...options,
      onError: reject,
      onSuccess: () => resolve(upload.url as string),
    })
  })
  return { done, upload }
}

interface Subject {
  /** A tusgate on this store; `env` adds settings. */
  start(env?: Record<string, string>): Promise<InProcessServer>
  /** How many uploads the store of `server` holds. */
  stored(server: InProcessServer): Promise<number>
  /** How many server-side part copies the store of `server` has made. */
  copies(server: InProcessServer): number
}

function concatenationSuite(name: string, subject: () => Subject, sizes: { parallel: number; parallelCopies: number; small: number }) {
  describe(`concatenation on ${name}`, () => {
    let server: InProcessServer
    beforeAll(async () => {
      server = await subject().start()
    })
    afterAll(() => server?.stop())

    test('OPTIONS advertises concatenation and concatenation-unfinished (test/concatenationUnfinished.test.ts)', async () => {
      const res = await request(`${server.url}/files`, { method: 'OPTIONS' })
      const extensions = (res.headers['tus-extension'] as string).split(',')
      expect(extensions).toContain('concatenation')
      expect(extensions).toContain('concatenation-unfinished')
    })

    test('a partial upload: HEAD shows Upload-Concat: partial and its Upload-Offset, before and after its bytes', async () => {
      const url = await createUpload(server.url, { 'Upload-Concat': 'partial', 'Upload-Length': 5 })
      let res = await head(url)
      expect(res.status).toBe(200)
      expect(res.headers['upload-concat']).toBe('partial')
      expect(res.headers['upload-offset']).toBe('0')
      expect(res.headers['upload-length']).toBe('5')
      expect((await patch(url, 0, 'hel')).status).toBe(204)
      res = await head(url)
      expect(res.headers['upload-offset']).toBe('3')
      expect(res.headers['upload-concat']).toBe('partial')
    })

    test('the spec example: final;/files/a /files/b is "hello world", length the sum, HEAD as created, metadata its own', async () => {
      const a = await partial(server.url, 'hello', { 'Upload-Metadata': `filename ${b64('a.part')}` })
      const b = await partial(server.url, ' world')
      const concat = `final;${pathOf(a)} ${pathOf(b)}`
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Concat': concat, 'Upload-Metadata': `filename ${b64('hello.txt')},filetype ${b64('text/plain')}` },
      })
      expect(res.status).toBe(201)
      expect(res.headers['tus-resumable']).toBe('1.0.0')
      const url = new URL(res.headers.location as string, server.url).toString()
      expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
      const info = await head(url)
      expect(info.status).toBe(200)
      expect(info.headers['upload-concat']).toBe(concat)
      expect(info.headers['upload-length']).toBe('11')
      expect(info.headers['upload-offset']).toBe('11')
      // The partials' metadata is not carried over, and no reserved key shows.
      expect(info.headers['upload-metadata']).toBe(`filename ${b64('hello.txt')},filetype ${b64('text/plain')}`)
      const got = await request(url)
      expect(got.status).toBe(200)
      expect(got.body.toString()).toBe('hello world')
      // The partials are still there and unchanged.
      expect((await request(a)).body.toString()).toBe('hello')
      expect((await head(b)).headers['upload-concat']).toBe('partial')
    })

    test('absolute URLs, a partial named twice, and an empty partial: in the order listed', async () => {
      const a = await partial(server.url, 'ab')
      const b = await partial(server.url, 'CD')
      const empty = await partial(server.url, '')
      const res = await final(server.url, [b, a, empty, b])
      expect(res.status).toBe(201)
      const url = new URL(res.headers.location as string, server.url).toString()
      expect((await head(url)).headers['upload-length']).toBe('6')
      expect((await request(url)).body.toString()).toBe('CDabCD')
    })

    test('repeats may not multiply the bytes uploaded more than twice: 413, nothing stored', async () => {
      const a = await partial(server.url, 'ab')
      const res = await final(server.url, [a, a, a])
      expect(res.status).toBe(413)
      expect(res.headers.location).toBeUndefined()
      expect((await final(server.url, [a, a])).status).toBe(201)
    })

    test('PATCH on a final upload answers 403 and changes neither it nor its partials', async () => {
      const a = await partial(server.url, 'one')
      const b = await partial(server.url, 'two')
      const url = new URL((await final(server.url, [a, b])).headers.location as string, server.url).toString()
      for (const offset of [6, 0]) {
        const res = await patch(url, offset, 'more')
        expect(res.status).toBe(403)
        expect(res.headers['tus-resumable']).toBe('1.0.0')
      }
      expect((await head(url)).headers['upload-offset']).toBe('6')
      expect((await request(url)).body.toString()).toBe('onetwo')
      expect((await request(a)).body.toString()).toBe('one')
      expect((await request(b)).body.toString()).toBe('two')
    })

    test('refusals answer 400 and store nothing: unknown and plain partials; Upload-Length; a body; bad URLs', async () => {
      const done = await partial(server.url, 'done')
      const plain = await createUpload(server.url, { 'Upload-Length': 4 })
      expect((await patch(plain, 0, 'full')).status).toBe(204)
      const unknown = `${server.url}/files/${'0'.repeat(32)}`
      const before = await subject().stored(server)

      const cases: Array<[string, Awaited<ReturnType<typeof request>>, RegExp]> = [
        ['unknown', await final(server.url, [done, unknown]), /not found/],
        ['plain', await final(server.url, [done, plain]), /Not a partial upload/],
        [
          'final as partial',
          await final(server.url, [new URL((await final(server.url, [done])).headers.location as string, server.url).toString()]),
          /Not a partial/,
        ],
        ['Upload-Length', await final(server.url, [done], { 'Upload-Length': '4' }), /no Upload-Length/],
        ['Upload-Defer-Length', await final(server.url, [done], { 'Upload-Defer-Length': '1' }), /no Upload-Length/],
        ['no URLs', await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': 'final;' } }), /names no partial/],
        ['another path', await final(server.url, [`/elsewhere/${pathOf(done).split('/').pop()}`]), /not found/],
        ['not an id', await final(server.url, ['/files/abc']), /not found/],
        [
          'a body',
          await request(`${server.url}/files`, {
            method: 'POST',
            headers: { ...TUS, 'Upload-Concat': `final;${done}`, 'Content-Type': 'application/offset+octet-stream' },
            body: 'x',
          }),
          /no body/,
        ],
      ]
      for (const [what, res, reason] of cases) {
        expect([what, res.status]).toEqual([what, 400])
        expect([what, res.body.toString()]).toEqual([what, expect.stringMatching(reason)])
        expect(res.headers.location).toBeUndefined()
      }
      // One final (of `done` alone) was made on purpose above.
      expect(await subject().stored(server)).toBe(before + 1)
    })

    test('a client cannot mark an upload partial or final through the reserved metadata keys', async () => {
      const forged = `tusgate-concat ${b64('partial')},TUSGATE-Concat ${b64('final;/files/x')},name ${b64('n')}`
      const url = await createUpload(server.url, { 'Upload-Length': 2, 'Upload-Metadata': forged })
      expect((await patch(url, 0, 'ok')).status).toBe(204)
      const info = await head(url)
      expect(info.headers['upload-concat']).toBeUndefined()
      expect(info.headers['upload-metadata']).toBe(`name ${b64('n')}`)
      const res = await final(server.url, [url])
      expect(res.status).toBe(400)
      expect(res.body.toString()).toMatch(/Not a partial upload/)
      const forgedFinal = await partial(server.url, 'p', { 'Upload-Metadata': `tusgate-concat ${b64('final;/files/x')}` })
      expect((await head(forgedFinal)).headers['upload-concat']).toBe('partial')
    })

    test('an invalid Upload-Concat value answers 400', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': 'partly', 'Upload-Length': 1 } })
      expect(res.status).toBe(400)
    })

    test(`tus-js-client with parallelUploads: 4 (${sizes.parallel} bytes, ${sizes.parallelCopies} parts copied): SHA-256 by GET, final HEAD as the spec says`, async () => {
      const copiesBefore = subject().copies(server)
      const data = randomData(sizes.parallel, 41)
      const { done, upload } = parallelUpload(data, { endpoint: `${server.url}/files`, chunkSize: 2 * MiB, metadata: { filename: 'big.bin' } })
      upload.start()
      const url = await done
      expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
      const info = await head(url)
      expect(info.headers['upload-length']).toBe(String(data.length))
      expect(info.headers['upload-offset']).toBe(String(data.length))
      expect(info.headers['upload-concat']).toMatch(/^final;(http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32} ?){4}$/)
      expect(subject().copies(server) - copiesBefore).toBe(sizes.parallelCopies)
    }, 120_000)

    test(`tus-js-client with parallelUploads: 4 of small parts (${sizes.small} bytes), none copied`, async () => {
      const copiesBefore = subject().copies(server)
      const data = randomData(sizes.small, 42)
      const { done, upload } = parallelUpload(data, { endpoint: `${server.url}/files` })
      upload.start()
      expect((await sha256OfDownload(await done)).sha).toBe(sha256(data))
      expect(subject().copies(server)).toBe(copiesBefore)
    }, 60_000)

    test('a parallel upload aborted midway resumes its partial uploads from the URL storage', async () => {
      const storage = tempDir('tusgate-urls-')
      try {
        const data = randomData(sizes.parallel, 43)
        const options: tus.UploadOptions = {
          endpoint: `${server.url}/files`,
          chunkSize: 512 * 1024,
          urlStorage: new FileUrlStorage(path.join(storage.dir, 'urls.json')),
        }
        const createdBefore = server.logs.filter((l) => l.message === 'upload created').length
        const first = parallelUpload(data, {
          ...options,
          onProgress(sent) {
            if (sent > data.length / 3) void first.upload.abort()
          },
        })
        first.upload.start()
        // An aborted upload neither succeeds nor fails: wait until its abort has been called and settled.
        const deadline = Date.now() + 60_000
        while (!(first.upload as unknown as { _aborted?: boolean })._aborted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        expect((first.upload as unknown as { _aborted?: boolean })._aborted).toBe(true)
        await new Promise((r) => setTimeout(r, 300))

        const second = parallelUpload(data, options)
        const previous = await second.upload.findPreviousUploads()
        expect(previous).toHaveLength(1)
        expect(previous[0].parallelUploadUrls).toHaveLength(4)
        const offsets = await Promise.all((previous[0].parallelUploadUrls as string[]).map(async (u) => Number((await head(u)).headers['upload-offset'])))
        expect(offsets.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
        expect(offsets.reduce((a, b) => a + b, 0)).toBeLessThan(data.length)
        second.upload.resumeFromPreviousUpload(previous[0])
        second.upload.start()
        const url = await second.done
        expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
        // Four partials and one final: the partials were resumed, not made again.
        expect(server.logs.filter((l) => l.message === 'upload created').length - createdBefore).toBe(5)
      } finally {
        storage.remove()
      }
    }, 120_000)

    describe('with CONCAT_REMOVE_PARTIALS=true', () => {
      let removing: InProcessServer
      beforeAll(async () => {
        removing = await subject().start({ CONCAT_REMOVE_PARTIALS: 'true' })
      })
      afterAll(() => removing?.stop())

      test('the partials are removed once assembled; a second final naming them is refused; one of two at once wins', async () => {
        const a = await partial(removing.url, 'left-')
        const b = await partial(removing.url, 'right')
        const res = await final(removing.url, [a, b, a])
        expect(res.status).toBe(201)
        const url = new URL(res.headers.location as string, removing.url).toString()
        expect((await request(url)).body.toString()).toBe('left-rightleft-')
        expect((await head(a)).status).toBe(404)
        expect((await head(b)).status).toBe(404)
        expect((await final(removing.url, [a])).status).toBe(400)

        const c = await partial(removing.url, 'once')
        const both = await Promise.all([final(removing.url, [c]), final(removing.url, [c])])
        expect(both.map((r) => r.status).sort()).toEqual([201, 400])
        const winner = both.find((r) => r.status === 201) as Awaited<ReturnType<typeof request>>
        expect((await request(new URL(winner.headers.location as string, removing.url).toString())).body.toString()).toBe('once')
      })
    })
  })
}

concatenationSuite(
  'the file store',
  () => ({
    start: (env) => startServer(env),
    stored: async (server) => (existsSync(server.dir) ? readdirSync(server.dir).filter((f) => f.endsWith('.json')).length : 0),
    copies: () => 0,
  }),
  { parallel: 3 * MiB + 5, parallelCopies: 0, small: 1000 },
)

/** Counts the UploadPartCopy requests a server's S3 client sends. */
function countCopies(server: InProcessServer): () => number {
  let copies = 0
  const { client } = (server.app.store.datastore as unknown as { inner: { client: S3 } }).inner
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'UploadPartCopyCommand') copies++
      return next(args)
    },
    { step: 'initialize', name: 'testCountCopies' },
  )
  return () => copies
}

describe('concatenation on S3 (Ceph radosgw)', () => {
  let ceph: CephCluster
  const buckets = new Map<InProcessServer, string>()
  const copies = new Map<InProcessServer, () => number>()
  beforeAll(async () => {
    ceph = await startCeph()
  }, 120_000)
  afterAll(() => ceph?.stop())

  // 4 partials of 6 MiB: each copied server-side; 4 of 250 bytes: read and sent as one part.
  concatenationSuite(
    'S3 (Ceph radosgw)',
    () => ({
      async start(env = {}) {
        const s3 = await tusgateS3Env(ceph, { S3_KEY_PREFIX: 'uploads/', ...env })
        const server = await startServer(s3)
        buckets.set(server, s3.S3_BUCKET)
        copies.set(server, countCopies(server))
        return server
      },
      copies: (server) => (copies.get(server) as () => number)(),
      async stored(server) {
        const listed = await ceph.client().send(new ListObjectsV2Command({ Bucket: buckets.get(server) }))
        return (listed.Contents ?? []).filter((o) => o.Key?.endsWith('.info')).length
      },
    }),
    { parallel: 24 * MiB + 3, parallelCopies: 4, small: 1000 },
  )

  test('partials of mixed sizes: copied where large enough, read and sent where not; SHA-256 by GET', async () => {
    const server = await startServer(await tusgateS3Env(ceph, { S3_KEY_PREFIX: 'mixed/' }))
    const copied = countCopies(server)
    try {
      // Parts: 1 MiB + 4 MiB of the second sent; its other 8 MiB copied; 3 bytes + 5 MiB - 3 of the fourth sent; the rest sent.
      const pieces = [randomData(MiB, 51), randomData(12 * MiB, 52), Buffer.from('xyz'), randomData(6 * MiB, 54), randomData(2 * MiB, 55)]
      const urls: string[] = []
      for (const piece of pieces) urls.push(await partial(server.url, piece))
      const res = await final(server.url, urls)
      expect(res.status).toBe(201)
      const whole = Buffer.concat(pieces)
      expect(await sha256OfDownload(new URL(res.headers.location as string, server.url).toString())).toEqual({
        status: 200,
        sha: sha256(whole),
        bytes: whole.length,
      })
      expect(copied()).toBe(1)
    } finally {
      await server.stop()
    }
  }, 120_000)
})

describe('concatenation with AUTH_MODE=jwt', () => {
  const mint = hsTokens()
  const token = (sub: string, claims: Record<string, unknown> = {}) => mint({ sub, ...claims })
  const server = useServer({ AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET })

  test("another user's partial answers exactly as an unknown one, and nothing is stored", async () => {
    const alice = { Authorization: `Bearer ${await token('alice')}` }
    const bob = { Authorization: `Bearer ${await token('bob')}` }
    const hers = await partial(server.url, 'secret', alice)
    const his = await partial(server.url, 'mine', bob)
    const before = readdirSync(server.dir).length
    const foreign = await final(server.url, [his, hers], bob)
    const unknownUrl = hers.replace(/[0-9a-f]{32}$/, '0'.repeat(32))
    const unknown = await final(server.url, [his, unknownUrl], bob)
    expect(foreign.status).toBe(400)
    expect(foreign.body.toString()).toBe(unknown.body.toString().replace('0'.repeat(32), hers.split('/').pop() as string))
    expect(readdirSync(server.dir).length).toBe(before)
    // Her own partials make her final upload, which is hers alone.
    const res = await final(server.url, [hers, hers], alice)
    expect(res.status).toBe(201)
    const url = new URL(res.headers.location as string, server.url).toString()
    expect((await request(url, { headers: alice })).body.toString()).toBe('secretsecret')
    expect((await head(url, bob)).status).toBe(404)
  })

  test('token limits: partials need no filetype, the final does; max_size bounds the sum', async () => {
    const limited = { Authorization: `Bearer ${await token('carol', { allowed_types: ['text/*'], max_size: 10 })}` }
    const a = await partial(server.url, 'abcdef', limited)
    const b = await partial(server.url, 'ghijkl', limited)
    expect((await final(server.url, [a], { ...limited, 'Upload-Metadata': `filetype ${b64('image/png')}` })).status).toBe(415)
    const tooBig = await final(server.url, [a, b], { ...limited, 'Upload-Metadata': `filetype ${b64('text/plain')}` })
    expect(tooBig.status).toBe(413)
    const ok = await final(server.url, [a], { ...limited, 'Upload-Metadata': `filetype ${b64('text/plain')}` })
    expect(ok.status).toBe(201)
  })
})

describe('MAX_SIZE', () => {
  test('a final upload whose partials sum to more answers 413 and stores nothing', async () => {
    const server = await startServer({ MAX_SIZE: '10' })
    try {
      const a = await partial(server.url, 'abcdef')
      const b = await partial(server.url, 'ghijkl')
      const before = readdirSync(server.dir).length
      expect((await final(server.url, [a, b])).status).toBe(413)
      expect(readdirSync(server.dir).length).toBe(before)
    } finally {
      await server.stop()
    }
  })
})

describe('S3 part plan', () => {
  const min = MIN_PART
  test('large sources are copied, small ones gathered into parts of exactly the minimum, the last may be small', () => {
    const plan = planParts([
      { id: 'a', size: 1 },
      { id: 'b', size: min + 2 },
      { id: 'c', size: 0 },
      { id: 'd', size: min },
      { id: 'e', size: 3 },
    ])
    expect(plan).toEqual([
      {
        send: [
          { id: 'a', start: 0, end: 1 },
          { id: 'b', start: 0, end: min - 1 },
        ],
        size: min,
      },
      {
        send: [
          { id: 'b', start: min - 1, end: min + 2 },
          { id: 'd', start: 0, end: min - 3 },
        ],
        size: min,
      },
      {
        send: [
          { id: 'd', start: min - 3, end: min },
          { id: 'e', start: 0, end: 3 },
        ],
        size: 6,
      },
    ])
    expect(
      planParts([
        { id: 'x', size: 2 * min },
        { id: 'y', size: min },
      ]),
    ).toEqual([{ copy: { id: 'x', start: 0, end: 2 * min } }, { copy: { id: 'y', start: 0, end: min } }])
    // Copies are at most maxCopy bytes; what is left over too small to copy is sent with what follows.
    expect(
      planParts(
        [
          { id: 'z', size: 25 },
          { id: 'w', size: 2 },
        ],
        5,
        10,
      ),
    ).toEqual([
      { copy: { id: 'z', start: 0, end: 10 } },
      { copy: { id: 'z', start: 10, end: 20 } },
      { copy: { id: 'z', start: 20, end: 25 } },
      { send: [{ id: 'w', start: 0, end: 2 }], size: 2 },
    ])
    expect(planParts([])).toEqual([])
  })
})
