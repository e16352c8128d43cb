import { statSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Upload } from '@tus/utils'
import { CachedUploads } from '../stores/cachedUploads.js'
import { FileDatastore } from '../stores/file/FileDatastore.js'
import { newUploadId } from '../stores/uploadId.js'
import { createUpload, OFFSET_STREAM, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, tempDir, useServer } from './helpers/servers.js'

const TUS_HEADERS = ['upload-offset', 'upload-length', 'upload-defer-length', 'upload-metadata', 'upload-expires'] as const

/** What a HEAD says about an upload: its status and tus headers. */
async function head(url: string): Promise<{ status: number } & Partial<Record<(typeof TUS_HEADERS)[number], string>>> {
  const res = await request(url, { method: 'HEAD', headers: TUS })
  return { status: res.status, ...Object.fromEntries(TUS_HEADERS.map((h) => [h, res.headers[h] as string | undefined])) }
}

/** The upload as the disk has it, read by the file store without any cache. */
function onDisk(dir: string, url: string) {
  const store = new FileDatastore({ directory: dir, expiresAfterMs: 0, fsync: false })
  return store.getUpload(url.split('/').pop() as string)
}

describe('upload info cache (file store, memory locker), seen through HEAD', () => {
  const server = useServer()

  test('offset, deferred length and metadata follow every change, as the disk has them', async () => {
    const data = randomData(3000)
    const metadata = `filename ${Buffer.from('a.bin').toString('base64')}`
    const url = await createUpload(server.url, { 'Upload-Defer-Length': 1, 'Upload-Metadata': metadata })
    expect(await head(url)).toMatchObject({
      status: 200,
      'upload-offset': '0',
      'upload-defer-length': '1',
      'upload-length': undefined,
      'upload-metadata': metadata,
    })

    expect((await patch(url, 0, data.subarray(0, 1000))).status).toBe(204)
    expect(await head(url)).toMatchObject({ 'upload-offset': '1000', 'upload-defer-length': '1' })
    expect((await onDisk(server.dir, url)).offset).toBe(1000)

    // A stale offset is refused with the current one, from the same source as HEAD's.
    const stale = await patch(url, 0, 'x')
    expect(stale).toMatchObject({ status: 409 })
    expect(stale.headers['upload-offset']).toBe('1000')

    expect((await patch(url, 1000, data.subarray(1000, 2000), { 'Upload-Length': 3000 })).status).toBe(204)
    expect(await head(url)).toMatchObject({ 'upload-offset': '2000', 'upload-length': '3000', 'upload-defer-length': undefined })
    expect(await onDisk(server.dir, url)).toMatchObject({ offset: 2000, size: 3000 })

    expect((await patch(url, 2000, data.subarray(2000))).status).toBe(204)
    expect(await head(url)).toMatchObject({ 'upload-offset': '3000', 'upload-length': '3000', 'upload-metadata': metadata })
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
  })

  test('a PATCH cut off by its client leaves the offset of the bytes that reached the disk', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 5000 })
    const req = http.request(url, { method: 'PATCH', agent: false, headers: { ...OFFSET_STREAM, 'Upload-Offset': 0, 'Content-Length': 5000 } })
    req.on('error', () => {})
    req.write(Buffer.alloc(1200, 1))
    await sleep(300)
    req.destroy()
    const file = path.join(server.dir, url.split('/').pop() as string)
    // The server finishes the write of what arrived once it sees the client gone.
    for (let i = 0; i < 50 && (await head(url))['upload-offset'] !== '1200'; i++) await sleep(100)
    expect(await head(url)).toMatchObject({ status: 200, 'upload-offset': '1200' })
    expect(statSync(file).size).toBe(1200)
  })

  test('a terminated upload is gone (404), as before', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 10 })
    expect((await patch(url, 0, 'abc')).status).toBe(204)
    expect((await head(url)).status).toBe(200)
    expect((await request(url, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect((await head(url)).status).toBe(404)
    expect((await patch(url, 3, 'def')).status).toBe(404)
  })

  test('after a restart (an empty cache) HEAD reads the disk, and the upload resumes to completion', async () => {
    const temp = tempDir()
    const dir = path.join(temp.dir, 'data')
    const data = randomData(4000, 7)
    let first: InProcessServer | undefined = await startServer({ FILE_DIR: dir })
    let second: InProcessServer | undefined
    try {
      const url = await createUpload(first.url, { 'Upload-Length': 4000, 'Upload-Metadata': 'k dg==' })
      expect((await patch(url, 0, data.subarray(0, 2500))).status).toBe(204)
      const before = await head(url)
      await first.stop()
      first = undefined

      second = await startServer({ FILE_DIR: dir })
      const resumed = url.replace(new URL(url).origin, second.url)
      expect(await head(resumed)).toEqual(before)
      expect(await head(resumed)).toMatchObject({ 'upload-offset': '2500', 'upload-length': '4000', 'upload-metadata': 'k dg==' })
      expect((await patch(resumed, 2500, data.subarray(2500))).status).toBe(204)
      expect(await head(resumed)).toMatchObject({ 'upload-offset': '4000' })
      expect((await sha256OfDownload(resumed)).sha).toBe(sha256(data))
    } finally {
      await first?.stop()
      await second?.stop()
      temp.remove()
    }
  })
})

