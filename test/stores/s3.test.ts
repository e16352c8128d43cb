import net from 'node:net'
import { PassThrough, Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import * as S3Commands from '@aws-sdk/client-s3'
import { Upload } from '@tus/utils'
import * as tus from 'tus-js-client'
import { loadConfig } from '../../server/config.js'
import { Metrics } from '../../server/metrics.js'
import { composeStorage } from '../../server/storage/compose.js'
import { consecutiveParts, incompleteCounts, sizeOf } from '../../stores/s3/partWriter.js'
import { newUploadId } from '../../stores/uploadId.js'
import { tusgateS3Env, useCeph } from '../helpers/ceph.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from '../helpers/http.js'
import { capturedLogger, type InProcessServer, startServer } from '../helpers/servers.js'

const MiB = 1024 * 1024

const ceph = useCeph()

const s3Env = (extra: Record<string, string> = {}) => tusgateS3Env(ceph(), extra)

/** HEAD's Upload-Offset (the answer must be 200). */
async function offsetOf(url: string): Promise<number> {
  const head = await request(url, { method: 'HEAD', headers: TUS })
  expect(head.status).toBe(200)
  return Number(head.headers['upload-offset'])
}

function upload(data: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, { retryDelays: null, ...options, onError: reject, onSuccess: () => resolve(u.url as string) })
    u.start()
  })
}

