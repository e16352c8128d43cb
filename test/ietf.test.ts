// The IETF resumable-upload draft beside tus 1.0.0 on the same endpoint, on the file store and on S3
// (Ceph radosgw): the real tus-js-client with its two IETF protocols, and raw HTTP in the words of
// interop versions 3 (Apple's URLSession), 5, 6 and 8 (the latest draft), 104 responses included.
import { createHash } from 'node:crypto'
import { readdirSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import * as tus from 'tus-js-client'
import { type Azurite, startAzurite } from './helpers/azurite.js'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { type HookReceiver, startHookReceiver } from './helpers/hookReceiver.js'
import { type RawResponse, randomData, request, sha256, sha256OfDownload, TUS, patch as tusPatch } from './helpers/http.js'
import { type InProcessServer, startServer, tempDir, useServer } from './helpers/servers.js'
import { hsTokens, TEST_SECRET } from './helpers/tokens.js'

const MiB = 1024 * 1024
const PROBLEM = 'https://iana.org/assignments/http-problem-types#'
const v = (version: number) => ({ 'Upload-Draft-Interop-Version': String(version) })
const PARTIAL = { 'Content-Type': 'application/partial-upload' }

let ceph: CephCluster | undefined
let azurite: Azurite | undefined
afterAll(async () => {
  await ceph?.stop()
  await azurite?.stop()
})

const STORES: Array<[string, () => Promise<Record<string, string>>]> = [
  ['file store', async () => ({})],
  [
    'S3 (Ceph radosgw)',
    async () => {
      ceph ??= await startCeph()
      return tusgateS3Env(ceph)
    },
  ],
  [
    'Azure Blob store (Azurite)',
    async () => {
      azurite ??= await startAzurite()
      return { STORE: 'azure', ...azurite.env, AZURE_CONTAINER: azurite.containerName() }
    },
  ],
]

/** A tus-js-client upload to its end; resolves with its URL. */
function upload(data: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, { retryDelays: null, ...options, onError: reject, onSuccess: () => resolve(u.url as string) })
    u.start()
  })
}

/** A tus-js-client upload aborted after its first chunk; resolves with its URL. */
function uploadFirstChunk(data: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const u: tus.Upload = new tus.Upload(data, {
      retryDelays: null,
      ...options,
      onError: reject,
      onSuccess: () => reject(new Error('finished before the abort')),
      onChunkComplete: () => void u.abort().then(() => resolve(u.url as string), reject),
    })
    u.start()
  })
}

/**
 * A request whose client goes away mid-body: it sends the headers and `sent` bytes of `body` (announcing
 * all of it), waits for an interim response (or 5 s), then for the bytes to land, and cuts the connection.
 * Resolves with the interim responses seen.
 */
function interruptedRequest(url: string, method: string, headers: Record<string, string | number>, body: Buffer, sent: number) {
  return new Promise<Array<{ status: number; headers: http.IncomingHttpHeaders }>>((resolve, reject) => {
    const informational: Array<{ status: number; headers: http.IncomingHttpHeaders }> = []
    const req = http.request(url, { method, agent: false, headers: { ...headers, 'Content-Length': body.length } })
    req.on('error', () => {}) // the cut is ours
    req.on('response', () => reject(new Error('a final response before the body was complete')))
    const cut = async () => {
      await sleep(300)
      req.destroy()
      resolve(informational)
    }
    const timer = setTimeout(() => void cut(), 5000)
    req.on('information', (info) => {
      informational.push({ status: info.statusCode, headers: info.headers })
      clearTimeout(timer)
      void cut()
    })
    req.flushHeaders()
    req.write(body.subarray(0, sent))
  })
}

/** A request whose content goes chunked (no Content-Length), in 64 KiB writes. */
function chunkedRequest(url: string, method: string, headers: Record<string, string | number>, body: Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false, headers: { ...headers, 'Transfer-Encoding': 'chunked' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), informational: [] }))
    })
    req.on('error', reject)
    for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024))
    req.end()
  })
}

const problemOf = (res: RawResponse) => {
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
  return JSON.parse(res.body.toString()) as Record<string, unknown>
}

