import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { type CephCluster, CephStartError, startCeph } from './helpers/ceph.js'

// The Ceph harness itself, against a real mon + OSD (memstore) + radosgw: the S3 calls
// @tus/s3-store makes, then stop() leaves no daemon and no directory behind.

const sha256 = (data: Buffer | Uint8Array) => createHash('sha256').update(data).digest('hex')
const MiB = 1024 * 1024

/** The PID is gone (ended and reaped), not merely a zombie. */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

describe('Ceph (mon + OSD + radosgw)', () => {
  let ceph: CephCluster
  let s3: S3Client
  let bucket: string

  beforeAll(async () => {
    ceph = await startCeph()
    // Reported, not asserted: a slow machine is not a failure.
    console.log(`Ceph started in ${ceph.startupMs} ms at ${ceph.endpoint}`)
    s3 = ceph.client()
    bucket = await ceph.createBucket()
  }, 120_000)

  afterAll(async () => {
    s3?.destroy()
    await ceph?.stop()
  }, 30_000)

  const body = async (key: string, range?: string) => {
    const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }))
    return Buffer.from(await res.Body!.transformToByteArray())
  }

  test('PutObject then GetObject returns the same bytes, whole and by range', async () => {
    const data = randomBytes(3 * MiB + 17)
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain/object.bin', Body: data, ContentType: 'application/octet-stream' }))
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'plain/object.bin' }))
    expect(head.ContentLength).toBe(data.length)
    expect(sha256(await body('plain/object.bin'))).toBe(sha256(data))
    expect(await body('plain/object.bin', 'bytes=100-199')).toEqual(data.subarray(100, 200))
  })

  test('PutObject from a file stream works; a body of unknown length is refused with 411', async () => {
    // @tus/s3-store sends parts as fs.ReadStreams, whose length the SDK reads from the file.
    const data = randomBytes(MiB + 5)
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tusgate-ceph-test-')), 'part')
    try {
      writeFileSync(file, data)
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain/file.bin', Body: createReadStream(file) }))
      expect(sha256(await body('plain/file.bin'))).toBe(sha256(data))
    } finally {
      rmSync(path.dirname(file), { recursive: true, force: true })
    }
    // With checksums only 'WHEN_REQUIRED' the SDK sends such a body chunked, without
    // Content-Length, and radosgw (like S3) wants one.
    const stream = Readable.from([data.subarray(0, MiB), data.subarray(MiB)])
    await expect(s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain/streamed.bin', Body: stream }))).rejects.toMatchObject({
      name: 'MissingContentLength',
      $metadata: { httpStatusCode: 411 },
    })
  })

  test('a multipart upload of 3 × 5 MiB and a small last part completes whole', async () => {
    const key = 'multi/object.bin'
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1234)]
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    expect(UploadId).toBeTruthy()
    const etags: string[] = []
    for (const [i, part] of parts.entries()) {
      const res = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: part }))
      etags.push(res.ETag!)
    }
    const listed = await s3.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId }))
    expect(listed.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual(parts.map((p, i) => [i + 1, p.length]))

    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    )
    expect(done.Key).toBe(key)
    // radosgw 16.2.15 answers with an empty <ETag></ETag> here (fixed in later releases); the
    // object's own ETag is right. @tus/s3-store does not read this one.
    const whole = Buffer.concat(parts)
    expect(sha256(await body(key))).toBe(sha256(whole))
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    expect(head.ContentLength).toBe(whole.length)
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-4"$/)
    // A range across the first part boundary.
    expect(await body(key, `bytes=${5 * MiB - 10}-${5 * MiB + 9}`)).toEqual(whole.subarray(5 * MiB - 10, 5 * MiB + 10))
  })

  test('a multipart upload of one empty part makes an empty object (how @tus/s3-store ends a 0-byte upload)', async () => {
    const key = 'multi/empty.bin'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    const { ETag } = await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(0) }))
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] } }))
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    expect(head.ContentLength).toBe(0)
  })

  test('ListMultipartUploads shows an open upload; AbortMultipartUpload ends it', async () => {
    const key = 'multi/aborted.bin'
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
    await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * MiB) }))
    const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'multi/' }))
    expect(open.Uploads?.map((u) => [u.Key, u.UploadId])).toContainEqual([key, UploadId])

    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'multi/' }))
    expect(after.Uploads ?? []).not.toContainEqual(expect.objectContaining({ UploadId }))
    await expect(s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 2, Body: Buffer.from('x') }))).rejects.toMatchObject({
      name: 'NoSuchUpload',
    })
  })

  test('object tags: set on PutObject, read, and replaced', async () => {
    const key = 'tagged/object.info'
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{}', Tagging: 'Tus-Completed=false' }))
    const first = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))
    expect(first.TagSet).toEqual([{ Key: 'Tus-Completed', Value: 'false' }])

    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: bucket,
        Key: key,
        Tagging: {
          TagSet: [
            { Key: 'Tus-Completed', Value: 'true' },
            { Key: 'other', Value: 'x y' },
          ],
        },
      }),
    )
    const second = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))
    expect(second.TagSet).toEqual(
      expect.arrayContaining([
        { Key: 'Tus-Completed', Value: 'true' },
        { Key: 'other', Value: 'x y' },
      ]),
    )
    expect(second.TagSet).toHaveLength(2)
  })

  test('DeleteObjects removes several keys at once', async () => {
    const keys = ['del/a', 'del/b', 'del/c']
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))
    const res = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }))
    expect(res.Errors ?? []).toEqual([])
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'del/' }))
    expect(listed.KeyCount).toBe(0)
  })

  // Last in the file: jest runs a file's tests in order.
  test('stop() ends every daemon and removes the directory', async () => {
    const { dir, pids } = ceph
    expect(existsSync(dir)).toBe(true)
    for (const pid of Object.values(pids)) expect(gone(pid)).toBe(false)
    const started = Date.now()
    await ceph.stop()
    console.log(`Ceph stopped in ${Date.now() - started} ms`)
    for (const pid of Object.values(pids)) expect(gone(pid)).toBe(true)
    expect(existsSync(dir)).toBe(false)
    await expect(ceph.stop()).resolves.toBeUndefined() // twice is fine
  }, 30_000)
})

test('a start-up that fails names the cause, carries the log tails and leaves nothing behind', async () => {
  // radosgw refuses this frontend and exits once the mon and the OSD are up (code 22, or now
  // and then an abort from a thread still running as it exits).
  const error: unknown = await startCeph({ extraConf: '[client.rgw]\nrgw frontends = beast endpoint=not-an-ip:1' }).catch((e: unknown) => e)
  expect(error).toBeInstanceOf(CephStartError)
  const { message, dir } = error as CephStartError
  expect(message).toMatch(/^Ceph did not start \(step: waiting for radosgw to answer HTTP; .*client\.rgw exited \(code/)
  // radosgw says why in its output or, some runs, only in its log.
  expect(message).toMatch(/----- client\.rgw\.(out|log) \(last \d+ lines\) -----\n\S/)
  expect(message).toMatch(/----- mon\.a\.log \(last \d+ lines\) -----/)
  expect(existsSync(dir)).toBe(false)
}, 60_000)