describe('tusgate on S3 (Ceph radosgw)', () => {
  let server: InProcessServer
  let bucket: string
  beforeAll(async () => {
    const env = await s3Env({ S3_KEY_PREFIX: 'uploads/' })
    bucket = env.S3_BUCKET
    server = await startServer(env)
  })
  afterAll(() => server?.stop())

  test('readiness checks the bucket', async () => {
    expect((await request(`${server.url}/readyz`)).status).toBe(200)
    const missing = await startServer(await s3Env({ S3_BUCKET: 'no-such-bucket' }))
    try {
      const res = await request(`${missing.url}/readyz`)
      expect(res.status).toBe(503)
      expect(JSON.parse(res.body.toString()).reason).toMatch(/no-such-bucket/)
    } finally {
      await missing.stop()
    }
  })

  test('a 64 MiB upload in 5 MiB parts with tus-js-client; SHA-256 by GET; objects under the key prefix', async () => {
    const data = randomData(64 * MiB, 11)
    const url = await upload(data, { endpoint: `${server.url}/files`, chunkSize: 16 * MiB, metadata: { filename: 'big.bin' } })
    const download = await sha256OfDownload(url)
    expect(download).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    const id = url.split('/').pop() as string
    const listed = await ceph()
      .client()
      .send(new (await import('@aws-sdk/client-s3')).ListObjectsV2Command({ Bucket: bucket }))
    const keys = (listed.Contents ?? []).map((o) => o.Key)
    expect(keys).toContain(`uploads/${id}`)
    expect(keys).toContain(`uploads/${id}.info`)
    expect(keys.every((k) => k?.startsWith('uploads/'))).toBe(true)
    const part = await request(url, { headers: { Range: `bytes=${10 * MiB}-${10 * MiB + 99}` } })
    expect(part.status).toBe(206)
    expect(part.body.equals(data.subarray(10 * MiB, 10 * MiB + 100))).toBe(true)
  }, 120_000)

  test('resume after an abort: the offset is kept and the upload completes', async () => {
    const data = randomData(12 * MiB, 12)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    expect((await patch(url, 0, data.subarray(0, 7 * MiB))).headers['upload-offset']).toBe(String(7 * MiB))
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-offset']).toBe(String(7 * MiB))
    const resumed = await upload(data, { endpoint: `${server.url}/files`, uploadUrl: url, chunkSize: 4 * MiB })
    expect(resumed).toBe(url)
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
  }, 60_000)

  test('a PATCH cut in the middle keeps what arrived (the incomplete-part path) and resumes', async () => {
    const data = randomData(9 * MiB, 13)
    const url = new URL(await createUpload(server.url, { 'Upload-Length': data.length }))
    const socket = net.connect(Number(url.port), '127.0.0.1')
    socket.on('error', () => {})
    socket.write(
      `PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${data.length}\r\n\r\n`,
    )
    // 6 MiB: one whole 5 MiB part and 1 MiB that can only be kept as an incomplete part.
    await new Promise<void>((resolve) => socket.write(data.subarray(0, 6 * MiB), () => resolve()))
    await sleep(500)
    socket.destroy()
    let offset = 0
    for (let i = 0; i < 50 && offset !== 6 * MiB; i++) {
      await sleep(200)
      offset = Number((await request(url.toString(), { method: 'HEAD', headers: TUS })).headers['upload-offset'])
    }
    expect(offset).toBe(6 * MiB)
    expect((await patch(url.toString(), offset, data.subarray(offset))).status).toBe(204)
    expect((await sha256OfDownload(url.toString())).sha).toBe(sha256(data))
  }, 60_000)

  test('a second PATCH cut by the client before a whole part: the acknowledged incomplete part is never lost', async () => {
    const data = randomData(9 * MiB, 16)
    const url = new URL(await createUpload(server.url, { 'Upload-Length': data.length }))
    expect((await patch(url.toString(), 0, data.subarray(0, MiB))).status).toBe(204)
    const socket = net.connect(Number(url.port), '127.0.0.1')
    socket.on('error', () => {})
    socket.write(
      `PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nUpload-Offset: ${MiB}\r\nContent-Length: ${data.length - MiB}\r\n\r\n`,
    )
    await new Promise<void>((resolve) => socket.write(data.subarray(MiB, 3 * MiB), () => resolve()))
    socket.destroy()
    // What arrived is stored (the body ends where the client went); HEAD never says less than was acknowledged.
    const offsets: number[] = []
    for (let i = 0; i < 100 && (offsets.length === 0 || server.app.core.writesInProgress > 0); i++) {
      const head = await request(url.toString(), { method: 'HEAD', headers: TUS })
      if (head.status === 200) offsets.push(Number(head.headers['upload-offset']))
      await sleep(100)
    }
    expect(server.app.core.writesInProgress).toBe(0)
    const kept = await offsetOf(url.toString())
    expect(Math.min(...offsets, kept)).toBeGreaterThanOrEqual(MiB)
    expect(kept).toBeLessThanOrEqual(3 * MiB)
    expect((await patch(url.toString(), kept, data.subarray(kept))).status).toBe(204)
    expect(await sha256OfDownload(url.toString())).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  }, 60_000)

  test('deferred length, declared with the last PATCH', async () => {
    const data = randomData(6 * MiB, 14)
    const url = await createUpload(server.url, { 'Upload-Defer-Length': 1 })
    expect((await patch(url, 0, data.subarray(0, 5 * MiB))).status).toBe(204)
    const last = await patch(url, 5 * MiB, data.subarray(5 * MiB), { 'Upload-Length': data.length })
    expect(last.status).toBe(204)
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
  }, 60_000)

  test('termination of a finished upload removes its object', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 3 })
    expect((await patch(url, 0, 'abc')).status).toBe(204)
    expect((await request(url, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect((await request(url)).status).toBe(404)
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3')
    const listed = await ceph()
      .client()
      .send(new ListObjectsV2Command({ Bucket: bucket }))
    const id = url.split('/').pop() as string
    expect((listed.Contents ?? []).filter((o) => o.Key?.includes(id))).toEqual([])
  })

  test('termination removes the upload and every object of it, its incomplete part too', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 10 * MiB })
    await patch(url, 0, randomData(MiB, 15))
    expect((await request(url, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3')
    const listed = await ceph()
      .client()
      .send(new ListObjectsV2Command({ Bucket: bucket }))
    const id = url.split('/').pop() as string
    expect((listed.Contents ?? []).filter((o) => o.Key?.includes(id)).map((o) => o.Key)).toEqual([])
  })
})

