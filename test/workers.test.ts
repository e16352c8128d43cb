import { readFileSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { NODE_FLAGS } from '../server/runtimeFlags.js'
import { createUpload, pacedPatch, request, sha256, TUS } from './helpers/http.js'
import { metricSum } from './helpers/metrics.js'
import { processPool, type ServerProcess } from './helpers/servers.js'

// WORKERS=2: two processes accepting connections on one port. Several clients race to finish one upload,
// each resuming from the offset a HEAD gives it, with paced PATCHes that ask each other's locks to let go.
// Every connection is new, so requests land on both workers (which one, the access log's pid tells).

const pool = processPool('tusgate-workers-')
afterEach(() => pool.cleanup())

const LENGTH = 768 * 1024
const CLIENTS = 6

/** The bytes client `c` sends for positions [0, LENGTH): its own pattern, so that who wrote what shows. */
const patternOf = (c: number) => {
  const bytes = Buffer.allocUnsafe(LENGTH)
  for (let p = 0; p < LENGTH; p++) bytes[p] = (p * 31 + c * 97 + (p >> 9)) & 0xff
  return bytes
}

interface Ack {
  client: number
  start: number
  end: number
  requestId: string
  /** The HEADs sent right after it. */
  headIds: string[]
}

/** The pid of the worker that answered each request id, from the access log (a worker's lines carry its pid). */
function pidsByRequestId(server: ServerProcess): Map<string, number> {
  const pids = new Map<string, number>()
  for (const line of server.output().split('\n')) {
    if (!line.includes('"message":"request"')) continue
    const entry = JSON.parse(line) as { requestId: string; pid?: number }
    if (entry.pid !== undefined) pids.set(entry.requestId, entry.pid)
  }
  return pids
}

/** Launches tusgate with WORKERS=2 and waits until both workers listen; their pids. */
async function launchTwo(dir: string, env: Record<string, string> = {}): Promise<{ server: ServerProcess; workers: number[] }> {
  const server = await pool.launch(dir, { WORKERS: '2', ...env })
  for (let i = 0; i < 300; i++) {
    const workers = [...server.output().matchAll(/"message":"listening".*?"pid":(\d+)/g)].map((m) => Number(m[1]))
    if (workers.length === 2) return { server, workers }
    await sleep(50)
  }
  throw new Error(`the second worker did not listen:\n${server.output()}`)
}

test('two workers on one port: one writer at a time per upload, and a HEAD after each acknowledged PATCH sees its offset', async () => {
  const dir = pool.newDir()
  const { server, workers: listening } = await launchTwo(dir, { LOCK_DRAIN_TIMEOUT: '150ms', LOCK_TIMEOUT: '10s' })
  const url = await createUpload(server.url, { 'Upload-Length': LENGTH })
  const patterns = Array.from({ length: CLIENTS }, (_, c) => patternOf(c))

  const acks: Ack[] = []
  const headIds: string[] = []
  const stale: string[] = []
  const unacknowledged: { client: number; start: number }[] = []
  const offsetNow = async () => {
    const res = await request(url, { method: 'HEAD', headers: TUS })
    expect(res.status).toBe(200)
    headIds.push(res.headers['x-request-id'] as string)
    return Number(res.headers['upload-offset'])
  }
  const client = async (c: number) => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const offset = await offsetNow()
      if (offset === LENGTH) return
      // At most a quarter of the upload per PATCH, so that it takes several acknowledged writes whatever the schedule.
      const res = await pacedPatch(url, offset, patterns[c].subarray(offset, Math.min(LENGTH, offset + LENGTH / 4)), {
        piece: 16 * 1024,
        delayMs: 4,
        holdMs: 0,
      })
      if (res.status === 0) {
        // The connection broke mid-body (a refusal or a cut answered while we were still sending): some
        // bytes may have been stored unacknowledged. Checked against the file below.
        unacknowledged.push({ client: c, start: offset })
        continue
      }
      if (res.status !== 204) {
        // Another client got there first (409), or held the lock too long (423): resume from a new HEAD.
        expect([409, 423]).toContain(res.status)
        continue
      }
      const end = Number(res.offset)
      const ack: Ack = { client: c, start: offset, end, requestId: res.headers?.['x-request-id'] as string, headIds: [] }
      acks.push(ack)
      // At once, each on a new connection (to either worker): never an offset older than this one.
      for (let i = 0; i < 3; i++) {
        const seen = await offsetNow()
        ack.headIds.push(headIds.at(-1) as string)
        if (seen < end) stale.push(`client ${c}: acknowledged ${end}, HEAD said ${seen}`)
      }
    }
    throw new Error(`client ${c} did not finish in 200 attempts`)
  }
  await Promise.all(patterns.map((_, c) => client(c)))

  expect(stale).toEqual([])
  // The acknowledged ranges follow one another (two writers at once would overlap), and the file holds
  // exactly those clients' bytes, range by range; a gap between them can only be the unacknowledged
  // bytes of one PATCH that began there.
  const stored = readFileSync(path.join(dir, 'data', new URL(url).pathname.split('/').pop() as string))
  expect(stored.length).toBe(LENGTH)
  const written = acks.filter((a) => a.end > a.start).sort((a, b) => a.start - b.start)
  const pieces: Buffer[] = []
  let at = 0
  for (const next of [...written, undefined]) {
    const gapEnd = next?.start ?? LENGTH
    expect(gapEnd).toBeGreaterThanOrEqual(at)
    if (gapEnd > at) {
      const gap = stored.subarray(at, gapEnd)
      const owner = unacknowledged.find((u) => u.start === at && patterns[u.client].subarray(at, gapEnd).equals(gap))
      expect(owner ? 'one unacknowledged PATCH' : `bytes ${at}-${gapEnd} written by no one request`).toBe('one unacknowledged PATCH')
      pieces.push(gap)
    }
    if (next) pieces.push(patterns[next.client].subarray(next.start, next.end))
    at = next?.end ?? LENGTH
  }
  expect(sha256(stored)).toBe(sha256(Buffer.concat(pieces)))
  expect(written.length).toBeGreaterThanOrEqual(4)

  // Then one client alone, piece by piece, two HEADs after each piece, each on a new connection.
  const quiet = await createUpload(server.url, { 'Upload-Length': 8 * 16 * 1024 })
  const quietAcks: Ack[] = []
  for (let offset = 0, piece = 0; piece < 8; piece++) {
    const res = await pacedPatch(quiet, offset, patterns[0].subarray(0, 16 * 1024), { piece: 16 * 1024, delayMs: 0, holdMs: 0 })
    expect(res.status).toBe(204)
    offset = Number(res.offset)
    const ack: Ack = { client: 0, start: offset - 16 * 1024, end: offset, requestId: res.headers?.['x-request-id'] as string, headIds: [] }
    quietAcks.push(ack)
    for (let i = 0; i < 2; i++) {
      const head = await request(quiet, { method: 'HEAD', headers: TUS })
      ack.headIds.push(head.headers['x-request-id'] as string)
      expect(Number(head.headers['upload-offset'])).toBe(offset)
    }
  }

  // Both workers answered; after acknowledged PATCHes the other worker answered HEADs (all fresh, above).
  let pids = pidsByRequestId(server)
  const ids = [...acks, ...quietAcks].flatMap((a) => [a.requestId, ...a.headIds])
  ids.push(...headIds)
  for (let i = 0; i < 40 && ids.some((id) => !pids.has(id)); i++) {
    await sleep(50) // the last access-log lines
    pids = pidsByRequestId(server)
  }
  expect(new Set(listening).size).toBe(2)
  expect(new Set(ids.map((id) => pids.get(id)))).toEqual(new Set(listening))
  const crossed = [...acks, ...quietAcks].filter((a) => a.headIds.some((id) => pids.get(id) !== pids.get(a.requestId)))
  expect(crossed.length).toBeGreaterThan(0)
}, 120_000)