describe.each(STORES)('IETF resumable uploads on the %s', (_name, storeEnv) => {
  let server: InProcessServer
  let files: string
  beforeAll(async () => {
    server = await startServer(await storeEnv())
    files = `${server.url}/files`
  }, 180_000)
  afterAll(() => server?.stop())

  const head = (url: string, version: number, headers: Record<string, string> = {}) => request(url, { method: 'HEAD', headers: { ...v(version), ...headers } })

  describe.each([
    ['ietf-draft-03', 5],
    ['ietf-draft-05', 6],
  ] as const)('tus-js-client with protocol %s (interop %i)', (protocol, version) => {
    test('uploads, is aborted after a chunk, resumes where it stopped and completes; SHA-256 by GET', async () => {
      const data = randomData(3 * MiB + 123, version)
      const options = { endpoint: files, protocol, chunkSize: MiB, metadata: { filename: 'ietf.bin' } } as tus.UploadOptions
      const url = await uploadFirstChunk(data, options)

      const stopped = await head(url, version)
      expect(stopped.status).toBe(204)
      expect(stopped.headers['upload-offset']).toBe(String(MiB))
      expect(stopped.headers['upload-complete']).toBe('?0')
      expect(stopped.headers['upload-length']).toBe(String(data.length))

      const offsets: number[] = []
      const resumed = await upload(data, { ...options, uploadUrl: url, onChunkComplete: (_size, accepted) => void offsets.push(accepted) })
      expect(resumed).toBe(url)
      expect(offsets[0]).toBe(2 * MiB) // went on from the first chunk, not from 0
      const done = await head(url, version)
      expect(done.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) })
      expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    }, 120_000)
  })

  test('tus-js-client ietf-draft-05 with the data in the creation request and a deferred length', async () => {
    const data = randomData(2 * MiB + 7, 21)
    const url = await upload(data, {
      endpoint: files,
      protocol: 'ietf-draft-05',
      chunkSize: MiB,
      uploadDataDuringCreation: true,
      uploadLengthDeferred: true,
      metadata: { filename: 'notes.txt', filetype: 'text/plain' },
    } as tus.UploadOptions)
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    const download = await request(url)
    expect(download.headers['content-type']).toMatch(/^text\/plain/)
  }, 60_000)

  test('interop 3 (URLSession): an interrupted creation with a 104, HEAD, and resumption in two appends', async () => {
    const data = randomData(2 * MiB + 5, 3)
    const sent = MiB
    const interim = await interruptedRequest(files, 'POST', { ...v(3), 'Upload-Incomplete': '?0', 'Content-Type': 'video/mp4' }, data, sent)
    expect(interim).toHaveLength(1)
    expect(interim[0].status).toBe(104)
    expect(interim[0].headers['upload-draft-interop-version']).toBe('3')
    const url = interim[0].headers.location as string
    expect(url).toMatch(new RegExp(`^${files}/[0-9a-f]{32}$`))
    expect(interim[0].headers['upload-limit']).toBeUndefined() // not in draft -01

    // The request must carry neither Upload-Offset nor Upload-Incomplete.
    expect((await head(url, 3, { 'Upload-Offset': '0' })).status).toBe(400)
    const offset = await head(url, 3)
    expect(offset.status).toBe(204)
    expect(offset.headers['upload-incomplete']).toBe('?1')
    expect(offset.headers['cache-control']).toBe('no-store')
    const at = Number(offset.headers['upload-offset'])
    expect(at).toBeGreaterThan(0)
    expect(at).toBeLessThanOrEqual(sent)

    const middle = at + Math.floor((data.length - at) / 2)
    const part = await request(url, { method: 'PATCH', headers: { ...v(3), 'Upload-Offset': at, 'Upload-Incomplete': '?1' }, body: data.subarray(at, middle) })
    expect(part.status).toBe(201)
    expect(part.headers).toMatchObject({ 'upload-incomplete': '?1', 'upload-offset': String(middle) })
    // The last part says nothing of completeness: in draft -01 that means complete.
    const last = await request(url, { method: 'PATCH', headers: { ...v(3), 'Upload-Offset': middle }, body: data.subarray(middle) })
    expect(last.status).toBe(201)
    expect(last.headers).toMatchObject({ 'upload-incomplete': '?0', 'upload-offset': String(data.length) })
    expect((await head(url, 3)).headers['upload-incomplete']).toBe('?0')
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    expect((await request(url)).headers['content-type']).toBe('video/mp4')
  }, 60_000)

  test('interop 3: a whole upload in its creation request answers 201 complete; an offset on a creation is refused', async () => {
    const refused = await request(files, { method: 'POST', headers: { ...v(3), 'Upload-Incomplete': '?0', 'Upload-Offset': 0 }, body: 'x' })
    expect(refused.status).toBe(400)
    expect(refused.informational).toEqual([])
    const data = randomData(100_000, 31)
    const res = await request(files, { method: 'POST', headers: { ...v(3), 'Upload-Incomplete': '?0' }, body: data })
    expect(res.status).toBe(201)
    expect(res.headers).toMatchObject({ 'upload-incomplete': '?0', 'upload-offset': String(data.length) })
    expect(res.informational.map((i) => i.status)).toEqual([104])
    expect(res.informational[0].headers.location).toBe(res.headers.location)
    expect((await sha256OfDownload(res.headers.location as string)).sha).toBe(sha256(data))
  })

  test('latest (8): optimistic creation with Upload-Complete: ?1; the 104 carries Location, version and limits', async () => {
    const data = randomData(6 * MiB + 1, 8)
    const res = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?1', 'Upload-Length': data.length }, body: data })
    expect(res.status).toBe(201)
    expect(res.informational).toHaveLength(1)
    const [interim] = res.informational
    expect(interim.status).toBe(104)
    expect(interim.headers['upload-draft-interop-version']).toBe('8')
    expect(interim.headers['upload-limit']).toMatch(/^min-size=0, max-age=\d+$/)
    expect(interim.headers.location).toBe(res.headers.location)
    expect(res.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) })
    const url = res.headers.location as string
    const state = await head(url, 8)
    expect(state.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length), 'upload-length': String(data.length) })
    expect(state.headers['upload-limit']).toBe('min-size=0') // a complete upload no longer expires
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  }, 60_000)

  test('latest (8): careful creation, appends, every refusal of a bad append, a chunked last part, the replay', async () => {
    const data = randomData(7 * MiB + 3, 9)
    const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' } })
    expect(created.status).toBe(201)
    expect(created.headers['upload-complete']).toBe('?0')
    expect(created.headers['upload-limit']).toMatch(/max-age=\d+/)
    const url = created.headers.location as string
    expect(created.informational[0].headers.location).toBe(url)

    const fresh = await head(url, 8)
    expect(fresh.status).toBe(204)
    expect(fresh.headers).toMatchObject({ 'upload-offset': '0', 'upload-complete': '?0', 'cache-control': 'no-store' })
    expect(fresh.headers['upload-length']).toBeUndefined() // not known yet

    const first = data.subarray(0, 6 * MiB)
    // Without application/partial-upload, Upload-Complete or Upload-Offset: refused, nothing stored.
    expect((await request(url, { method: 'PATCH', headers: { ...v(8), 'Upload-Offset': 0, 'Upload-Complete': '?0' }, body: first })).status).toBe(415)
    expect((await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 0 }, body: first })).status).toBe(400)
    expect((await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Complete': '?0' }, body: first })).status).toBe(400)
    expect((await head(url, 8)).headers['upload-offset']).toBe('0')

    const part = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 0, 'Upload-Complete': '?0' }, body: first })
    expect(part.status).toBe(204)
    expect(part.headers).toMatchObject({ 'upload-complete': '?0', 'upload-offset': String(first.length) })

    const mismatch = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 10, 'Upload-Complete': '?1' }, body: 'xx' })
    expect(mismatch.status).toBe(409)
    expect(mismatch.headers).toMatchObject({ 'upload-offset': String(first.length), 'upload-complete': '?0' })
    expect(problemOf(mismatch)).toMatchObject({ type: `${PROBLEM}mismatching-upload-offset`, 'expected-offset': first.length, 'provided-offset': 10 })

    // The last part chunked: the length is what the request ended at.
    const last = await chunkedRequest(
      url,
      'PATCH',
      { ...v(8), ...PARTIAL, 'Upload-Offset': first.length, 'Upload-Complete': '?1' },
      data.subarray(first.length),
    )
    expect(last.status).toBe(204)
    expect(last.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) })
    expect((await head(url, 8)).headers).toMatchObject({ 'upload-complete': '?1', 'upload-length': String(data.length) })
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

    // A complete upload takes no more content; an empty completing append replays the completion.
    const more = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': data.length, 'Upload-Complete': '?1' }, body: 'x' })
    expect(more.status).toBe(400)
    expect(more.headers['content-type']).toMatch(/^text\/plain/) // no completed-upload problem type in the latest draft
    const replay = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': data.length, 'Upload-Complete': '?1' } })
    expect(replay.status).toBe(204)
    expect(replay.headers['upload-complete']).toBe('?1')
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
  }, 120_000)

  test('a stale append is made to let go: HEAD sees what it stored, and that offset is accepted', async () => {
    const data = randomData(400_000, 61)
    const url = (await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' } })).headers.location as string
    // An append that stalls after 100 000 bytes, as a client whose network dropped.
    let staleStatus = 0
    const stale = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 0, 'Upload-Complete': '?1', 'Content-Length': data.length },
    })
    stale.on('error', () => {})
    stale.on('response', (res) => {
      staleStatus = res.statusCode ?? 0
      res.resume()
    })
    stale.write(data.subarray(0, 100_000))
    await sleep(300)

    const offset = await head(url, 8)
    expect(offset.status).toBe(204)
    expect(offset.headers).toMatchObject({ 'upload-offset': '100000', 'upload-complete': '?0' })
    stale.destroy()
    expect([0, 204]).toContain(staleStatus) // cut, or answered with what it stored
    const rest = await request(url, {
      method: 'PATCH',
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 100_000, 'Upload-Complete': '?1' },
      body: data.subarray(100_000),
    })
    expect(rest.status).toBe(204)
    expect(rest.headers['upload-complete']).toBe('?1')
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  }, 30_000)

  test('an empty upload: Upload-Complete: ?1 with no content and no length is complete at 0 bytes', async () => {
    const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?1' } })
    expect(created.status).toBe(201)
    expect(created.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': '0' })
    const url = created.headers.location as string
    expect((await head(url, 8)).headers).toMatchObject({ 'upload-complete': '?1', 'upload-length': '0' })
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(''), bytes: 0 })
  })

  test('latest (8): inconsistent lengths answer 400 with the problem type and store nothing', async () => {
    const creation = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?1', 'Upload-Length': 10 }, body: 'hello' })
    expect(creation.status).toBe(400)
    expect(creation.informational).toEqual([])
    expect(problemOf(creation).type).toBe(`${PROBLEM}inconsistent-upload-length`)

    const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0', 'Upload-Length': 10 }, body: 'hello' })
    const url = created.headers.location as string
    const short = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 5, 'Upload-Complete': '?1' }, body: 'abc' })
    expect(short.status).toBe(400)
    expect(problemOf(short).type).toBe(`${PROBLEM}inconsistent-upload-length`)
    const other = await request(url, {
      method: 'PATCH',
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 5, 'Upload-Complete': '?0', 'Upload-Length': 11 },
      body: 'abc',
    })
    expect(other.status).toBe(400)
    expect((await head(url, 8)).headers['upload-offset']).toBe('5')
    const too = await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 5, 'Upload-Complete': '?0' }, body: 'abcdef' })
    expect(too.status).toBe(413)
    expect((await head(url, 8)).headers['upload-offset']).toBe('5')
  })

  test('cancellation: DELETE answers 204 and the upload is gone for both protocols', async () => {
    const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: 'some bytes' })
    const url = created.headers.location as string
    const cancelled = await request(url, { method: 'DELETE', headers: v(8) })
    expect(cancelled.status).toBe(204)
    expect((await head(url, 8)).status).toBe(404)
    expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    expect((await request(url, { method: 'PATCH', headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 10, 'Upload-Complete': '?1' }, body: 'x' })).status).toBe(
      404,
    )
    expect((await request(url, { method: 'DELETE', headers: v(8) })).status).toBe(404)
    // Draft -01: no state fields on a cancellation.
    const other = (await request(files, { method: 'POST', headers: { ...v(3), 'Upload-Incomplete': '?1' }, body: 'x' })).headers.location as string
    expect((await request(other, { method: 'DELETE', headers: { ...v(3), 'Upload-Incomplete': '?1' } })).status).toBe(400)
    expect((await request(other, { method: 'DELETE', headers: v(3) })).status).toBe(204)
  })

  test('one kind of upload: tus reads and finishes what the IETF protocol began, and the other way round', async () => {
    const data = randomData(300_000, 41)
    const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: data.subarray(0, 100_000) })
    const url = created.headers.location as string
    const tusHead = await request(url, { method: 'HEAD', headers: TUS })
    expect(tusHead.status).toBe(200)
    expect(tusHead.headers).toMatchObject({ 'upload-offset': '100000', 'upload-defer-length': '1' })
    const tusPart = await tusPatch(url, 100_000, data.subarray(100_000, 200_000))
    expect(tusPart.headers['upload-offset']).toBe('200000')
    const last = await request(url, {
      method: 'PATCH',
      headers: { ...v(6), ...PARTIAL, 'Upload-Offset': 200_000, 'Upload-Complete': '?1' },
      body: data.subarray(200_000),
    })
    expect(last.headers['upload-complete']).toBe('?1')
    const finished = await request(url, { method: 'HEAD', headers: TUS })
    expect(finished.headers).toMatchObject({ 'upload-offset': String(data.length), 'upload-length': String(data.length) })
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
  })

  test('Repr-Digest is checked against the whole upload read back from this store; a mismatch removes it', async () => {
    const data = randomData(300_000, 42)
    const whole = (algorithm: string, bytes: Buffer) => createHash(algorithm).update(bytes).digest('base64')
    const start = async () => {
      const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: data.subarray(0, 100_000) })
      return created.headers.location as string
    }
    const complete = (url: string, digest: string) =>
      request(url, {
        method: 'PATCH',
        headers: {
          ...v(8),
          ...PARTIAL,
          'Upload-Offset': 100_000,
          'Upload-Complete': '?1',
          'Repr-Digest': `sha-256=:${digest}:`,
          'Want-Repr-Digest': 'sha-512=1',
        },
        body: data.subarray(100_000),
      })
    const good = await start()
    const verified = await complete(good, whole('sha256', data))
    expect([verified.status, verified.headers['repr-digest']]).toEqual([204, `sha-256=:${whole('sha256', data)}:, sha-512=:${whole('sha512', data)}:`])
    expect((await sha256OfDownload(good)).sha).toBe(sha256(data))

    const bad = await start()
    const refused = await complete(bad, whole('sha256', data.subarray(1)))
    expect([refused.status, refused.headers['upload-complete']]).toEqual([400, '?0'])
    expect((await head(bad, 8)).status).toBe(404)
  })

  test('interop 5 and 6: the vocabulary of their drafts', async () => {
    // 5: appends need no media type, no Upload-Limit, a mismatch is plain text.
    const five = await request(files, { method: 'POST', headers: { ...v(5), 'Upload-Complete': '?0', 'Upload-Length': 6 }, body: 'abc' })
    expect(five.status).toBe(201)
    expect(five.headers['upload-limit']).toBeUndefined()
    const fiveUrl = five.headers.location as string
    const fiveMismatch = await request(fiveUrl, { method: 'PATCH', headers: { ...v(5), 'Upload-Offset': 0, 'Upload-Complete': '?1' }, body: 'def' })
    expect(fiveMismatch.status).toBe(409)
    expect(fiveMismatch.headers['content-type']).toMatch(/^text\/plain/)
    const fiveLast = await request(fiveUrl, { method: 'PATCH', headers: { ...v(5), 'Upload-Offset': 3, 'Upload-Complete': '?1' }, body: 'def' })
    expect(fiveLast.status).toBe(204)
    expect(fiveLast.headers['upload-complete']).toBe('?1')

    // 6: application/partial-upload required, `expires` limit, the completed-upload problem type.
    const six = await request(files, { method: 'POST', headers: { ...v(6), 'Upload-Complete': '?0', 'Upload-Length': 6 }, body: 'abc' })
    expect(six.headers['upload-limit']).toMatch(/^min-size=0, expires=\d+$/)
    const sixUrl = six.headers.location as string
    expect((await request(sixUrl, { method: 'PATCH', headers: { ...v(6), 'Upload-Offset': 3, 'Upload-Complete': '?1' }, body: 'def' })).status).toBe(415)
    expect(
      (await request(sixUrl, { method: 'PATCH', headers: { ...v(6), ...PARTIAL, 'Upload-Offset': 3, 'Upload-Complete': '?1' }, body: 'def' })).status,
    ).toBe(204)
    const after = await request(sixUrl, { method: 'PATCH', headers: { ...v(6), ...PARTIAL, 'Upload-Offset': 6, 'Upload-Complete': '?1' }, body: 'g' })
    expect(after.status).toBe(400)
    expect(after.headers['upload-complete']).toBe('?0')
    expect(problemOf(after).type).toBe(`${PROBLEM}completed-upload`)
    expect((await request(sixUrl)).body.toString()).toBe('abcdef')
  })

  test('an interop version tusgate does not speak answers 400 naming those it does, with no 104', async () => {
    for (const version of ['7', '2', 'x']) {
      const res = await request(files, { method: 'POST', headers: { 'Upload-Draft-Interop-Version': version, 'Upload-Complete': '?1' }, body: 'hello' })
      expect(res.status).toBe(400)
      expect(res.informational).toEqual([])
      expect(res.body.toString()).toMatch(/supported: 3, 5, 6, 8/)
    }
  })
})

