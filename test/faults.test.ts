// Faults injected under a running tusgate, against real parts, as an operator meets them: a full disk, the
// S3 gateway killed, Azurite stopped, Redis killed under two instances, the hook receiver down, tusgate
// killed mid-creation. Each asserts what the client is told, that the service stays up, that nothing
// acknowledged is lost, and that every upload resumes to an equal SHA-256. Figures (status codes,
// recovery times) are printed for docs/operations.md.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { S3ServiceException } from '@aws-sdk/client-s3'
import { RestError } from '@azure/storage-blob'
import { ApiError } from '@google-cloud/storage'
import { ERRORS as STORE_ERRORS } from '@tus/utils'
import { Redis } from 'ioredis'
import { toUploadError } from '../server/core/errors.js'
import { REDIS_READY_REUSE_MS } from '../server/redisReadiness.js'
import { DEFAULT_AZURE_RETRY, retryWaitMs } from '../stores/azure/index.js'
import { RedisUnavailableError } from '../stores/redis/client.js'
import { type Azurite, startAzurite } from './helpers/azurite.js'
import { tusgateS3Env, useCeph } from './helpers/ceph.js'
import { startHookReceiver } from './helpers/hookReceiver.js'
import { createUpload, pacedPatch, patch, type RawResponse, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { freePort, type RedisServer, startRedis } from './helpers/redis.js'
import { type InProcessServer, processPool, type ServerProcess, startServer, tempDir } from './helpers/servers.js'

const MiB = 1024 * 1024
const servers: InProcessServer[] = []
const pool = processPool('tusgate-faults-')

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()))
  await pool.cleanup()
})

async function serve(env: Record<string, string>): Promise<InProcessServer> {
  const server = await startServer(env)
  servers.push(server)
  return server
}

/** Polls `check` every 100 ms until it holds; resolves with the milliseconds it took, rejects after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now()
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(100)
  }
  return Date.now() - started
}

const status = async (url: string) => (await request(url)).status

/** HEAD's Upload-Offset (the answer must be 200). */
async function offsetOf(url: string): Promise<number> {
  const res = await request(url, { method: 'HEAD', headers: TUS })
  expect(res.status).toBe(200)
  return Number(res.headers['upload-offset'])
}

/** What the client is told of a fault of ours: the status, Retry-After, a short text body. */
function expectFault(res: { status: number; headers?: http.IncomingHttpHeaders; body?: string | Buffer }, code: 503 | 507): void {
  expect(res.status).toBe(code)
  expect(res.headers?.['retry-after']).toMatch(/^\d+$/)
  expect(res.headers?.['content-type']).toMatch(/^text\/plain/)
  expect(String(res.body).length).toBeLessThan(120)
}

/** A tusgate in this process or its own: its URL and its log lines. */
type Running = InProcessServer | ServerProcess
const logsOf = (server: Running): Record<string, unknown>[] =>
  'logs' in server
    ? server.logs
    : server
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))

/** The count of `tusgate_upload_errors_total{cause}`, from GET /metrics. */
async function faults(server: Running, cause: string): Promise<number> {
  const text = (await request(`${server.url}/metrics`)).body.toString()
  return Number(new RegExp(`tusgate_upload_errors_total{cause="${cause}"} (\\d+)`).exec(text)?.[1] ?? Number.NaN)
}

/** The fault's log lines of one upload: one warning for each of its `requests` that failed, with the cause and no stack. */
function expectLoggedOnce(server: Running, uploadId: string, requests: number, fault: string, cause: RegExp): void {
  const lines = logsOf(server).filter((l) => l.message === 'upload failed' && l.uploadId === uploadId)
  expect(new Set(lines.map((l) => l.requestId)).size).toBe(requests)
  expect(lines).toHaveLength(requests)
  for (const line of lines) {
    expect(line).toMatchObject({ level: 'warn', fault })
    expect(String(line.cause)).toMatch(cause)
    expect(JSON.stringify(line)).not.toContain('stack')
  }
}

/** Sends what HEAD says is missing in one PATCH, then checks the whole download against `data`. */
async function resume(url: string, data: Buffer): Promise<void> {
  const offset = await offsetOf(url)
  const rest = await patch(url, offset, data.subarray(offset))
  expect(rest.status).toBe(204)
  expect(rest.headers['upload-offset']).toBe(String(data.length))
  expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
}

