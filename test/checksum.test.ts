import { readFileSync, statSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { tusgateS3Env, useCeph } from './helpers/ceph.js'
import { CHECKSUM_ALGORITHMS, checksumHeader, corrupted, digestOf } from './helpers/checksum.js'
import { createUpload, OFFSET_STREAM, patch, type RawResponse, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type InProcessServer, processPool, startServer } from './helpers/servers.js'

const MiB = 1024 * 1024
const offsetOf = async (url: string) => (await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset']

/** A chunked request whose checksum comes as a trailer after the body (or, with `trailer` undefined, is announced but never sent). */
function sendWithTrailer(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body: Buffer,
  trailer: string | undefined,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...OFFSET_STREAM, ...headers, Trailer: 'Upload-Checksum' } })
    const informational: RawResponse['informational'] = []
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }))
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), informational }))
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')))
    // In pieces, so the body really streams before the trailer.
    for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024))
    if (trailer !== undefined) req.addTrailers({ 'Upload-Checksum': trailer })
    req.end()
  })
}

const patchWithTrailer = (url: string, offset: number, body: Buffer, trailer: string | undefined) =>
  sendWithTrailer(url, 'PATCH', { 'Upload-Offset': offset }, body, trailer)

/** The suite every store must pass: every MUST of tus 1.0.0's checksum extension, and the chunk discarded on a mismatch. */
function checksumSuite(name: string, start: () => Promise<InProcessServer>, storedBytes: (server: InProcessServer, id: string) => number | undefined) {
  describe(`checksum extension on ${name}`, () => {
    let server: InProcessServer
    beforeAll(async () => {
      server = await start()
    })
    afterAll(() => server?.stop())

    test('OPTIONS advertises checksum, checksum-trailer and the algorithms; CORS lets browsers send and read them', async () => {
      const res = await request(`${server.url}/files`, { method: 'OPTIONS', headers: { Origin: 'https://app.example.com' } })
      expect(res.status).toBe(200)
      const extensions = String(res.headers['tus-extension']).split(',')
      expect(extensions).toEqual(expect.arrayContaining(['checksum', 'checksum-trailer', 'creation', 'creation-with-upload']))
      expect(res.headers['tus-checksum-algorithm']).toBe('sha1,sha256,sha512,md5,crc32')
      // Names are lowercase ASCII, and sha1 is among them (both MUSTs of the spec).
      expect(String(res.headers['tus-checksum-algorithm'])).toMatch(/^[\x21-\x40\x5b-\x7e,]+$/)
      expect(String(res.headers['access-control-allow-headers'])).toMatch(/Upload-Checksum/)
      const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1, Origin: 'https://app.example.com' } })
      expect(String(created.headers['access-control-expose-headers'])).toMatch(/Tus-Checksum-Algorithm/)
    })

    test("the spec's example: sha1 of 'hello world' is accepted", async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 11 })
      const res = await patch(url, 0, 'hello world', { 'Upload-Checksum': 'sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=' })
      expect(res.status).toBe(204)
      expect(res.headers['upload-offset']).toBe('11')
      expect((await sha256OfDownload(url)).sha).toBe(sha256('hello world'))
    })

    test('every algorithm is accepted with a correct checksum; the upload is the chunks in order', async () => {
      const chunks = CHECKSUM_ALGORITHMS.map((_, i) => randomData(100_000 + i * 1111, 40 + i))
      const data = Buffer.concat(chunks)
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      let offset = 0
      for (const [i, algorithm] of CHECKSUM_ALGORITHMS.entries()) {
        const res = await patch(url, offset, chunks[i], checksumHeader(algorithm, chunks[i]))
        expect([algorithm, res.status]).toEqual([algorithm, 204])
        offset += chunks[i].length
        expect(res.headers['upload-offset']).toBe(String(offset))
      }
      expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    })

    test.each(CHECKSUM_ALGORITHMS)(
      '%s: a corrupted chunk answers 460 and is discarded; the retried chunk is accepted; the content is exactly the good bytes',
      async (algorithm) => {
        // The second chunk spans several S3 parts (5 MiB) and starts past the first, so a discard must restore a non-zero offset.
        const first = randomData(3 * MiB + 17, 60)
        const second = randomData(12 * MiB + 5, 61)
        const data = Buffer.concat([first, second])
        const url = await createUpload(server.url, { 'Upload-Length': data.length })
        expect((await patch(url, 0, first, checksumHeader(algorithm, first))).status).toBe(204)

        const bad = await patch(url, first.length, corrupted(second), checksumHeader(algorithm, second))
        expect(bad.status).toBe(460)
        expect(bad.body.toString()).toBe('Checksum mismatch\n')
        expect(bad.headers['tus-resumable']).toBe('1.0.0')
        expect(await offsetOf(url)).toBe(String(first.length))
        const id = url.split('/').pop() as string
        expect([undefined, first.length]).toContain(storedBytes(server, id))

        const retried = await patch(url, first.length, second, checksumHeader(algorithm, second))
        expect(retried.status).toBe(204)
        expect(retried.headers['upload-offset']).toBe(String(data.length))
        expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
      },
    )

    test('a chunk that stops short (the client hung up) fails its checksum and leaves nothing', async () => {
      const data = randomData(2 * MiB, 62)
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      // Headers promise the whole chunk; half of it arrives, then the connection ends.
      await new Promise<void>((resolve) => {
        const req = http.request(url, {
          method: 'PATCH',
          agent: false,
          headers: { ...OFFSET_STREAM, 'Upload-Offset': 0, 'Content-Length': data.length, ...checksumHeader('sha256', data) },
        })
        req.on('error', () => resolve())
        req.on('close', () => resolve())
        req.write(data.subarray(0, MiB), () => setTimeout(() => req.destroy(), 200))
      })
      // The server notices the hang-up and discards; poll HEAD briefly (bounded).
      let offset: string | string[] | undefined
      for (let i = 0; i < 50; i += 1) {
        offset = await offsetOf(url)
        if (offset === '0') break
        await sleep(100)
      }
      expect(offset).toBe('0')
      expect((await patch(url, 0, data, checksumHeader('sha256', data))).status).toBe(204)
      expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
    })

    test.each([
      ['an unsupported algorithm', `sha3 ${digestOf('sha256', Buffer.from('x'))}`],
      ['an uppercase algorithm name', `SHA1 ${digestOf('sha1', Buffer.from('x'))}`],
      ['no digest', 'sha1'],
      ['a digest that is not base64', 'sha1 not*base64'],
      ['two checksums', `sha1 ${digestOf('sha1', Buffer.from('x'))}, sha1 ${digestOf('sha1', Buffer.from('x'))}`],
    ])('%s answers 400 and stores nothing', async (_why, header) => {
      const url = await createUpload(server.url, { 'Upload-Length': 1 })
      const res = await patch(url, 0, 'x', { 'Upload-Checksum': header })
      expect(res.status).toBe(400)
      expect(res.body.toString()).toMatch(/^Invalid Upload-Checksum: .+\n$/)
      expect(res.headers['tus-resumable']).toBe('1.0.0')
      expect(await offsetOf(url)).toBe('0')
      expect([undefined, 0]).toContain(storedBytes(server, url.split('/').pop() as string))
    })

    test('a well-formed digest of the wrong length for its algorithm is a mismatch: 460, the chunk discarded', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 1 })
      const res = await patch(url, 0, 'x', { 'Upload-Checksum': `sha256 ${digestOf('sha1', Buffer.from('x'))}` })
      expect(res.status).toBe(460)
      expect(await offsetOf(url)).toBe('0')
      expect([undefined, 0]).toContain(storedBytes(server, url.split('/').pop() as string))
    })

    test('creation-with-upload: a good checksum creates the upload with the body; a bad one answers 460 and leaves no upload', async () => {
      const data = randomData(256 * 1024, 63)
      const headers = { ...OFFSET_STREAM, 'Upload-Length': data.length * 2 }
      const good = await request(`${server.url}/files`, { method: 'POST', headers: { ...headers, ...checksumHeader('md5', data) }, body: data })
      expect(good.status).toBe(201)
      expect(good.headers['upload-offset']).toBe(String(data.length))
      const url = new URL(String(good.headers.location), server.url).toString()
      expect(await offsetOf(url)).toBe(String(data.length))

      const logged = server.logs.length
      const bad = await request(`${server.url}/files`, { method: 'POST', headers: { ...headers, ...checksumHeader('md5', data) }, body: corrupted(data) })
      expect(bad.status).toBe(460)
      expect(bad.body.toString()).toBe('Checksum mismatch\n')
      expect(bad.headers.location).toBeUndefined()
      const discarded = server.logs.slice(logged).find((line) => line.message === 'chunk discarded')
      expect(discarded).toMatchObject({ reason: 'Checksum mismatch', offset: 0 })
      const gone = await request(`${server.url}/files/${String(discarded?.uploadId)}`, { method: 'HEAD', headers: TUS })
      expect(gone.status).toBe(404)

      // The client posts again, and finishes the upload by PATCH.
      const retried = await request(`${server.url}/files`, { method: 'POST', headers: { ...headers, ...checksumHeader('crc32', data) }, body: data })
      expect(retried.status).toBe(201)
      const retriedUrl = new URL(String(retried.headers.location), server.url).toString()
      const rest = randomData(data.length, 64)
      expect((await patch(retriedUrl, data.length, rest, checksumHeader('sha512', rest))).status).toBe(204)
      expect((await sha256OfDownload(retriedUrl)).sha).toBe(sha256(Buffer.concat([data, rest])))
    })

    test('creation-with-upload with an unsupported algorithm answers 400 and creates nothing', async () => {
      const logged = server.logs.length
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, 'Upload-Length': 1, 'Upload-Checksum': 'whirlpool AAAA' },
        body: 'x',
      })
      expect(res.status).toBe(400)
      expect(res.headers.location).toBeUndefined()
      expect(server.logs.slice(logged).some((line) => line.message === 'upload created')).toBe(false)
    })

    test('checksum-trailer: a correct trailer is accepted; a wrong one answers 460 and is discarded; a missing or unsupported one 400', async () => {
      const first = randomData(1 * MiB + 3, 65)
      const second = randomData(6 * MiB + 1, 66)
      const data = Buffer.concat([first, second])
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      const ok = await patchWithTrailer(url, 0, first, `sha256 ${digestOf('sha256', first)}`)
      expect(ok.status).toBe(204)
      expect(ok.headers['upload-offset']).toBe(String(first.length))

      const mismatch = await patchWithTrailer(url, first.length, corrupted(second), `crc32 ${digestOf('crc32', second)}`)
      expect(mismatch.status).toBe(460)
      const missing = await patchWithTrailer(url, first.length, second, undefined)
      expect(missing.status).toBe(400)
      expect(missing.body.toString()).toMatch(/trailer did not arrive/)
      const unsupported = await patchWithTrailer(url, first.length, second, `sha3 ${digestOf('sha256', second)}`)
      expect(unsupported.status).toBe(400)
      expect(await offsetOf(url)).toBe(String(first.length))

      const retried = await patchWithTrailer(url, first.length, second, `md5 ${digestOf('md5', second)}`)
      expect(retried.status).toBe(204)
      expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    })

    test('checksum-trailer on creation-with-upload: a correct trailer creates the upload with the body; a wrong one answers 460', async () => {
      const data = randomData(300_000, 67)
      const created = await sendWithTrailer(`${server.url}/files`, 'POST', { 'Upload-Length': data.length }, data, `sha1 ${digestOf('sha1', data)}`)
      expect(created.status).toBe(201)
      expect(created.headers['upload-offset']).toBe(String(data.length))
      expect((await sha256OfDownload(new URL(String(created.headers.location), server.url).toString())).sha).toBe(sha256(data))
      const bad = await sendWithTrailer(`${server.url}/files`, 'POST', { 'Upload-Length': data.length }, corrupted(data), `sha1 ${digestOf('sha1', data)}`)
      expect(bad.status).toBe(460)
      expect(bad.headers.location).toBeUndefined()
    })

    test('a checksum both as header and as trailer answers 400', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 1 })
      const res = await patch(url, 0, 'x', { ...checksumHeader('sha1', Buffer.from('x')), Trailer: 'Upload-Checksum' })
      expect(res.status).toBe(400)
      expect(await offsetOf(url)).toBe('0')
    })
  })
}