test('SIGTERM stops every worker gracefully, and the primary exits 0', async () => {
  const { server } = await launchTwo(pool.newDir())
  await createUpload(server.url)
  const code = await server.stop('SIGTERM')
  expect(code).toBe(0)
  expect(server.output().match(/"message":"stopped"/g)).toHaveLength(2)
}, 60_000)

test('workers run with the runtime flags, which npm start and the image pass to a single process too', async () => {
  const { server, workers } = await launchTwo(pool.newDir())
  for (const pid of workers) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    for (const flag of NODE_FLAGS) expect(argv).toContain(flag)
  }
  await server.stop('SIGTERM')
  const root = path.join(import.meta.dirname, '..')
  const start = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start as string
  const cmd = /^CMD (.*)$/m.exec(readFileSync(path.join(root, 'Dockerfile'), 'utf8'))?.[1] ?? ''
  for (const flag of NODE_FLAGS) {
    expect(start.split(' ')).toContain(flag)
    expect(JSON.parse(cmd)).toContain(flag)
  }
}, 60_000)

test('/metrics on any worker counts the requests of every worker', async () => {
  const { server, workers } = await launchTwo(pool.newDir())
  const ids = Array.from({ length: 40 }, (_, i) => `options-${i}`)
  for (const id of ids) {
    const res = await request(`${server.url}/files`, { method: 'OPTIONS', headers: { 'X-Request-Id': id, Connection: 'close' } })
    expect(res.status).toBeLessThan(300)
  }
  // Both workers answered some (new connections spread over them), so one worker's counters alone fall short.
  let pids = pidsByRequestId(server)
  for (let i = 0; i < 40 && ids.some((id) => !pids.has(id)); i++) {
    await sleep(50)
    pids = pidsByRequestId(server)
  }
  expect(new Set(ids.map((id) => pids.get(id)))).toEqual(new Set(workers))
  const options = async () => {
    const res = await request(`${server.url}/metrics`, { headers: { Connection: 'close' } })
    expect(res.status).toBe(200)
    return metricSum(res.body.toString(), 'tusgate_http_requests_total', 'method="OPTIONS"')
  }
  // Bounded: a request is counted as its answer ends, a moment after the client has it.
  let counted = await options()
  for (let i = 0; i < 40 && counted !== ids.length; i++) {
    await sleep(50)
    counted = await options()
  }
  expect(counted).toBe(ids.length)
  // Asked of each worker in turn, the sum is the same.
  for (let i = 0; i < 6; i++) expect(await options()).toBe(ids.length)
}, 60_000)

/** Listening TCP sockets on a port, from /proc/net/tcp (state 0A). */
function listeningSockets(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .filter((line) => {
      const fields = line.trim().split(/\s+/)
      return fields[1]?.endsWith(`:${hex}`) && fields[3] === '0A'
    }).length
}

test('one process listens on several sockets of its port (accepting several connections per loop iteration)', async () => {
  const single = await pool.launch(pool.newDir(), { WORKERS: '1' })
  expect(listeningSockets(single.port)).toBe(4)
  // Every socket answers: new connections spread over them.
  for (let i = 0; i < 12; i++) expect((await request(`${single.url}/healthz`)).status).toBe(200)
  await single.stop('SIGTERM')
  expect(listeningSockets(single.port)).toBe(0)
}, 60_000)