describe('IETF resumable uploads: limits, ownership, HTTP details', () => {
  const server = useServer({ CORS_ORIGINS: 'https://app.example.com' })

  test('Expect: 100-continue gets its 100 Continue, then the 104, then the final response', async () => {
    const events: string[] = []
    const data = randomData(50_000, 51)
    const final = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(`${server.url}/files`, {
        method: 'POST',
        agent: false,
        headers: { ...v(8), 'Upload-Complete': '?1', 'Content-Length': data.length, Expect: '100-continue' },
      })
      req.on('continue', () => {
        events.push('continue')
        req.end(data)
      })
      req.on('information', (info) => info.statusCode !== 100 && events.push(`${info.statusCode} ${info.headers.location}`))
      req.on('response', (res) => {
        res.resume()
        res.on('end', () => resolve(res))
      })
      req.on('error', reject)
      req.flushHeaders()
    })
    expect(final.statusCode).toBe(201)
    expect(events).toEqual(['continue', `104 ${final.headers.location}`])
    expect((await sha256OfDownload(final.headers.location as string)).sha).toBe(sha256(data))
  })

  test('no 104 to an HTTP/1.0 client (RFC 9110 forbids 1xx to it); the upload is made all the same', async () => {
    const { port } = new URL(server.url)
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(
          `POST /files HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\nUpload-Draft-Interop-Version: 8\r\nUpload-Complete: ?1\r\nContent-Length: 5\r\n\r\nhello`,
        )
      })
      let text = ''
      socket.on('data', (chunk) => (text += chunk.toString('latin1')))
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
      socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')))
    })
    expect(raw).toMatch(/^HTTP\/1\.1 201 Created\r\n/)
    expect(raw).not.toContain(' 104 ')
    const location = /\r\nLocation: (\S+)\r\n/i.exec(raw)?.[1] as string
    expect((await request(location)).body.toString()).toBe('hello')
  })

  test('browsers may send and read the draft fields (CORS)', async () => {
    const origin = 'https://app.example.com'
    const preflight = await request(`${server.url}/files`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'upload-draft-interop-version, upload-complete' },
    })
    expect(preflight.status).toBe(200)
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase()
    for (const field of ['upload-draft-interop-version', 'upload-complete', 'upload-incomplete', 'upload-offset', 'upload-length'])
      expect(allowed).toContain(field)
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), Origin: origin, 'Upload-Complete': '?0' } })
    expect(created.headers['access-control-allow-origin']).toBe(origin)
    const exposed = String(created.headers['access-control-expose-headers'])
    for (const field of ['Location', 'Upload-Offset', 'Upload-Complete', 'Upload-Limit', 'Upload-Draft-Interop-Version']) expect(exposed).toContain(field)
  })

  test('MAX_SIZE is announced as max-size (OPTIONS, creation, 413s) and enforced with 413', async () => {
    const server = await startServer({ MAX_SIZE: '1000' })
    try {
      const files = `${server.url}/files`
      const options = await request(files, { method: 'OPTIONS', headers: v(8) })
      expect(options.status).toBe(204)
      expect(options.headers['upload-limit']).toBe('min-size=0, max-size=1000')
      const big = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0', 'Upload-Length': 1001 } })
      expect(big.status).toBe(413)
      expect(big.headers['upload-limit']).toBe('min-size=0, max-size=1000')
      expect(big.informational).toEqual([])
      const created = await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: randomData(600) })
      expect(created.headers['upload-limit']).toMatch(/^min-size=0, max-size=1000, max-age=\d+$/)
      const url = created.headers.location as string
      const over = await request(url, {
        method: 'PATCH',
        headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 600, 'Upload-Complete': '?1' },
        body: randomData(401),
      })
      expect(over.status).toBe(413)
      expect(over.headers['upload-limit']).toBe('min-size=0, max-size=1000')
      expect((await request(url, { method: 'HEAD', headers: v(8) })).headers['upload-offset']).toBe('600')
    } finally {
      await server.stop()
    }
  })

  test('the upload limits apply to IETF creations as to tus ones: types, magic bytes, metadata, creation rate', async () => {
    const dir = tempDir('tusgate-ietf-limits-')
    const server = await startServer({
      FILE_DIR: dir.dir,
      ALLOWED_TYPES: 'image/png',
      MAGIC_BYTES_CHECK: 'true',
      MAX_METADATA_KEYS: '2',
      CREATE_RATE_LIMIT_IP: '3/1m',
    })
    try {
      const files = `${server.url}/files`
      const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomData(64)])
      const create = (headers: Record<string, string>, body: Buffer) =>
        request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?1', ...headers }, body })
      const pdf = await create({ 'Content-Type': 'application/pdf' }, randomData(64))
      expect([pdf.status, pdf.body.toString()]).toEqual([415, expect.stringContaining('image/png')])
      const disguised = await create({ 'Content-Type': 'image/png' }, Buffer.concat([Buffer.from('PK\x03\x04'), randomData(64)]))
      expect(disguised.status).toBe(415)
      const keys = await create({ 'Content-Type': 'image/png', 'Upload-Metadata': 'a YQ==,b Yg==' }, png)
      expect([keys.status, keys.body.toString()]).toEqual([400, expect.stringMatching(/keys/i)])
      // Refused before anything was stored: no upload files, no 104.
      expect(readdirSync(dir.dir).filter((name) => !name.startsWith('.'))).toEqual([])
      expect(disguised.informational).toEqual([])

      const good = await create({ 'Content-Type': 'image/png' }, png)
      expect(good.status).toBe(201)
      expect((await sha256OfDownload(good.headers.location as string)).sha).toBe(sha256(png))
      // Three creations counted (the metadata refusal comes before the limits, as in tus): the fourth is over the rate.
      const limited = await create({ 'Content-Type': 'image/png' }, png)
      expect(limited.status).toBe(429)
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    } finally {
      await server.stop()
      dir.remove()
    }
  })

  test('with AUTH_MODE=jwt an IETF upload belongs to its creator; to anyone else it does not exist', async () => {
    const server = await startServer({ AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET })
    const mint = hsTokens()
    const token = (sub: string) => mint({ sub })
    try {
      const files = `${server.url}/files`
      const alice = { Authorization: `Bearer ${await token('alice')}` }
      const mallory = { Authorization: `Bearer ${await token('mallory')}` }
      expect((await request(files, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' } })).status).toBe(401)
      const created = await request(files, { method: 'POST', headers: { ...v(8), ...alice, 'Upload-Complete': '?0' }, body: 'abc' })
      expect(created.status).toBe(201)
      const url = created.headers.location as string

      expect((await request(url, { method: 'HEAD', headers: { ...v(8), ...mallory } })).status).toBe(404)
      const foreign = await request(url, {
        method: 'PATCH',
        headers: { ...v(8), ...mallory, ...PARTIAL, 'Upload-Offset': 3, 'Upload-Complete': '?1' },
        body: 'def',
      })
      expect(foreign.status).toBe(404)
      expect((await request(url, { method: 'DELETE', headers: { ...v(8), ...mallory } })).status).toBe(404)

      const own = await request(url, { method: 'PATCH', headers: { ...v(8), ...alice, ...PARTIAL, 'Upload-Offset': 3, 'Upload-Complete': '?1' }, body: 'def' })
      expect(own.status).toBe(204)
      const state = await request(url, { method: 'HEAD', headers: { ...v(8), ...alice } })
      expect(state.headers).toMatchObject({ 'upload-offset': '6', 'upload-complete': '?1' })
      expect((await request(url, { headers: alice })).body.toString()).toBe('abcdef')
    } finally {
      await server.stop()
    }
  })
})

/** A request whose body goes `piece` bytes every `delayMs`; resolves with the final response and the interim ones before it. */
function pacedRequest(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body: Buffer,
  { piece, delayMs }: { piece: number; delayMs: number },
) {
  return new Promise<RawResponse>((resolve, reject) => {
    const informational: RawResponse['informational'] = []
    const req = http.request(url, { method, agent: false, headers: { ...headers, 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), informational }))
    })
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }))
    req.on('error', reject)
    void (async () => {
      for (let at = 0; at < body.length; at += piece) {
        req.write(body.subarray(at, at + piece))
        await sleep(delayMs)
      }
      req.end()
    })()
  })
}