describe('upload info cache: expiry', () => {
  const server = useServer({ UPLOAD_EXPIRES_AFTER: '1s' })

  test('an unfinished upload expires (410) at its time, and once swept is gone (404); a finished one stays', async () => {
    const unfinished = await createUpload(server.url, { 'Upload-Length': 10 })
    const finished = await createUpload(server.url, { 'Upload-Length': 2 })
    expect((await patch(unfinished, 0, 'abc')).status).toBe(204)
    expect((await patch(finished, 0, 'ok')).status).toBe(204)
    const expires = Date.parse((await head(unfinished))['upload-expires'] as string)
    expect(expires).toBeGreaterThan(Date.now() - 1000)
    expect((await head(finished))['upload-expires']).toBeUndefined()

    await sleep(Math.max(0, expires - Date.now()) + 1100)
    expect((await head(unfinished)).status).toBe(410)
    expect(await server.app.sweeper.sweep()).toContain(unfinished.split('/').pop())
    expect((await head(unfinished)).status).toBe(404)
    expect(await head(finished)).toMatchObject({ status: 200, 'upload-offset': '2' })
  })
})

describe('CachedUploads over a file store', () => {
  const temp = tempDir()
  afterAll(() => temp.remove())

  test('with a budget smaller than the uploads, evicted ones are read back from the disk', async () => {
    const files = new FileDatastore({ directory: temp.dir, expiresAfterMs: 0, fsync: false })
    const cache = new CachedUploads(files, 2000) // room for a few entries only
    const ids: string[] = []
    for (let i = 0; i < 20; i++) {
      const id = newUploadId()
      await cache.create(new Upload({ id, size: 100, offset: 0, metadata: { n: String(i) } }))
      expect(await cache.write(Readable.from([Buffer.alloc(i + 1)]), id, 0)).toBe(i + 1)
      ids.push(id)
    }
    for (const [i, id] of ids.entries()) {
      expect(await cache.getUpload(id)).toMatchObject({ id, size: 100, offset: i + 1, metadata: { n: String(i) } })
    }
  })

  test('a read from the disk that a write overtakes never leaves its stale offset behind', async () => {
    // Reads the disk, then waits to be let go: the write completes in between.
    class HeldReads extends FileDatastore {
      private release!: () => void
      private readonly held = new Promise<void>((resolve) => (this.release = resolve))
      readDone = false
      override async getUpload(id: string) {
        const upload = await super.getUpload(id)
        this.readDone = true
        await this.held
        return upload
      }
      letGo() {
        this.release()
      }
    }
    const files = new HeldReads({ directory: temp.dir, expiresAfterMs: 0, fsync: false })
    const cache = new CachedUploads(files)
    const id = newUploadId()
    await files.create(new Upload({ id, size: 1000, offset: 0 }))
    const reading = cache.getUpload(id) // a miss: it goes to the disk
    for (let i = 0; i < 100 && !files.readDone; i++) await sleep(10)
    expect(files.readDone).toBe(true)
    expect(await cache.write(Readable.from([Buffer.alloc(500)]), id, 0)).toBe(500)
    files.letGo()
    expect((await reading).offset).toBe(0)
    expect((await cache.getUpload(id)).offset).toBe(500)
  })

  test('what a caller does with its upload leaves the cached one alone', async () => {
    const cache = new CachedUploads(new FileDatastore({ directory: temp.dir, expiresAfterMs: 0, fsync: false }))
    const id = newUploadId()
    const created = await cache.create(new Upload({ id, size: 10, offset: 0, metadata: { a: 'b' } }))
    const upload = await cache.getUpload(id)
    for (const mine of [created, upload]) {
      mine.offset = 7
      mine.size = 3
      if (mine.metadata) mine.metadata.a = 'changed'
    }
    expect(await cache.getUpload(id)).toMatchObject({ offset: 0, size: 10, metadata: { a: 'b' } })
  })
})