describe('what the offset counts', () => {
  test('the parts from 1 without a gap, in order; a part past a gap holds no offset', () => {
    const parts = [5, 3, 1, 2].map((PartNumber) => ({ PartNumber, Size: PartNumber * 10 }))
    expect(consecutiveParts(parts).map((p) => p.PartNumber)).toEqual([1, 2, 3])
    expect(sizeOf(consecutiveParts(parts))).toBe(60)
    expect(consecutiveParts([{ PartNumber: 2, Size: 1 }])).toEqual([])
  })
  test('the incomplete part only where the parts end (or, written before that was recorded, always)', () => {
    expect(incompleteCounts(5 * MiB, String(5 * MiB))).toBe(true)
    expect(incompleteCounts(5 * MiB, '0')).toBe(false)
    expect(incompleteCounts(5 * MiB, String(10 * MiB))).toBe(false)
    expect(incompleteCounts(0, undefined)).toBe(true)
  })
})

describe('acknowledged bytes of the incomplete part survive a write that fails (Ceph radosgw)', () => {
  const { HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand } = S3Commands
  let storage: Awaited<ReturnType<typeof composeStorage>>
  let Bucket: string
  beforeAll(async () => {
    const env = await s3Env({ S3_KEY_PREFIX: 'cut/' })
    Bucket = env.S3_BUCKET
    storage = await composeStorage(loadConfig(env), { metrics: new Metrics(), logger: capturedLogger().logger })
  })
  afterAll(() => storage?.close())

  /** An upload of `data` with its first MiB written: 1 MiB acknowledged, held as the incomplete part. */
  async function begun(data: Buffer): Promise<string> {
    const id = newUploadId()
    await storage.datastore.create(new Upload({ id, size: data.length, offset: 0 }))
    expect(await storage.datastore.write(Readable.from([data.subarray(0, MiB)]), id, 0)).toBe(MiB)
    return id
  }

  /** A body the test cuts: what is written to it is read by the store, then it fails as a broken connection does. */
  function cutBody() {
    const body = new PassThrough()
    return {
      body,
      send: async (bytes: Buffer, consumed: () => Promise<boolean>) => {
        body.write(bytes)
        for (let i = 0; i < 300 && !(await consumed()); i++) await sleep(100)
        expect(await consumed()).toBe(true)
        body.destroy(new Error('connection reset'))
      },
    }
  }

  async function parts(id: string) {
    const { Uploads } = await ceph()
      .client()
      .send(new ListMultipartUploadsCommand({ Bucket, Prefix: `cut/${id}` }))
    const UploadId = Uploads?.[0]?.UploadId
    return (
      (
        await ceph()
          .client()
          .send(new ListPartsCommand({ Bucket, Key: `cut/${id}`, UploadId }))
      ).Parts ?? []
    )
  }

  async function resumes(id: string, data: Buffer): Promise<void> {
    const { offset } = await storage.datastore.getUpload(id)
    expect(await storage.datastore.write(Readable.from([data.subarray(offset)]), id, offset)).toBe(data.length)
    expect(sha256(await buffer(await storage.backend.download(id)))).toBe(sha256(data))
  }

  test('cut before a whole part is stored: the incomplete part stays, the offset stays at what was acknowledged', async () => {
    const data = randomData(12 * MiB, 31)
    const id = await begun(data)
    const cut = cutBody()
    const writing = storage.datastore.write(cut.body, id, MiB)
    await cut.send(data.subarray(MiB, 3 * MiB), async () => cut.body.readableLength === 0)
    await expect(writing).rejects.toThrow()
    expect(await parts(id)).toEqual([])
    expect((await storage.datastore.getUpload(id)).offset).toBe(MiB)
    await resumes(id, data)
  }, 60_000)

  test('cut after a part holding the incomplete part was stored: that copy is stale and not counted twice', async () => {
    const data = randomData(12 * MiB, 32)
    const id = await begun(data)
    const cut = cutBody()
    const writing = storage.datastore.write(cut.body, id, MiB)
    // 1 MiB + 5 MiB: part 1 (5 MiB, the incomplete part's bytes first), and 1 MiB that the cut drops.
    await cut.send(data.subarray(MiB, 6 * MiB), async () => (await parts(id)).length === 1)
    await expect(writing).rejects.toThrow()
    const stale = await ceph()
      .client()
      .send(new HeadObjectCommand({ Bucket, Key: `cut/${id}.part` }))
    expect(stale.ContentLength).toBe(MiB)
    expect((await storage.datastore.getUpload(id)).offset).toBe(5 * MiB)
    await resumes(id, data)
  }, 60_000)
})