describe('IETF offset retrieval by GET (the draft after -11, interop 8)', () => {
  const server = useServer()

  test('GET answers as HEAD, without content; older versions refuse it with 405 and Allow', async () => {
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0', 'Upload-Length': 10 }, body: 'abcd' })
    const url = created.headers.location as string
    const got = await request(url, { headers: v(8) })
    expect(got.status).toBe(204)
    expect(got.body.length).toBe(0)
    expect(got.headers['upload-offset']).toBe('4')
    expect(got.headers['upload-complete']).toBe('?0')
    expect(got.headers['upload-length']).toBe('10')
    expect(got.headers['upload-limit']).toMatch(/max-age=\d+/)
    expect(got.headers['cache-control']).toBe('no-store')
    const older = await request(url, { headers: v(6) })
    expect(older.status).toBe(405)
    expect(older.headers.allow).not.toContain('GET')
    expect((await request(url, { method: 'OPTIONS', headers: v(8) })).headers.allow).toContain('GET')
  })
})

describe('IETF progress: interim 104s with Upload-Offset while content streams', () => {
  const server = useServer()
  const data = randomData(3_000, 61)
  const paced = { piece: 300, delayMs: 300 }

  /** The offsets of progress 104s: more than none, rising, within the content, never with a Location. */
  const progressOf = (res: RawResponse, from: number) => {
    const progress = res.informational.filter((info) => info.headers['upload-offset'] !== undefined)
    expect(progress.every((info) => info.status === 104 && info.headers.location === undefined)).toBe(true)
    const offsets = progress.map((info) => Number(info.headers['upload-offset']))
    expect(offsets.length).toBeGreaterThan(0)
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b))
    expect(new Set(offsets).size).toBe(offsets.length)
    expect(offsets.every((offset) => offset > from && offset <= from + data.length)).toBe(true)
  }

  test('an append reports the offset reached about every second, then answers as usual', async () => {
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: 'ab' })
    const location = new URL(created.headers.location as string, server.url).toString()
    const headers = { ...v(8), ...PARTIAL, 'Upload-Offset': 2, 'Upload-Complete': '?1' }
    const res = await pacedRequest(location, 'PATCH', headers, data, paced)
    expect([res.status, res.headers['upload-offset']]).toEqual([204, String(2 + data.length)])
    progressOf(res, 2)
    expect((await sha256OfDownload(location)).sha).toBe(sha256(Buffer.concat([Buffer.from('ab'), data])))
  }, 15_000)

  test('a creation with content: its 104 with the Location, then progress 104s', async () => {
    const res = await pacedRequest(`${server.url}/files`, 'POST', { ...v(6), 'Upload-Complete': '?1' }, data, paced)
    expect(res.status).toBe(201)
    expect(res.informational[0]).toMatchObject({ status: 104, headers: { location: res.headers.location } })
    progressOf({ ...res, informational: res.informational.slice(1) }, 0)
  }, 15_000)

  test('none with INTERIM_RESPONSES=false, nor for interop version 3', async () => {
    const quiet = await startServer({ INTERIM_RESPONSES: 'false' })
    try {
      const res = await pacedRequest(`${quiet.url}/files`, 'POST', { ...v(8), 'Upload-Complete': '?1' }, data, paced)
      expect([res.status, res.informational]).toEqual([201, []])
    } finally {
      await quiet.stop()
    }
    const v3 = await pacedRequest(`${server.url}/files`, 'POST', { ...v(3), 'Upload-Incomplete': '?0' }, data, paced)
    expect(v3.status).toBe(201)
    expect(v3.informational.map((info) => info.headers['upload-offset'])).toEqual([undefined])
  }, 20_000)
})