const idOf = (url: string) => url.split('/').pop() as string
const figure = (line: string) => process.stdout.write(`[faults] ${line}\n`)

// ---------------------------------------------------------------------------------------------------

describe('every failure shape of the stores reaches its answer', () => {
  const system = (code: string) => Object.assign(new Error(`${code} happened`), { code })
  const gcs = (code: number, message: string) => Object.assign(new ApiError(message), { code })
  const s3 = (name: string, httpStatusCode: number) => new S3ServiceException({ name, $fault: 'server', $metadata: { httpStatusCode } })
  const cases: Array<[string, unknown, number, string]> = [
    ['the file store out of room (its write error keeps the cause)', { ...STORE_ERRORS.FILE_WRITE_ERROR, cause: system('ENOSPC') }, 507, 'no-space'],
    ['a creation out of room', system('ENOSPC'), 507, 'no-space'],
    ['a quota', system('EDQUOT'), 507, 'no-space'],
    ['S3 quota exceeded', s3('QuotaExceeded', 403), 507, 'no-space'],
    ['S3 refused (radosgw down)', system('ECONNREFUSED'), 503, 'unavailable'],
    ['S3 cut mid-part', system('EPIPE'), 503, 'unavailable'],
    ['S3 SlowDown', s3('SlowDown', 503), 503, 'unavailable'],
    ['S3 InternalError', s3('InternalError', 500), 503, 'unavailable'],
    ['S3 socket timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 503, 'unavailable'],
    ['Azure refused', new RestError('connect ECONNREFUSED', { code: 'ECONNREFUSED' }), 503, 'unavailable'],
    ['Azure request not sent', new RestError('send failed', { code: 'REQUEST_SEND_ERROR' }), 503, 'unavailable'],
    ['Azure ServerBusy', new RestError('busy', { code: 'ServerBusy', statusCode: 503 }), 503, 'unavailable'],
    ['Azure 500 after its retries', new RestError('internal', { statusCode: 500 }), 503, 'unavailable'],
    ['GCS 503', gcs(503, 'backend error'), 503, 'unavailable'],
    ['GCS rate limit', gcs(429, 'rateLimitExceeded'), 503, 'unavailable'],
    ['fetch failed (undici) to a gone host', Object.assign(new TypeError('fetch failed'), { cause: system('ECONNREFUSED') }), 503, 'unavailable'],
    ['Redis unreachable', new RedisUnavailableError('cannot reach Redis', { cause: system('ECONNREFUSED') }), 503, 'unavailable'],
    ['Redis gone under a cache (ioredis, no offline queue)', new Error("Stream isn't writeable and enableOfflineQueue options is false"), 503, 'unavailable'],
    ['Redis gone mid-command', new Error('Connection is closed.'), 503, 'unavailable'],
    ['too many open files', system('EMFILE'), 503, 'busy'],
    ['anything else', new Error('disk on fire'), 500, 'internal'],
  ]
  test.each(cases)('%s', (_what, failure, status, fault) => {
    const { error } = toUploadError(failure)
    expect({ status: error.status, fault: error.fault }).toEqual({ status, fault })
    if (status !== 500) expect(error.headers['Retry-After']).toMatch(/^\d+$/)
  })
  test('a client error or a 4xx of a back end is no fault of ours', () => {
    expect(toUploadError(STORE_ERRORS.FILE_NOT_FOUND).error.fault).toBeUndefined()
    expect(toUploadError(gcs(404, 'No such object')).error.status).toBe(500)
  })
})

// ---------------------------------------------------------------------------------------------------

/** A 24 MiB tmpfs, mounted once for the file: undefined with the reason when mounting is not permitted. */
const tmpfs = (() => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tusgate-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir], { stdio: 'pipe' })
    return { dir, reason: undefined }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim()
    return { dir: undefined, reason: stderr || (error as Error).message }
  }
})()
afterAll(() => {
  if (!tmpfs.dir) return
  execFileSync('umount', ['-l', tmpfs.dir])
  rmSync(tmpfs.dir, { recursive: true, force: true })
})