describe('expiry on S3 (Ceph radosgw)', () => {
  test('an expired upload answers 410, the sweep aborts it, finished uploads stay', async () => {
    const server = await startServer(await s3Env({ UPLOAD_EXPIRES_AFTER: '2s', EXPIRY_SWEEP_INTERVAL: '1h' }))
    try {
      const unfinished = await createUpload(server.url, { 'Upload-Length': 10 })
      await patch(unfinished, 0, 'abc')
      const finished = await createUpload(server.url, { 'Upload-Length': 3 })
      await patch(finished, 0, 'xyz')
      await sleep(2300)
      expect((await request(unfinished, { method: 'HEAD', headers: TUS })).status).toBe(410)
      const id = unfinished.split('/').pop()
      expect(await server.app.sweeper.sweep()).toEqual([id])
      expect((await request(unfinished, { method: 'HEAD', headers: TUS })).status).toBe(404)
      expect((await request(finished)).body.toString()).toBe('xyz')
    } finally {
      await server.stop()
    }
  }, 60_000)
})

describe('the sweep of leftovers on S3 (Ceph radosgw)', () => {
  test('multipart uploads and incomplete parts without an info object are removed and counted; uploads stay whole', async () => {
    const { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand } = await import(
      '@aws-sdk/client-s3'
    )
    const env = await s3Env({ S3_KEY_PREFIX: 'swept/', ORPHAN_GRACE_PERIOD: '0', UPLOAD_EXPIRES_AFTER: '0' })
    const metrics = new Metrics()
    const storage = await composeStorage(loadConfig(env), { metrics, logger: capturedLogger().logger })
    const client = ceph().client()
    const Bucket = env.S3_BUCKET
    try {
      // An upload in progress, with an incomplete part: it must survive the sweep.
      const data = randomData(2 * MiB, 21)
      const live = newUploadId()
      await storage.datastore.create(new Upload({ id: live, size: data.length, offset: 0 }))
      await storage.datastore.write(Readable.from([data.subarray(0, MiB)]), live, 0)
      // What a creation cut between its two requests, or a termination cut short, leaves.
      const [begun, parted] = [newUploadId(), newUploadId()]
      await client.send(new CreateMultipartUploadCommand({ Bucket, Key: `swept/${begun}` }))
      await client.send(new PutObjectCommand({ Bucket, Key: `swept/${parted}.part`, Body: 'tail' }))
      // Not ours: a key that is no upload id, and an object outside the prefix.
      const foreign = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'swept/not-an-upload.bin' }))
      await client.send(new PutObjectCommand({ Bucket, Key: `elsewhere/${parted}.part`, Body: 'x' }))

      await storage.sweeper.sweep()
      const uploads = (await client.send(new ListMultipartUploadsCommand({ Bucket }))).Uploads ?? []
      expect(uploads.map((u) => u.Key).sort()).toEqual(['swept/not-an-upload.bin', `swept/${live}`].sort())
      const keys = ((await client.send(new ListObjectsV2Command({ Bucket }))).Contents ?? []).map((o) => o.Key)
      expect(keys).not.toContain(`swept/${parted}.part`)
      expect(keys).toContain(`elsewhere/${parted}.part`)
      expect((await metrics.orphansRemoved.get()).values[0].value).toBe(2)

      expect(await storage.datastore.getUpload(live)).toMatchObject({ offset: MiB, size: data.length })
      expect(await storage.datastore.write(Readable.from([data.subarray(MiB)]), live, MiB)).toBe(data.length)
      expect(sha256(await buffer(await storage.backend.download(live)))).toBe(sha256(data))
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'swept/not-an-upload.bin', UploadId: foreign.UploadId }))
    } finally {
      await storage.close()
    }
  }, 60_000)
})