describe('IETF Repr-Digest (RFC 9530) on the request that completes an upload', () => {
  const server = useServer()
  const data = randomData(40_000, 71)
  const digest = (algorithm: 'sha256' | 'sha512', bytes: Buffer) => createHash(algorithm).update(bytes).digest('base64')
  const fields = (header: string | string[] | undefined) =>
    Object.fromEntries(
      String(header)
        .split(', ')
        .map((member) => /^([a-z0-9-]+)=:(.*):$/.exec(member)?.slice(1) ?? [member, '']),
    )

  test('a matching digest on a creation with all content; Want-Repr-Digest is answered', async () => {
    const res = await request(`${server.url}/files`, {
      method: 'POST',
      headers: {
        ...v(8),
        'Upload-Complete': '?1',
        'Repr-Digest': `sha-256=:${digest('sha256', data)}:, md5=:AAAA:`,
        'Want-Repr-Digest': 'sha-512=3, sha-256=1',
      },
      body: data,
    })
    expect(res.status).toBe(201)
    expect(fields(res.headers['repr-digest'])).toEqual({ 'sha-256': digest('sha256', data), 'sha-512': digest('sha512', data) })
  })

  test('an append that completes is checked against the whole upload, not its own content', async () => {
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: data.subarray(0, 10_000) })
    const location = new URL(created.headers.location as string, server.url).toString()
    const middle = await request(location, {
      method: 'PATCH',
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 10_000, 'Upload-Complete': '?0', 'Want-Repr-Digest': 'sha-256=1' },
      body: data.subarray(10_000, 20_000),
    })
    expect([middle.status, middle.headers['repr-digest']]).toEqual([204, undefined])
    const last = await request(location, {
      method: 'PATCH',
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 20_000, 'Upload-Complete': '?1', 'Repr-Digest': `sha-512=:${digest('sha512', data)}:` },
      body: data.subarray(20_000),
    })
    expect([last.status, last.headers['upload-complete']]).toEqual([204, '?1'])
    expect(fields(last.headers['repr-digest'])).toEqual({ 'sha-512': digest('sha512', data) })
    expect((await sha256OfDownload(location)).sha).toBe(sha256(data))
  })

  test('a malformed Repr-Digest or Want-Repr-Digest is refused before anything is stored', async () => {
    const malformed: Record<string, string>[] = [{ 'Repr-Digest': 'sha-256=abc' }, { 'Repr-Digest': 'sha-256=:AA==:, ,' }, { 'Want-Repr-Digest': 'sha-256=11' }]
    for (const header of malformed) {
      const refused = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?1', ...header }, body: 'abc' })
      expect([JSON.stringify(header), refused.status]).toEqual([JSON.stringify(header), 400])
      expect(refused.informational).toEqual([])
    }
  })
})

