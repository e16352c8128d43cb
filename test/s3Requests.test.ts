import { Readable } from 'node:stream'
import { Upload } from '@tus/utils'
import { s3Store } from '../stores/s3/index.js'
import type { S3Request } from '../stores/s3/requestObserver.js'
import { newUploadId } from '../stores/uploadId.js'
import { tusgateS3Env, useCeph } from './helpers/ceph.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { metricSum } from './helpers/metrics.js'
import { type InProcessServer, startServer } from './helpers/servers.js'

// S3_CONCURRENT_PARTS and the S3 request metrics, against a real radosgw (killed in the last test).

const MiB = 1024 * 1024
const PART = 5 * MiB // tusgateS3Env's S3_PART_SIZE

const ceph = useCeph()

describe('S3_CONCURRENT_PARTS', () => {
  test('1: a 30 MiB write in 5 MiB parts sends its UploadParts one after another; the bytes arrive whole', async () => {
    const requests: { operation: string; start: number; end: number; inFlight?: number; waiting?: number }[] = []
    let slots: { readonly inFlight: number; readonly waiting: number } | undefined
    const onRequest = ({ operation, seconds }: S3Request) => {
      const end = performance.now()
      requests.push({ operation, start: end - seconds * 1000, end, inFlight: slots?.inFlight, waiting: slots?.waiting })
    }
    const store = await s3Store.create({
      bucket: await ceph().createBucket(),
      region: ceph().region,
      endpoint: ceph().endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: ceph().accessKeyId, secretAccessKey: ceph().secretAccessKey },
      partSize: PART,
      concurrentParts: 1,
      useTags: false,
      keyPrefix: '',
      expiresAfterMs: 0,
      onRequest,
    })
    slots = store.partSlots
    try {
      const data = randomData(30 * MiB, 30)
      const id = newUploadId()
      await store.datastore.create(new Upload({ id, size: data.length, offset: 0 }))
      // Small reads, so the body is never the part: the store cuts and spools the parts itself.
      const body = Readable.from(
        (function* () {
          for (let at = 0; at < data.length; at += 256 * 1024) yield data.subarray(at, at + 256 * 1024)
        })(),
      )
      expect(await store.datastore.write(body, id, 0)).toBe(data.length)
      const parts = requests.filter((r) => r.operation === 'UploadPart').sort((a, b) => a.start - b.start)
      expect(parts.length).toBe(6)
      for (let i = 1; i < parts.length; i++) expect(parts[i].start).toBeGreaterThanOrEqual(parts[i - 1].end)
      // Each part held the one slot while it went (what /metrics shows as tusgate_s3_parts_in_flight); all given back.
      expect(parts.map((p) => p.inFlight)).toEqual(Array(6).fill(1))
      expect({ inFlight: slots?.inFlight, waiting: slots?.waiting }).toEqual({ inFlight: 0, waiting: 0 })
      const stored = await store.download(id)
      const chunks: Buffer[] = []
      for await (const chunk of stored) chunks.push(chunk as Buffer)
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data))
    } finally {
      await store.close()
    }
  }, 60_000)
})

describe('S3 request metrics on /metrics', () => {
  let server: InProcessServer
  beforeAll(async () => {
    server = await startServer(await tusgateS3Env(ceph()))
  })
  afterAll(() => server?.stop())
  const scrape = async () => (await request(`${server.url}/metrics`)).body.toString()

  test('an upload of 26 MiB in 5 MiB parts counts its UploadParts (5 whole and the last), a multipart upload begun and completed', async () => {
    const before = await scrape()
    const data = randomData(26 * MiB, 26)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    expect((await patch(url, 0, data)).status).toBe(204)
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

    const after = await scrape()
    const grew = (name: string, labels: string) => metricSum(after, name, labels) - metricSum(before, name, labels)
    const parts = Math.ceil(data.length / PART)
    expect(grew('tusgate_s3_requests_total', 'operation="UploadPart"')).toBeGreaterThanOrEqual(parts)
    expect(grew('tusgate_s3_request_duration_seconds_count', 'operation="UploadPart"')).toBeGreaterThanOrEqual(parts)
    expect(grew('tusgate_s3_requests_total', 'operation="CreateMultipartUpload"')).toBe(1)
    expect(grew('tusgate_s3_requests_total', 'operation="CompleteMultipartUpload"')).toBe(1)
    expect(grew('tusgate_s3_requests_total', 'operation="GetObject"')).toBeGreaterThanOrEqual(1)
    expect(metricSum(after, 'tusgate_s3_request_errors_total', 'operation="UploadPart"')).toBe(0)
    // The parts' slots are all given back.
    expect(after).toMatch(/^tusgate_s3_parts_in_flight 0$/m)
    expect(after).toMatch(/^tusgate_s3_parts_waiting 0$/m)
  })

  test('with radosgw killed, a HEAD fails and the errors of that operation rise, with no answer as their status', async () => {
    const data = randomData(MiB, 1)
    const url = await createUpload(server.url, { 'Upload-Length': 2 * MiB })
    expect((await patch(url, 0, data)).status).toBe(204)
    const before = await scrape()
    await ceph().gateway.kill()
    try {
      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.status).toBeGreaterThanOrEqual(500)
      const after = await scrape()
      expect(metricSum(after, 'tusgate_s3_request_errors_total', 'status="none"')).toBeGreaterThan(
        metricSum(before, 'tusgate_s3_request_errors_total', 'status="none"'),
      )
      expect(metricSum(after, 'tusgate_s3_requests_total', '')).toBeGreaterThan(metricSum(before, 'tusgate_s3_requests_total', ''))
    } finally {
      await ceph().gateway.start()
    }
  }, 60_000)
})