describe('disk full (file store on a 24 MiB tmpfs)', () => {
  if (!tmpfs.dir) {
    test(`SKIPPED: mounting a tmpfs is not permitted here (${tmpfs.reason}); run as root to inject a full disk`, () => {
      expect(tmpfs.reason).toBeTruthy()
    })
    return
  }
  const mount = tmpfs.dir

  test('507 with Retry-After for the PATCH and every creation while full; unready; resumes once there is room', async () => {
    const server = await serve({ FILE_DIR: path.join(mount, 'data') })
    const filler = path.join(mount, 'filler')
    writeFileSync(filler, Buffer.alloc(12 * MiB))
    const data = randomData(16 * MiB, 16)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    const id = idOf(url)
    expect((await patch(url, 0, data.subarray(0, 4 * MiB))).status).toBe(204)
    const acknowledged = 4 * MiB

    // 8 MiB are left: the PATCH of the other 12 runs out of room part-way. (Paced, so that the refusal is read
    // before more of the body arrives at a closed connection, which would reset it.)
    const full = await pacedPatch(url, acknowledged, data.subarray(acknowledged), { piece: 64 * 1024, delayMs: 10, holdMs: 0 })
    expectFault(full, 507)
    expect(full.headers?.['retry-after']).toBe('60')
    expect(full.body).toBe('Insufficient storage: the store is full; retry later\n')
    const kept = await offsetOf(url)
    expect(kept).toBeGreaterThanOrEqual(acknowledged)
    expect(kept).toBeLessThan(data.length)

    // Creations are refused alike: tus (with and without a body) and IETF (problem+json, after its 104).
    expectFault(await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 10 } }), 507)
    const withBody = { ...TUS, 'Upload-Length': 10, 'Content-Type': 'application/offset+octet-stream' }
    expectFault(await request(`${server.url}/files`, { method: 'POST', headers: withBody, body: '0123456789' }), 507)
    const ietf = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': 64 * 1024 },
      body: randomData(64 * 1024, 2),
    })
    expect(ietf.status).toBe(507)
    expect(ietf.headers['content-type']).toBe('application/problem+json')
    expect(JSON.parse(ietf.body.toString())).toMatchObject({ type: 'about:blank', title: 'Insufficient Storage', status: 507 })

    expect(await status(`${server.url}/healthz`)).toBe(200)
    const ready = await request(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(ready.body.toString()).toContain('ENOSPC')
    expect(await faults(server, 'no-space')).toBe(4)
    expect(await faults(server, 'internal')).toBe(0)
    expectLoggedOnce(server, id, 1, 'no-space', /^ENOSPC/)

    rmSync(filler)
    const readyAfter = await until('/readyz to answer 200 once there is room', 5_000, async () => (await status(`${server.url}/readyz`)) === 200)
    await resume(url, data)
    figure(
      `disk full: PATCH 507 (kept ${kept} of ${data.length} bytes, ${acknowledged} acknowledged), creations 507, /readyz 503; ready ${readyAfter} ms after room was made`,
    )
  }, 60_000)
})

// ---------------------------------------------------------------------------------------------------