describe('IETF Repr-Digest mismatch: the upload fails', () => {
  let receiver: HookReceiver
  let server: InProcessServer
  beforeAll(async () => {
    receiver = await startHookReceiver()
    server = await startServer({ HOOKS_URL: receiver.url, HOOKS_ENABLED: 'pre-finish,post-finish,post-terminate', HOOKS_BACKOFF: '50ms' })
  })
  afterAll(async () => {
    await server.stop()
    await receiver.stop()
  })

  test('a 400 in the problem shape, Upload-Complete: ?0, no pre-finish or post-finish, and the upload removed', async () => {
    const data = randomData(20_000, 72)
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...v(8), 'Upload-Complete': '?0' }, body: data.subarray(0, 5_000) })
    const location = new URL(created.headers.location as string, server.url).toString()
    const id = location.split('/').pop() as string
    const wrong = createHash('sha256').update(data.subarray(1)).digest('base64')
    const last = await request(location, {
      method: 'PATCH',
      headers: { ...v(8), ...PARTIAL, 'Upload-Offset': 5_000, 'Upload-Complete': '?1', 'Repr-Digest': `sha-256=:${wrong}:` },
      body: data.subarray(5_000),
    })
    expect([last.status, last.headers['upload-complete']]).toEqual([400, '?0'])
    expect(problemOf(last)).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: "Repr-Digest does not match the upload's content: the upload failed and is removed",
    })
    expect((await request(location, { method: 'HEAD', headers: v(8) })).status).toBe(404)
    await receiver.waitFor(() => receiver.of('post-terminate', id).length === 1, 5_000, 'post-terminate of the failed upload')
    expect([receiver.of('pre-finish', id), receiver.of('post-finish', id)]).toEqual([[], []])
  })
})