/** The server process's peak resident memory (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error('no VmHWM')
  return Number(match[1]) * 1024
}

/**
 * A 128 MiB chunk with a checksum, corrupted then good, against a server process: its peak RSS may not grow
 * by half the chunk past what the same chunk without a checksum took (a server holding the chunk would add
 * all 128 MiB; garbage not yet collected has reached 43 MiB on a loaded machine).
 */
function boundedMemory(name: string, env: () => Promise<Record<string, string>>) {
  const { newDir, launch, cleanup } = processPool('tusgate-checksum-')
  afterAll(cleanup)

  test(`${name}: a 128 MiB chunk with a checksum is verified and discarded in bounded memory`, async () => {
    // Node 24's young generation holds up to 64 MiB of garbage before a scavenge; bounded here, so the peak
    // measures what the server retains, not when the collector last ran.
    const server = await launch(newDir(), { ...(await env()), NODE_OPTIONS: '--max-semi-space-size=8' })
    const data = randomData(128 * MiB, 71)
    // The plain chunk sets the peak that streaming alone costs (socket buffers, garbage).
    const plain = await createUpload(server.url, { 'Upload-Length': data.length })
    expect((await patch(plain, 0, data)).status).toBe(204)
    const before = peakRss(server.child.pid as number)

    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    expect((await patch(url, 0, corrupted(data), checksumHeader('sha256', data))).status).toBe(460)
    expect(await offsetOf(url)).toBe('0')
    expect((await patch(url, 0, data, checksumHeader('sha256', data))).status).toBe(204)
    // Half the chunk: garbage varies with the machine's load, a held chunk adds all of it.
    expect(peakRss(server.child.pid as number) - before).toBeLessThan(64 * MiB)
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  }, 180_000)
}

checksumSuite(
  'the file store',
  () => startServer(),
  (server, id) => statSync(path.join(server.dir, id), { throwIfNoEntry: false })?.size,
)
boundedMemory('file store', async () => ({}))

describe('on S3 (Ceph radosgw)', () => {
  const ceph = useCeph()

  // S3 cannot take bytes back: nothing reaches the bucket until a chunk is verified, so only HEAD and GET can tell.
  checksumSuite(
    'S3',
    async () => startServer(await tusgateS3Env(ceph())),
    () => undefined,
  )
  boundedMemory('S3', () => tusgateS3Env(ceph()))
})