describe('S3 (Ceph radosgw) killed and restarted mid-PATCH', () => {
  const ceph = useCeph()

  // tusgate in its own process: under jest the SDK cannot tell Node's errors for errors (another realm) and wraps them.
  test('503 with Retry-After while radosgw is down; unready; resumes to an equal SHA-256 after its restart', async () => {
    const server = await pool.launch(pool.newDir(), await tusgateS3Env(ceph()))
    const data = randomData(24 * MiB, 24)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    const id = idOf(url)
    expect((await patch(url, 0, data.subarray(0, 6 * MiB))).status).toBe(204)
    const acknowledged = 6 * MiB

    // 18 MiB at 256 KiB every 50 ms take over 3.5 s: the gateway dies after one, mid-body.
    const cut = pacedPatch(url, acknowledged, data.subarray(acknowledged), { piece: 256 * 1024, delayMs: 50, holdMs: 0 })
    await sleep(1_000)
    const killed = Date.now()
    await ceph().gateway.kill()
    const answer = await cut
    expectFault(answer, 503)
    const answeredIn = Date.now() - killed

    const head = await request(url, { method: 'HEAD', headers: TUS })
    expectFault(head, 503)
    // A download cannot tell an unknown upload from a store that does not answer: it says so, not 404.
    expectFault(await request(url), 503)
    expect(await status(`${server.url}/healthz`)).toBe(200)
    expect(await status(`${server.url}/readyz`)).toBe(503)
    expect(await faults(server, 'unavailable')).toBe(3)
    expect(await faults(server, 'internal')).toBe(0)
    expectLoggedOnce(server, id, 3, 'unavailable', /ECONNRE|socket|EPIPE/i)
    // Logged once, through the log: no SDK warning on stderr beside it.
    expect(server.output()).not.toMatch(/streaming request|@smithy|@aws-sdk/)

    const restarted = Date.now()
    await ceph().gateway.start()
    const readyAfter = await until('/readyz after the restart', 30_000, async () => (await status(`${server.url}/readyz`)) === 200)
    // The acknowledged bytes past the last whole part (an incomplete part) stay until a part holding them is stored.
    const kept = await offsetOf(url)
    expect(kept).toBeGreaterThanOrEqual(acknowledged)
    await resume(url, data)
    figure(
      `S3: kept ${kept} of ${acknowledged} acknowledged bytes; PATCH 503 ${answeredIn} ms after the kill, HEAD 503, /readyz 503; ready ${Date.now() - restarted} ms after the restart began (${readyAfter} ms after radosgw answered)`,
    )
  }, 90_000)

  test('with upload info in Redis (REDIS_URL), Redis killed: 503 with Retry-After, then the upload resumes', async () => {
    const redis = await startRedis()
    try {
      const server = await pool.launch(pool.newDir(), await tusgateS3Env(ceph(), { REDIS_URL: redis.url }))
      const data = randomData(6 * MiB, 7)
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      expect((await patch(url, 0, data.subarray(0, MiB))).status).toBe(204)
      await redis.stop()
      expectFault(await request(url, { method: 'HEAD', headers: TUS }), 503)
      expectFault(await patch(url, MiB, data.subarray(MiB, 2 * MiB)), 503)
      expect(await status(`${server.url}/readyz`)).toBe(503)
      expect(await faults(server, 'internal')).toBe(0)
      expectLoggedOnce(server, idOf(url), 2, 'unavailable', /./)
      await redis.start()
      const back = await until('HEAD after Redis returned', 10_000, async () => (await request(url, { method: 'HEAD', headers: TUS })).status === 200)
      await resume(url, data)
      figure(`S3 with upload info in Redis: HEAD and PATCH 503 while Redis is down; HEAD 200 ${back} ms after its restart`)
    } finally {
      await redis.dispose()
    }
  }, 60_000)
})

// ---------------------------------------------------------------------------------------------------

