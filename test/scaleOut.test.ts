import { setTimeout as sleep } from 'node:timers/promises'
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { createUpload, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { type InProcessServer, type ServerProcess, startProcess, startServer } from './helpers/servers.js'

// Two tusgate processes sharing one Ceph bucket and one Redis, as behind a load balancer.
const MiB = 1024 * 1024

let ceph: CephCluster
let redis: RedisServer
let env: Record<string, string>
const started: ServerProcess[] = []

async function instance(): Promise<ServerProcess> {
  const server = await startProcess(env)
  started.push(server)
  return server
}

beforeAll(async () => {
  ;[ceph, redis] = await Promise.all([startCeph(), startRedis()])
  env = await tusgateS3Env(ceph, {
    LOCKER: 'redis',
    REDIS_URL: redis.url,
    LOCK_TTL: '2s',
    LOCK_DRAIN_TIMEOUT: '1s',
  })
}, 120_000)

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')))
  await Promise.all([ceph?.stop(), redis?.dispose()])
})

/** The same upload path on another instance. */
const on = (server: ServerProcess | InProcessServer, url: string) => `${server.url}${new URL(url).pathname}`
const offsetOf = async (url: string) => Number((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset'])

describe('two tusgate instances over Ceph and Redis', () => {
  let a: ServerProcess
  let b: ServerProcess
  beforeAll(async () => {
    ;[a, b] = await Promise.all([instance(), instance()])
  }, 60_000)

  test("PATCHes alternate between the instances; each sees the other's offset at once", async () => {
    const data = randomData(20 * MiB, 21)
    const url = await createUpload(a.url, { 'Upload-Length': data.length })
    for (const [i, server] of [a, b, a, b].entries()) {
      const res = await patch(on(server, url), i * 5 * MiB, data.subarray(i * 5 * MiB, (i + 1) * 5 * MiB))
      expect(res.status).toBe(204)
      const other = server === a ? b : a
      expect(await offsetOf(on(other, url))).toBe((i + 1) * 5 * MiB)
    }
    expect((await sha256OfDownload(on(a, url))).sha).toBe(sha256(data))
    expect((await sha256OfDownload(on(b, url))).sha).toBe(sha256(data))
  }, 60_000)

  test('a deferred length declared through one instance is seen by the other (shared upload info)', async () => {
    const data = randomData(6 * MiB, 22)
    const url = await createUpload(a.url, { 'Upload-Defer-Length': 1 })
    expect((await patch(on(a, url), 0, data.subarray(0, 5 * MiB))).status).toBe(204)
    expect((await request(on(b, url), { method: 'HEAD', headers: TUS })).headers['upload-defer-length']).toBe('1')
    expect((await patch(on(b, url), 5 * MiB, data.subarray(5 * MiB), { 'Upload-Length': data.length })).status).toBe(204)
    const head = await request(on(a, url), { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-length']).toBe(String(data.length))
    expect(head.headers['upload-offset']).toBe(String(data.length))
    expect((await sha256OfDownload(on(a, url))).sha).toBe(sha256(data))
  }, 60_000)

  test('a client resuming on B makes A end its stale PATCH within the drain timeout', async () => {
    const data = randomData(12 * MiB, 26)
    const url = await createUpload(a.url, { 'Upload-Length': data.length })
    // A stale PATCH on A that would take about 25 s to finish.
    const stale = pacedPatch(on(a, url), 0, data, { piece: 256 * 1024, delayMs: 500, holdMs: 0 })
    await sleep(1500)
    const asked = Date.now()
    const offset = await offsetOf(on(b, url))
    // LOCK_DRAIN_TIMEOUT is 1 s: B's HEAD asked A (over Redis) to let go and got the lock soon after.
    expect(Date.now() - asked).toBeLessThan(4000)
    const result = await stale
    expect(Date.now() - asked).toBeLessThan(6000)
    expect(result.status === 204 ? Number(result.offset) : offset).toBe(offset)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)
    expect((await patch(on(b, url), offset, data.subarray(offset))).status).toBe(204)
    expect((await sha256OfDownload(on(a, url))).sha).toBe(sha256(data))
  }, 60_000)

  test('simultaneous PATCHes on A and B never both succeed and never interleave bytes', async () => {
    const size = 6 * MiB
    const url = await createUpload(a.url, { 'Upload-Length': size })
    const patterns = [randomData(size, 23), randomData(size, 24)]
    const pace = { piece: 256 * 1024, delayMs: 40, holdMs: 300 }
    const results = await Promise.all([pacedPatch(on(a, url), 0, patterns[0], pace), pacedPatch(on(b, url), 0, patterns[1], pace)])
    expect(results.filter((r) => r.status === 204).length).toBeLessThanOrEqual(1)
    const offset = await offsetOf(on(b, url))
    expect(offset).toBeGreaterThan(0)
    // Finish with filler bytes, so the object can be read: its prefix is what the racers stored.
    expect((await patch(on(a, url), offset, Buffer.alloc(size - offset))).status).toBe(204)
    const stored = await ceph.client().send(new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: new URL(url).pathname.split('/').pop() }))
    const bytes = Buffer.from(await (stored.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray())
    expect(bytes.length).toBe(size)
    const prefix = bytes.subarray(0, offset)
    const matches = patterns.map((p) => prefix.equals(p.subarray(0, offset)))
    // Exactly one: anything else means bytes of both requests were mixed.
    expect(matches.filter(Boolean)).toHaveLength(1)
    results.forEach((result, i) => {
      if (result.status === 204) expect([matches[i], Number(result.offset)]).toEqual([true, offset])
    })
  }, 60_000)
})

describe('an instance dies mid-PATCH', () => {
  test('A is SIGKILLed; its lock lapses and the upload finishes through B with the right SHA-256', async () => {
    const [a, b] = await Promise.all([instance(), instance()])
    const data = randomData(16 * MiB, 25)
    const url = await createUpload(a.url, { 'Upload-Length': data.length })
    const cut = pacedPatch(on(a, url), 0, data, { piece: 512 * 1024, delayMs: 50, holdMs: 0 })
    // Past the first 5 MiB part, so S3 holds something when A dies.
    await sleep(1200)
    a.child.kill('SIGKILL')
    expect((await cut).status).toBe(0)
    const started = Date.now()
    const offset = await offsetOf(on(b, url))
    // B waited at most for the dead holder's lock to lapse.
    expect(Date.now() - started).toBeLessThan(8000)
    expect(offset).toBeGreaterThanOrEqual(5 * MiB)
    expect(offset).toBeLessThan(data.length)
    expect((await patch(on(b, url), offset, data.subarray(offset))).status).toBe(204)
    expect((await sha256OfDownload(on(b, url))).sha).toBe(sha256(data))
  }, 60_000)
})

describe('the expiry sweep across instances', () => {
  test('two instances sweeping at once remove an expired upload once, under the shared sweep lock', async () => {
    const shared = { ...env, UPLOAD_EXPIRES_AFTER: '1s', EXPIRY_SWEEP_INTERVAL: '1h' }
    const [a, b] = await Promise.all([startServer(shared), startServer(shared)])
    try {
      const url = await createUpload(a.url, { 'Upload-Length': 10 })
      await sleep(1300)
      const [fromA, fromB] = await Promise.all([a.app.sweeper.sweep(), b.app.sweeper.sweep()])
      expect([...fromA, ...fromB]).toEqual([new URL(url).pathname.split('/').pop()])
      const expiredLines = [...a.logs, ...b.logs].filter((l) => l.message === 'upload expired')
      expect(expiredLines).toHaveLength(1)
      expect((await request(on(b, url), { method: 'HEAD', headers: TUS })).status).toBe(404)
      // The two sweeps ran one after the other, never side by side.
      const spans = [...a.logs, ...b.logs]
        .filter((l) => l.message === 'expiry sweep done')
        .map((l) => [Number(l.started), Number(l.finished)])
        .sort((x, y) => x[0] - y[0])
      expect(spans).toHaveLength(2)
      expect(spans[1][0]).toBeGreaterThanOrEqual(spans[0][1])
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  }, 60_000)
})