describe('Azure (Azurite) stopped and restarted mid-PATCH', () => {
  let azurite: Azurite
  beforeAll(async () => {
    azurite = await startAzurite()
  }, 30_000)
  afterAll(() => azurite?.stop())

  test('503 promptly while stopped (the retries wait a bounded time), never 500; unready while down; resumes to an equal SHA-256', async () => {
    const server = await serve({ STORE: 'azure', ...azurite.env, AZURE_CONTAINER: azurite.containerName() })
    const data = randomData(12 * MiB, 12)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    const other = await createUpload(server.url, { 'Upload-Length': MiB })
    expect((await patch(url, 0, data.subarray(0, 2 * MiB))).status).toBe(204)
    const acknowledged = 2 * MiB

    const cut = pacedPatch(url, acknowledged, data.subarray(acknowledged), { piece: 256 * 1024, delayMs: 50, holdMs: 0 })
    await sleep(500)
    await azurite.pause()
    // One store request waits at most retryWaitMs between its tries (each refused at once); the SDK's own
    // retries waited 16 s. The margin is for the request's own work on a loaded machine.
    const bound = retryWaitMs(DEFAULT_AZURE_RETRY) + 3_000
    const timed = async (send: () => Promise<RawResponse>) => {
      const started = Date.now()
      const res = await send()
      return { res, ms: Date.now() - started }
    }
    const head = await timed(() => request(other, { method: 'HEAD', headers: TUS }))
    const write = await timed(() => patch(other, 0, randomData(64 * 1024, 3)))
    expectFault(head.res, 503)
    expectFault(write.res, 503)
    expect(head.ms).toBeLessThan(bound)
    expect(write.ms).toBeLessThan(bound)
    const ready = await request(`${server.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(await status(`${server.url}/healthz`)).toBe(200)
    const answer = await cut
    if (answer.status === 503) expectFault(answer, 503)
    else expect(answer.status).toBe(204)

    const resumed = Date.now()
    await azurite.resume()
    const restartMs = Date.now() - resumed
    const readyAfter = await until('/readyz after the restart', 15_000, async () => (await status(`${server.url}/readyz`)) === 200)
    expect(await faults(server, 'internal')).toBe(0)
    expect(await offsetOf(url)).toBeGreaterThanOrEqual(answer.status === 204 ? data.length : acknowledged)
    if (answer.status === 204) expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    else await resume(url, data)
    figure(
      `Azure: HEAD 503 in ${head.ms} ms, PATCH 503 in ${write.ms} ms (retries wait at most ${retryWaitMs(DEFAULT_AZURE_RETRY)} ms), the cut PATCH ${answer.status}; /readyz 503 while stopped (${ready.body.toString().trim()}); ready ${readyAfter} ms after Azurite answered again (its restart took ${restartMs} ms)`,
    )
  }, 90_000)
})

// ---------------------------------------------------------------------------------------------------

describe('Redis killed and restarted under LOCKER=redis with two instances', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(() => redis?.dispose())

  test('503 with Retry-After on both instances while Redis is down; the upload resumes on the other one', async () => {
    const shared = tempDir('tusgate-faults-shared-')
    try {
      const env = { LOCKER: 'redis', REDIS_URL: redis.url, LOCK_TTL: '1s', FILE_DIR: shared.dir }
      const [a, b] = [await serve(env), await serve(env)]
      const data = randomData(4 * MiB, 4)
      const url = await createUpload(a.url, { 'Upload-Length': data.length })
      const id = idOf(url)
      const onB = url.replace(a.url, b.url)
      expect((await patch(url, 0, data.subarray(0, MiB))).status).toBe(204)
      const acknowledged = MiB

      await redis.stop()
      const refused = await patch(onB, acknowledged, data.subarray(acknowledged, 2 * MiB))
      expectFault(refused, 503)
      expectFault(await request(url, { method: 'HEAD', headers: TUS }), 503)
      expect(await status(`${a.url}/healthz`)).toBe(200)
      // Uploads cannot go on without Redis: both instances leave the balancer, with the reason.
      for (const server of [a, b]) {
        const ready = await request(`${server.url}/readyz`)
        expect(ready.status).toBe(503)
        expect(JSON.parse(ready.body.toString()).reason).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+/)
      }
      expect(await faults(b, 'unavailable')).toBe(1)
      expect(await faults(a, 'unavailable')).toBe(1)
      expectLoggedOnce(b, id, 1, 'unavailable', /Redis|ECONNREFUSED/)

      const restarted = Date.now()
      await redis.start()
      const back = await until('HEAD on the other instance after Redis returned', 15_000, async () => {
        const res = await request(onB, { method: 'HEAD', headers: TUS })
        return res.status === 200
      })
      const readyAgain = await until('/readyz on both instances after Redis returned', 15_000, async () =>
        (await Promise.all([a, b].map((server) => status(`${server.url}/readyz`)))).every((code) => code === 200),
      )
      // A storm of probes costs Redis one PING per reuse window.
      const probe = new Redis(redis.url)
      try {
        const pings = async () => Number(/cmdstat_ping:calls=(\d+)/.exec(await probe.info('commandstats'))?.[1] ?? 0)
        const before = await pings()
        const stormed = Date.now()
        const answers = await Promise.all(Array.from({ length: 50 }, () => status(`${a.url}/readyz`)))
        const windows = Math.ceil((Date.now() - stormed) / REDIS_READY_REUSE_MS) + 1
        expect(answers.every((code) => code === 200)).toBe(true)
        expect((await pings()) - before).toBeLessThanOrEqual(windows)
      } finally {
        probe.disconnect()
      }
      // The refused PATCH wrote nothing: the offset is what was acknowledged.
      expect(await offsetOf(onB)).toBe(acknowledged)
      await resume(onB, data)
      figure(
        `Redis: PATCH, HEAD and /readyz 503 while down; locks granted again ${back} ms after its restart, both ready ${readyAgain} ms later (${Date.now() - restarted} ms to resumed)`,
      )
    } finally {
      await Promise.all(servers.splice(0).map((server) => server.stop()))
      shared.remove()
    }
  }, 60_000)
})

// ---------------------------------------------------------------------------------------------------

test('hook receiver down through a finish: the PATCH answers 204, post-finish is delivered once it is back', async () => {
  const port = await freePort()
  const server = await serve({ HOOKS_URL: `http://127.0.0.1:${port}/hooks`, HOOKS_ENABLED: 'post-finish', HOOKS_BACKOFF: '100ms', HOOKS_BACKOFF_MAX: '300ms' })
  const data = randomData(MiB, 5)
  const url = await createUpload(server.url, { 'Upload-Length': data.length })
  expect((await patch(url, 0, data)).status).toBe(204)
  expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  const pending = await server.app.metrics.registry.getSingleMetricAsString('tusgate_hook_outbox_pending')
  expect(pending).toContain('tusgate_hook_outbox_pending 1')

  const receiver = await startHookReceiver(port)
  try {
    const started = Date.now()
    await receiver.waitFor(() => receiver.of('post-finish', idOf(url)).length > 0, 5_000, 'post-finish after the outage')
    expect(receiver.of('post-finish', idOf(url))[0].Event.Upload).toMatchObject({ ID: idOf(url), Size: data.length, Offset: data.length })
    expect(await faults(server, 'internal')).toBe(0)
    figure(`hooks: PATCH 204 with the receiver down; post-finish delivered ${Date.now() - started} ms after it came up`)
  } finally {
    await receiver.stop()
  }
}, 30_000)

// ---------------------------------------------------------------------------------------------------

/**
 * An IETF creation (interop 8) whose body streams `piece` bytes every `delayMs`; resolves with the 104's
 * Location as soon as it arrives, and a promise of how the request ended.
 */
function streamingCreation(base: string, data: Buffer, { piece, delayMs }: { piece: number; delayMs: number }) {
  return new Promise<{ url: string; sent: () => number; ended: Promise<string> }>((resolve, reject) => {
    let sent = 0
    let stop = false
    let endedResolve: (how: string) => void = () => {}
    const ended = new Promise<string>((r) => (endedResolve = r))
    const req = http.request(`${base}/files`, {
      method: 'POST',
      agent: false,
      headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Upload-Length': data.length, 'Content-Length': data.length },
    })
    req.on('information', (info) => {
      if (info.statusCode === 104) resolve({ url: new URL(info.headers.location as string, base).toString(), sent: () => sent, ended })
    })
    req.on('response', (res) => {
      res.resume()
      endedResolve(`answered ${res.statusCode}`)
    })
    req.on('error', (error) => {
      stop = true
      endedResolve(`connection lost: ${error.message}`)
      reject(error)
    })
    req.flushHeaders()
    void (async () => {
      while (sent < data.length && !stop) {
        const chunk = data.subarray(sent, sent + piece)
        req.write(chunk)
        sent += chunk.length
        await sleep(delayMs)
      }
      if (!stop) req.end()
    })()
  })
}

test('SIGKILL of tusgate while a creation-with-upload streams: after a restart the upload resumes, nothing acknowledged lost', async () => {
  const dir = pool.newDir()
  mkdirSync(path.join(dir, 'data'))
  const first = await pool.launch(dir)
  const data = randomData(8 * MiB, 6)
  // 8 MiB at 256 KiB every 50 ms take over 1.5 s: the kill comes 500 ms after the 104.
  const creation = await streamingCreation(first.url, data, { piece: 256 * 1024, delayMs: 50 })
  await sleep(500)
  await pool.stop(first, 'SIGKILL')
  expect(await creation.ended).toMatch(/^connection lost/)
  const sent = creation.sent()

  const restarted = Date.now()
  const second = await pool.launch(dir)
  const url = creation.url.replace(first.url, second.url)
  const head = await request(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': '8' } })
  const upAgain = Date.now() - restarted
  expect(head.status).toBe(204)
  expect(head.headers['upload-complete']).toBe('?0')
  const offset = Number(head.headers['upload-offset'])
  expect(offset).toBeLessThanOrEqual(sent)
  const rest: RawResponse = await request(url, {
    method: 'PATCH',
    headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Offset': offset, 'Upload-Complete': '?1', 'Content-Type': 'application/partial-upload' },
    body: data.subarray(offset),
  })
  expect(rest.status).toBe(204)
  expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  figure(`SIGKILL mid-creation: ${offset} of ${sent} sent bytes kept (none acknowledged before the kill); restart to HEAD ${upAgain} ms`)
}, 60_000)
