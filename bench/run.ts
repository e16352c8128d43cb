// tusgate benchmark: `npm run bench` (full), `npm run bench -- --quick` (a fast check).
//
// Side by side in one run, in interleaved rounds (each round runs every scenario once, in an order
// rotated from round to round), medians over rounds and ratios between peers:
//   single uploads: one PATCH of SIZE bytes (a PUT/PATCH of the body for the raw baseline), sent by each
//     client (--clients): curl -T (streams the file as curl, browsers and phones do), Node http with
//     64 KiB writes (node) and with 1 MiB writes (node-1m); to each peer:
//       tusd     tusd v2 with its file store (Go; `--tusd PATH`, no fsync), when given
//       raw      a raw Node http server piping the body into fs.createWriteStream, without and with fsync
//       bare     a bare @tus/server + @tus/file-store
//       tusgate  compiled and run as `npm start` runs it (JSON logs to a file, metrics on, WORKERS workers),
//                FILE_FSYNC=false and the default (fsync)
//     and tus-js-client in CHUNK-sized PATCHes to tusgate;
//   concurrent uploads: N uploads of 1 MiB at once (a POST and one PATCH each) to tusd, tusgate with
//     WORKERS workers and tusgate with one, with a HEAD prober in its own process (one kept-alive
//     connection, and a new connection per HEAD); and N PUTs of 1 MiB to the raw baseline with fsync;
//   S3 (--s3=1): tusgate (WORKERS=1) on a Ceph radosgw the bench starts (mon, OSD on memstore, radosgw), for
//     each S3_PART_SIZE x S3_CONCURRENT_PARTS of a small matrix: one upload of S3_SIZE, and S3_UPLOADS
//     concurrent uploads of S3_EACH (a POST and one PATCH each, the POSTs inside the measured interval);
//     with radosgw's CPU and that of the OSD and monitor, the peak of tusgate's temporary part files, and
//     its UploadPart count and time from /metrics. Each object is read back with GetObject and checked.
// Every upload's SHA-256 is checked; a mismatch fails the run. Server CPU is user + sys from /proc, of the
// server process and its children (tusgate's workers), per GiB received.
//
// Options (argv `--name=value`, or the environment variable NAME):
//   --quick              SIZE=128MiB, ROUNDS=1, CONCURRENCY=200, CLIENTS=curl,node-1m, CHUNK=16MiB
//   --rounds=N           rounds (5: the machine is shared, and medians of 3 moved by 20% between runs)
//   --size=SIZE          bytes of the single uploads (512MiB); units are binary: KiB/MiB/GiB (k/m/g alike)
//   --concurrency=A,B    concurrent 1 MiB uploads (1000)
//   --clients=a,b        clients of the single uploads: curl, node, node-1m (all three)
//   --tusd=PATH          tusd binary (e.g. ../shared/anchors/tusd/tusd-file, used by default if it exists)
//   --workers=N          tusgate's WORKERS (the machine's cores)
//   --chunk=SIZE         tus-js-client chunkSize (64MiB)
//   --s3=0|1             the S3 scenarios (0)
//   --s3-part-sizes=A,B  their S3_PART_SIZEs (8MiB,32MiB)
//   --s3-parallel=A,B    their S3_CONCURRENT_PARTS (1,4,60)
//   --s3-size=SIZE       the single S3 upload (256MiB; at most SIZE)
//   --s3-uploads=N       the concurrent S3 uploads (100), of --s3-each=SIZE (8MiB) each
//   --profile            after the rounds, untimed: one curl PATCH each to tusgate (WORKERS=1) and bare
//                        @tus/server, and the largest concurrency against tusgate (WORKERS=1), under
//                        `node --cpu-prof`; self time per function and module during the measured interval
//                        (raw profiles in bench/results/profiles/)
//   --only=id,id         only these scenarios (debugging; `s3-*`: every id beginning so); ids are printed at the start
//   --out=NAME           results file name stem in bench/results/ (full: results, quick: quick)
//   --tusgate-env=K=V,.. extra environment for every tusgate child, for diagnosis (e.g. READ_SLOTS=0);
//                        recorded in the results
// Also CLIENT_READ_SIZE (env): the node client's read size, 64 KiB by default; TUSGATE_MAIN (env, diagnosis):
// tusgate's entry point, dist/server/main.js (built by `npm run build` at the start of the run) unless
// given; a .ts one runs under tsx (`TUSGATE_MAIN=server/main.ts`: the sources, as the tests run them).

import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeleteObjectsCommand, GetObjectCommand } from '@aws-sdk/client-s3'
import * as tus from 'tus-js-client'
import type { CephCluster } from '../scripts/ceph.js'
import { idOf, send, sha256File, tusCreate, tusPatch } from './lib/client.js'
import { type ProfileSummary, summarizeCpuProfile } from './lib/cpuprofile.js'
import { curlPatch } from './lib/curl.js'
import {
  cpuSeconds,
  machineCpu,
  ROOT,
  RssSampler,
  reapedChildrenCpuSeconds,
  type ServerChild,
  startServerChild,
  statusKiB,
  syncDisks,
  track,
  treeCpuSeconds,
  tsxArgs,
} from './lib/procs.js'
import { type Row, svgChart, table } from './lib/report.js'
import { cephCpuSeconds, DirBytesSampler, s3RequestCounts, startBenchCeph } from './lib/s3.js'

// ---------------------------------------------------------------------------------------------- options

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? process.env[name.toUpperCase()]

function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim())
  if (!m) throw new Error(`bad size '${text}' (expected e.g. 1GiB, 64MiB, 1048576)`)
  const unit = (m[2] ?? 'b').toLowerCase()[0]
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1
  return Math.round(Number(m[1]) * factor)
}

const MiB = 1024 ** 2
const GiB = 1024 ** 3
const CLIENT_IDS = ['curl', 'node', 'node-1m'] as const
type ClientId = (typeof CLIENT_IDS)[number]
const quick = flag('quick')
const ROUNDS = Number(option('rounds') ?? (quick ? 1 : 5))
const SIZE = parseSize(option('size') ?? (quick ? '128MiB' : '512MiB'))
const CONCURRENCY = (option('concurrency') ?? (quick ? '200' : '1000')).split(',').map(Number)
const CLIENTS = (option('clients') ?? (quick ? 'curl,node-1m' : CLIENT_IDS.join(','))).split(',') as ClientId[]
const CHUNK = parseSize(option('chunk') ?? (quick ? '16MiB' : '64MiB'))
const WORKERS = Number(option('workers') ?? os.availableParallelism())
const DEFAULT_TUSD = path.resolve(ROOT, '../shared/anchors/tusd/tusd-file')
const TUSD = option('tusd') ?? (existsSync(DEFAULT_TUSD) ? DEFAULT_TUSD : undefined)
const WITH_S3 = option('s3') === '1'
const S3_PART_SIZES = (option('s3-part-sizes') ?? '8MiB,32MiB').split(',').map(parseSize)
const S3_PARALLEL = (option('s3-parallel') ?? '1,4,60').split(',').map(Number)
const S3_SIZE = parseSize(option('s3-size') ?? '256MiB')
const S3_UPLOADS = Number(option('s3-uploads') ?? 100)
const S3_EACH = parseSize(option('s3-each') ?? '8MiB')
const PROFILE = flag('profile') || option('profile') === '1'
const ONLY = option('only')?.split(',')
const OUT = option('out') ?? (quick ? 'quick' : 'results')
const TUSGATE_ENV: Record<string, string> = Object.fromEntries(
  (option('tusgate-env') ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
)
const PROBE_UPLOADS = 16
if (!(ROUNDS >= 1) || !(SIZE >= MiB) || CONCURRENCY.some((n) => !(n >= 1)) || !(WORKERS >= 1))
  throw new Error('bad ROUNDS, SIZE (>= 1 MiB), CONCURRENCY or WORKERS')
const badClient = CLIENTS.find((c) => !CLIENT_IDS.includes(c))
if (badClient) throw new Error(`unknown client '${badClient}' (expected ${CLIENT_IDS.join(', ')})`)
if (TUSD && !existsSync(TUSD)) throw new Error(`no tusd binary at ${TUSD}`)
if (WITH_S3 && (S3_SIZE > SIZE || S3_EACH > SIZE || !(S3_UPLOADS >= 1) || S3_PARALLEL.some((n) => !(n >= 1)) || S3_PART_SIZES.some((n) => n < 5 * MiB)))
  throw new Error('bad S3 options: --s3-size and --s3-each at most --size, --s3-uploads and --s3-parallel at least 1, part sizes at least 5 MiB')

const RESULTS_DIR = path.join(ROOT, 'bench', 'results')
const benchStarted = Date.now()
const elapsed = () => `${((Date.now() - benchStarted) / 1000).toFixed(0)}s`
const log = (msg: string) => process.stderr.write(`[bench ${elapsed()}] ${msg}\n`)

// ------------------------------------------------------------------------------------------ work area

const work = mkdtempSync(path.join(os.tmpdir(), 'tusgate-bench-'))
process.on('exit', () => rmSync(work, { recursive: true, force: true }))
const SOURCE = path.join(work, 'source.bin')
let runDirs = 0
const freshDir = (name: string) => {
  const dir = path.join(work, `${String(++runDirs).padStart(3, '0')}-${name}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** Random bytes into SOURCE, then its SHA-256 and that of every whole MiB (the concurrent uploads' bodies). */
async function makeSource(): Promise<{ sha: string; sliceShas: string[] }> {
  const fd = openSync(SOURCE, 'w')
  const block = Buffer.allocUnsafe(16 * MiB)
  for (let at = 0; at < SIZE; at += block.length) {
    const n = Math.min(block.length, SIZE - at)
    randomFillSync(block, 0, n)
    writeSync(fd, block, 0, n)
  }
  closeSync(fd)
  const whole = createHash('sha256')
  const sliceShas: string[] = []
  const { createReadStream } = await import('node:fs')
  let slice = createHash('sha256')
  let inSlice = 0
  for await (const chunk of createReadStream(SOURCE, { highWaterMark: MiB }) as AsyncIterable<Buffer>) {
    whole.update(chunk)
    let at = 0
    while (at < chunk.length) {
      const take = Math.min(MiB - inSlice, chunk.length - at)
      slice.update(chunk.subarray(at, at + take))
      inSlice += take
      at += take
      if (inSlice === MiB) {
        sliceShas.push(slice.digest('hex'))
        slice = createHash('sha256')
        inSlice = 0
      }
    }
  }
  return { sha: whole.digest('hex'), sliceShas }
}

// ------------------------------------------------------------------------------------------- servers

// Every bench client comes from 127.0.0.1: the per-address body cap (a defence against one client) would
// refuse the thousand concurrent uploads of one benchmark address.
const tusgateEnv = (extra: Record<string, string>) => ({ HOST: '127.0.0.1', LOG_FORMAT: 'json', MAX_BODIES_PER_CLIENT: '0', ...extra, ...TUSGATE_ENV })
const logOf = (label: string) => path.join(work, `${label}-${++runDirs}.log`)

const TUSGATE_MAIN = process.env.TUSGATE_MAIN ?? 'dist/server/main.js'
/** The Node flags of package.json's `start` script, so tusgate runs here as `npm start` runs it. */
const START_FLAGS = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string)
  .split(/\s+/)
  .filter((word) => word.startsWith('--'))
function startTusgate(label: string, env: Record<string, string>, nodeFlags: string[] = []): Promise<ServerChild> {
  const flags = [...START_FLAGS, ...nodeFlags]
  const args = TUSGATE_MAIN.endsWith('.ts') ? tsxArgs(TUSGATE_MAIN, flags) : [...flags, TUSGATE_MAIN]
  return startServerChild(`tusgate (${label})`, args, tusgateEnv(env), logOf(label))
}
function startBaseline(dir: string, fsync: boolean): Promise<ServerChild> {
  return startServerChild('baseline', tsxArgs('bench/baselineServer.ts'), { DIR: dir, FSYNC: String(fsync) }, logOf('baseline'))
}

/** A server the bench compares: how to start it in an empty folder, and where its uploads go. */
interface Peer {
  id: string
  label: string
  /** The chart's colour group. */
  group: string
  fsync: boolean
  /** A tus server (a POST, then the PATCH), or the raw baseline (the body in one request to /upload). */
  tus: boolean
  /** tusgate: its JSON access log and /metrics are read in the concurrent scenario. */
  tusgate?: boolean
  start(dir: string, nodeFlags?: string[]): Promise<ServerChild>
  /** The creation URL (tus) or the upload URL (raw). */
  endpoint(server: ServerChild): string
}

const tusgatePeer = (id: string, label: string, env: Record<string, string>): Peer => ({
  id,
  label,
  group: 'tusgate',
  fsync: env.FILE_FSYNC !== 'false',
  tus: true,
  tusgate: true,
  start: (dir, flags) => startTusgate(id, { FILE_DIR: dir, ...env }, flags),
  endpoint: (s) => `${s.url}/files`,
})

const PEERS = {
  tusd: TUSD
    ? ({
        id: 'tusd',
        label: 'tusd v2 file store (Go)',
        group: 'tusd',
        fsync: false,
        tus: true,
        // tusd logs a line per request event, as tusgate logs its access log: both write to a file.
        start: (dir) => startServerChild('tusd', [], { HOST: '127.0.0.1', TUSD_UPLOAD_DIR: dir }, logOf('tusd'), { executable: TUSD }),
        endpoint: (s) => `${s.url}/files/`,
      } satisfies Peer)
    : undefined,
  raw: {
    id: 'raw',
    label: 'raw Node http -> file',
    group: 'raw',
    fsync: false,
    tus: false,
    start: (dir) => startBaseline(dir, false),
    endpoint: (s) => `${s.url}/upload`,
  } satisfies Peer,
  rawFsync: {
    id: 'raw-fsync',
    label: 'raw Node http -> file + fsync',
    group: 'raw',
    fsync: true,
    tus: false,
    start: (dir) => startBaseline(dir, true),
    endpoint: (s) => `${s.url}/upload`,
  } satisfies Peer,
  bare: {
    id: 'bare',
    label: 'bare @tus/server + file-store',
    group: 'bare',
    fsync: false,
    tus: true,
    start: (dir, flags = []) => startServerChild('bare @tus/server', tsxArgs('bench/bareTusServer.ts', flags), { DIR: dir }, logOf('bare')),
    endpoint: (s) => `${s.url}/files`,
  } satisfies Peer,
  tusgateNoFsync: tusgatePeer('tusgate-nofsync', `tusgate FILE_FSYNC=false, ${WORKERS} worker(s)`, { FILE_FSYNC: 'false', WORKERS: String(WORKERS) }),
  tusgate: tusgatePeer('tusgate', `tusgate (fsync), ${WORKERS} worker(s)`, { WORKERS: String(WORKERS) }),
  tusgateOne: tusgatePeer('tusgate-w1', 'tusgate (fsync), WORKERS=1', { WORKERS: '1' }),
}
/** The peer the raw baseline stands for: without fsync for servers without, with it for those with. */
const rawFor = (peer: Peer) => (peer.fsync ? PEERS.rawFsync : PEERS.raw)

// ------------------------------------------------------------------------------------ measurements

class VerificationError extends Error {}

interface HeadStats {
  count: number
  errors: number
  errorSamples: string[]
  newConnections: number
  /** HEADs still unanswered when the load ended, counted with their wait until then (a lower bound). */
  pendingAtStop?: number
  p50: number
  p90: number
  p99: number
  max: number
  /** On new connections also: ms to connect, the request id, and ms from sending to the server beginning it. */
  slowest: { atMs: number; ms: number; sentEpochMs: number; connectMs?: number; requestId?: string; serverBeganAfterMs?: number }[]
}

interface RunResult {
  scenario: string
  /** Server CPU seconds per GiB received. */
  cpuPerGiB: number
  round: number
  position: number
  seconds: number
  bytes: number
  mbps: number
  load1Before: number
  serverCpuS: number
  benchCpuS: number
  /** CPU seconds other processes on the machine used during the measurement (Ceph counts as other). */
  otherCpuS: number
  /** The server's RSS just before the measurement (started, warmed by a POST or the prober's uploads). */
  serverRssBeforeBytes?: number
  serverPeakRssBytes?: number
  serverHwmBytes?: number
  /**
   * Peak of the summed anonymous RSS of the server and its workers: its data (heap, buffers, stacks), not
   * the executable and libraries mapped from disk, which each Node worker maps again.
   */
  serverPeakAnonBytes?: number
  benchPeakRssBytes?: number
  benchRssBeforeBytes?: number
  postMs?: number
  /** CPU seconds of the Ceph daemons during the measurement (S3 only). */
  cephCpuS?: number
  s3?: {
    /** radosgw's CPU seconds, and the OSD's and monitor's, during the measurement. */
    rgwCpuS: number
    radosCpuS: number
    /** The most bytes of temporary part files tusgate held at once. */
    peakTempBytes: number
    uploadParts: number
    /** Seconds the UploadParts took, summed over parts sent at once. */
    uploadPartSeconds: number
    requests: number
    errors: number
    uploads: number
  }
  /** The measured interval on CLOCK_MONOTONIC, in microseconds (to cut CPU profiles to it). */
  windowUs?: { startUs: number; endUs: number }
  verified: boolean
  error?: string
  concurrency?: {
    n: number
    completed: number
    failed: number
    failureSamples: string[]
    uploadMsP50: number
    uploadMsP99: number
    /** keepAlive: one persistent connection; fresh: Node's http client, which reconnects for every HEAD (see headProber.ts). */
    head: { keepAlive: HeadStats; fresh: HeadStats }
    /** From tusgate's access log: time inside the server (from the request's arrival to its end), per method. */
    serverSide: Record<string, { count: number; p50: number; p99: number; max: number; slowest?: { beganEpochMs: number; ms: number }[] }>
    /** From /metrics scraped just before and just after the load (the event-loop histogram resets at each scrape). */
    metrics?: Record<string, number>
  }
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN)
const median = (values: number[]) => {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (!v.length) return NaN
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

/** Counters around one measured interval: server CPU (with its workers), the bench's and its clients', everything else on the machine, RSS peaks. */
function meter(server: ServerChild, { sampleBench = false } = {}) {
  const machine0 = machineCpu()
  const server0 = treeCpuSeconds(server.pid)
  const bench0 = process.cpuUsage()
  const reaped0 = reapedChildrenCpuSeconds()
  const benchRssBefore = process.memoryUsage.rss()
  const serverRssBefore = statusKiB(server.pid, 'VmRSS')
  const serverRss = new RssSampler(server.pid, 50)
  const benchRss = sampleBench ? new RssSampler(process.pid, 50) : undefined
  const started = process.hrtime.bigint()
  return {
    stop(extraOwnCpuS = 0) {
      const ended = process.hrtime.bigint()
      const seconds = Number(ended - started) / 1e9
      const rss = serverRss.stop()
      const bench = benchRss?.stop()
      const serverCpuS = treeCpuSeconds(server.pid) - server0
      const b = process.cpuUsage(bench0)
      // The bench's own CPU and that of the clients it ran and reaped meanwhile (curl).
      const benchCpuS = (b.user + b.system) / 1e6 + (reapedChildrenCpuSeconds() - reaped0)
      const machine = machineCpu()
      return {
        seconds,
        windowUs: { startUs: Number(started / 1000n), endUs: Number(ended / 1000n) },
        serverCpuS,
        benchCpuS,
        otherCpuS: Math.max(0, machine.busy - machine0.busy - serverCpuS - benchCpuS - extraOwnCpuS),
        serverRssBeforeBytes: serverRssBefore === undefined ? undefined : serverRssBefore * 1024,
        serverPeakRssBytes: rss.peakBytes,
        serverHwmBytes: rss.hwmBytes,
        serverPeakAnonBytes: rss.peakAnonBytes,
        benchPeakRssBytes: bench?.peakBytes,
        benchRssBeforeBytes: sampleBench ? benchRssBefore : undefined,
      }
    },
  }
}

async function settle(): Promise<void> {
  syncDisks()
  await sleep(300)
}

async function verifyFile(file: string, expected: string, what: string): Promise<void> {
  const actual = await sha256File(file)
  if (actual !== expected) throw new VerificationError(`SHA-256 mismatch for ${what}: stored ${actual}, sent ${expected}`)
}

const whole = () => ({ path: SOURCE, start: 0, length: SIZE })

/** The whole SOURCE as one request's body, sent by `client`: a tus PATCH at offset 0, or a raw PATCH; the raw reply. */
async function sendWhole(url: string, client: ClientId, tusPatchOf: boolean): Promise<{ status: number; offset?: string; body: string }> {
  if (client === 'curl') {
    const r = await curlPatch(url, SOURCE)
    return { status: r.status, offset: r.headers['upload-offset'], body: r.body }
  }
  const readSize = client === 'node-1m' ? MiB : undefined
  if (tusPatchOf) {
    const r = await tusPatch(url, whole(), false, readSize)
    return { status: r.status, offset: String(r.headers['upload-offset']), body: r.body }
  }
  const r = await send(url, { method: 'PATCH', file: whole(), readSize })
  return { status: r.status, body: r.body }
}

/** One upload of SIZE bytes to a fresh `peer` by `client` (after a POST for tus), timed; then the stored bytes checked. */
async function runSingle(peer: Peer, client: ClientId, ctx: Ctx, nodeFlags: string[] = []): Promise<Partial<RunResult>> {
  const dir = freshDir(`${peer.id}-${client}`)
  const server = await peer.start(dir, nodeFlags)
  try {
    await settle()
    let url = peer.endpoint(server)
    let postMs: number | undefined
    if (peer.tus) {
      const created = await tusCreate(url, SIZE)
      url = created.url
      postMs = created.ms
    }
    const m = meter(server)
    const res = await sendWhole(url, client, peer.tus)
    const stats = m.stop()
    let stored: string
    if (peer.tus) {
      if (res.status !== 204 || Number(res.offset) !== SIZE) throw new Error(`PATCH ${url}: ${res.status} offset ${res.offset} ${res.body.slice(0, 200)}`)
      stored = path.join(dir, idOf(url))
    } else {
      if (res.status !== 201) throw new Error(`baseline: ${res.status} ${res.body.slice(0, 200)}`)
      const { name, bytes } = JSON.parse(res.body) as { name: string; bytes: number }
      if (bytes !== SIZE) throw new VerificationError(`baseline stored ${bytes} bytes, sent ${SIZE}`)
      stored = path.join(dir, name)
    }
    await verifyFile(stored, ctx.sha, `the upload to ${peer.id} by ${client}`)
    return { ...stats, bytes: SIZE, postMs, verified: true }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// tusgate, tus-js-client in CHUNK-sized PATCHes from a file stream (read slice by slice, not held in memory)
async function runTusJs(ctx: Ctx): Promise<Partial<RunResult>> {
  const dir = freshDir('tusjs')
  const server = await startTusgate('tusgate-tusjs', { FILE_DIR: dir, WORKERS: String(WORKERS) })
  try {
    await settle()
    const { createReadStream } = await import('node:fs')
    const source = createReadStream(SOURCE)
    const m = meter(server, { sampleBench: true })
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(source, {
        endpoint: `${server.url}/files`,
        chunkSize: CHUNK,
        retryDelays: [],
        metadata: { filename: 'bench.bin', filetype: 'application/octet-stream' },
        onSuccess: () => resolve(upload.url as string),
        onError: reject,
      })
      upload.start()
    })
    const stats = m.stop()
    source.destroy()
    await verifyFile(path.join(dir, idOf(url)), ctx.sha, `tus-js-client upload ${url}`)
    return { ...stats, bytes: SIZE, verified: true }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The HEAD prober, its own process; resolves once it has a warm connection. */
async function startProber(urls: string[], length: number) {
  const child = spawn(process.execPath, tsxArgs('bench/headProber.ts'), {
    cwd: ROOT,
    env: { PATH: process.env.PATH, PROBE_URLS: JSON.stringify(urls), PROBE_LENGTH: String(length) },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  track(child)
  const lines = createInterface({ input: child.stdout })
  const queue: string[] = []
  let waiter: ((line: string) => void) | undefined
  lines.on('line', (line) => {
    if (!waiter) return void queue.push(line)
    const taker = waiter
    waiter = undefined
    taker(line)
  })
  const next = () =>
    new Promise<string>((resolve, reject) => {
      if (queue.length) return resolve(queue.shift() as string)
      waiter = resolve
      child.once('exit', (code) => reject(new Error(`prober exited (${code})`)))
    })
  if ((await next()) !== 'ready') throw new Error('prober did not start')
  return {
    pid: child.pid as number,
    start: () => child.stdin.write('start\n'),
    async stop() {
      child.stdin.write('stop\n')
      const result = JSON.parse(await next()) as { keepAlive: HeadStats; fresh: HeadStats }
      return result
    },
  }
}

/** Selected prom-client numbers from tusgate's /metrics (undefined when metrics are off). */
async function scrapeMetrics(server: ServerChild): Promise<Record<string, number> | undefined> {
  try {
    const full = await new Promise<string>((resolve, reject) => {
      http.get(`${server.url}/metrics`, { agent: false }, (r) => {
        if (r.statusCode !== 200) reject(new Error(`/metrics: ${r.statusCode}`))
        let text = ''
        r.setEncoding('utf8')
        r.on('data', (c: string) => (text += c))
        r.on('end', () => resolve(text))
        r.on('error', reject)
      })
    })
    const wanted =
      /^tusgate_(nodejs_eventloop_lag_(?:max|p99|p50)_seconds|nodejs_heap_size_(?:used|total)_bytes|nodejs_external_memory_bytes|process_resident_memory_bytes) (\S+)$/
    const out: Record<string, number> = {}
    for (const line of full.split('\n')) {
      const m = wanted.exec(line)
      if (m) out[m[1]] = Number(m[2])
    }
    return out
  } catch {
    return undefined
  }
}

/**
 * Server-side durations per method from tusgate's JSON access log, for requests that began in [fromMs, toMs],
 * and when the server began each of the prober's requests (by request id).
 */
function accessLogDurations(logFile: string, fromMs: number, toMs: number) {
  const byMethod = new Map<string, number[]>()
  const heads: { beganEpochMs: number; ms: number }[] = []
  const probes = new Map<string, number>()
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"message":"request"')) continue
    try {
      const entry = JSON.parse(line) as { method: string; durationMs: number; timestamp: string; requestId: string }
      const began = Date.parse(entry.timestamp) - entry.durationMs
      if (entry.requestId.startsWith('probe-')) probes.set(entry.requestId, began)
      if (began < fromMs || began > toMs) continue
      byMethod.set(entry.method, [...(byMethod.get(entry.method) ?? []), entry.durationMs])
      if (entry.method === 'HEAD') heads.push({ beganEpochMs: Math.round(began), ms: Math.round(entry.durationMs) })
    } catch {
      // not a JSON line
    }
  }
  const out: Record<string, { count: number; p50: number; p99: number; max: number; slowest?: typeof heads }> = {}
  for (const [method, values] of byMethod) {
    values.sort((a, b) => a - b)
    out[method] = { count: values.length, p50: percentile(values, 50), p99: percentile(values, 99), max: values.at(-1) as number }
  }
  if (out.HEAD) out.HEAD.slowest = heads.sort((a, b) => b.ms - a.ms).slice(0, 8)
  return { byMethod: out, probes }
}

// N concurrent 1 MiB uploads against a tus peer
async function runConcurrent(peer: Peer, n: number, ctx: Ctx, nodeFlags: string[] = []): Promise<Partial<RunResult>> {
  const dir = freshDir(`${peer.id}-c${n}`)
  const server = await peer.start(dir, nodeFlags)
  const endpoint = peer.endpoint(server)
  const slices = ctx.sliceShas.length
  const sliceOf = (i: number) => ({ path: SOURCE, start: (i % slices) * MiB, length: MiB })
  try {
    // Already-finished uploads for the prober to HEAD.
    const probeUrls: string[] = []
    for (let i = 0; i < PROBE_UPLOADS; i++) {
      const { url } = await tusCreate(endpoint, MiB)
      await tusPatch(url, sliceOf(i))
      probeUrls.push(url)
    }
    const prober = await startProber(probeUrls, MiB)
    const proberCpu0 = cpuSeconds(prober.pid)
    await settle()
    const agent = new http.Agent({ keepAlive: true, maxSockets: n + 16, maxFreeSockets: n + 16 })
    if (peer.tusgate) await scrapeMetrics(server) // resets the event-loop delay histogram
    const m = meter(server)
    const loadStartMs = Date.now()
    prober.start()
    const outcomes = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const started = process.hrtime.bigint()
        try {
          const { url } = await tusCreate(endpoint, MiB, agent)
          await tusPatch(url, sliceOf(i), agent)
          return { ok: true as const, url, i, ms: Number(process.hrtime.bigint() - started) / 1e6 }
        } catch (error) {
          return { ok: false as const, i, error: (error as Error).message }
        }
      }),
    )
    const proberCpu = cpuSeconds(prober.pid) - proberCpu0
    const stats = m.stop(proberCpu)
    const loadEndMs = Date.now()
    const head = await prober.stop()
    agent.destroy()
    // tusgate's own view (its workers' metrics, summed by the primary; loop lag the worst); tusd has neither.
    const metrics = peer.tusgate ? await scrapeMetrics(server) : undefined
    await sleep(200) // the last access-log lines
    const { byMethod: serverSide, probes } = peer.tusgate
      ? accessLogDurations(server.logFile, loadStartMs, loadEndMs)
      : { byMethod: {}, probes: new Map<string, number>() }
    // For the slowest HEADs on new connections: how long after sending the server began the request. With
    // the connection made within a millisecond, the rest is the wait in the kernel's accept queue.
    for (const slow of head.fresh.slowest) {
      const began = slow.requestId ? probes.get(slow.requestId) : undefined
      if (began !== undefined) slow.serverBeganAfterMs = Math.round(began - slow.sentEpochMs)
    }
    const done = outcomes.filter((o) => o.ok)
    const failed = outcomes.filter((o) => !o.ok)
    for (const o of done) {
      if (!o.ok) continue
      const actual = await sha256File(path.join(dir, idOf(o.url)))
      if (actual !== ctx.sliceShas[o.i % slices]) throw new VerificationError(`SHA-256 mismatch for concurrent upload ${o.url}`)
    }
    const times = done.map((o) => (o.ok ? o.ms : 0)).sort((a, b) => a - b)
    return {
      ...stats,
      bytes: done.length * MiB,
      verified: true,
      concurrency: {
        n,
        completed: done.length,
        failed: failed.length,
        failureSamples: failed.slice(0, 5).map((o) => (o.ok ? '' : o.error)),
        uploadMsP50: percentile(times, 50),
        uploadMsP99: percentile(times, 99),
        head,
        serverSide,
        metrics,
      },
    }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// The raw baseline (with fsync, as tusgate's default) under N concurrent 1 MiB PUTs: what plain Node
// costs in memory and reaches in throughput with that many streams, to read (d) against.
async function runConcurrentBaseline(n: number, ctx: Ctx): Promise<Partial<RunResult>> {
  const dir = freshDir(`baseline-concurrent-${n}`)
  const server = await startBaseline(dir, true)
  const slices = ctx.sliceShas.length
  try {
    await send(`${server.url}/upload`, { method: 'PUT', file: { path: SOURCE, start: 0, length: MiB } }) // warm up
    await settle()
    const agent = new http.Agent({ keepAlive: true, maxSockets: n + 16, maxFreeSockets: n + 16 })
    const m = meter(server)
    const outcomes = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        try {
          const res = await send(`${server.url}/upload`, { method: 'PUT', file: { path: SOURCE, start: (i % slices) * MiB, length: MiB }, agent })
          if (res.status !== 201) throw new Error(`PUT: ${res.status} ${res.body}`)
          return { ok: true as const, i, name: (JSON.parse(res.body) as { name: string }).name }
        } catch (error) {
          return { ok: false as const, i, error: (error as Error).message }
        }
      }),
    )
    const stats = m.stop()
    agent.destroy()
    const done = outcomes.filter((o) => o.ok)
    for (const o of done) {
      if (!o.ok) continue
      if ((await sha256File(path.join(dir, o.name))) !== ctx.sliceShas[o.i % slices]) throw new VerificationError(`SHA-256 mismatch for baseline PUT ${o.name}`)
    }
    if (done.length < n) throw new Error(`${n - done.length} of ${n} baseline PUTs failed: ${outcomes.find((o) => !o.ok && o.error)}`)
    return { ...stats, bytes: done.length * MiB, verified: true }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// tusgate on the bench's Ceph: one upload of S3_SIZE or S3_UPLOADS of S3_EACH at once, with one part size
// and one S3_CONCURRENT_PARTS; every object read back with GetObject and checked
interface S3Case {
  partSize: number
  parallel: number
  many: boolean
}

let ceph: CephCluster | undefined
const rangeShas = new Map<string, string>()
async function rangeSha(start: number, length: number): Promise<string> {
  const key = `${start}+${length}`
  if (!rangeShas.has(key)) rangeShas.set(key, await sha256File(SOURCE, start, length))
  return rangeShas.get(key) as string
}

async function runS3({ partSize, parallel, many }: S3Case): Promise<Partial<RunResult>> {
  if (!ceph) throw new Error('the bench Ceph is not running')
  const cluster = ceph
  const slices = Math.floor(SIZE / S3_EACH)
  const ranges = many ? Array.from({ length: S3_UPLOADS }, (_, i) => ({ start: (i % slices) * S3_EACH, length: S3_EACH })) : [{ start: 0, length: S3_SIZE }]
  for (const r of ranges) await rangeSha(r.start, r.length)
  const tmp = freshDir('s3-tmp')
  const bucket = await cluster.createBucket()
  const server = await startTusgate('tusgate-s3', {
    STORE: 's3',
    S3_ENDPOINT: cluster.endpoint,
    S3_BUCKET: bucket,
    S3_REGION: cluster.region,
    S3_ACCESS_KEY_ID: cluster.accessKeyId,
    S3_SECRET_ACCESS_KEY: cluster.secretAccessKey,
    S3_FORCE_PATH_STYLE: 'true',
    S3_PART_SIZE: String(partSize),
    S3_CONCURRENT_PARTS: String(parallel),
    WORKERS: '1',
    TMPDIR: tmp,
  })
  const s3 = cluster.client()
  const ids: string[] = []
  try {
    await settle()
    const counts0 = await s3RequestCounts(server.url)
    const agent = new http.Agent({ keepAlive: true, maxSockets: ranges.length + 4 })
    const temp = new DirBytesSampler(tmp)
    const ceph0 = cephCpuSeconds(cluster)
    const m = meter(server)
    const outcomes = await Promise.allSettled(
      ranges.map(async (range) => {
        const { url } = await tusCreate(`${server.url}/files`, range.length, agent)
        await tusPatch(url, { path: SOURCE, ...range }, agent)
        return idOf(url)
      }),
    )
    const ceph1 = cephCpuSeconds(cluster)
    const stats = m.stop(ceph1.rgw - ceph0.rgw + ceph1.rados - ceph0.rados)
    const peakTempBytes = temp.stop()
    agent.destroy()
    for (const o of outcomes) if (o.status === 'fulfilled') ids.push(o.value)
    const failed = outcomes.find((o) => o.status === 'rejected')
    if (failed) throw new Error(`${outcomes.length - ids.length} of ${outcomes.length} S3 uploads failed: ${(failed.reason as Error).message}`)
    const counts = await s3RequestCounts(server.url)
    for (const [i, id] of ids.entries()) {
      const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: id }))
      const hash = createHash('sha256')
      for await (const chunk of Body as Readable) hash.update(chunk as Buffer)
      if (hash.digest('hex') !== (await rangeSha(ranges[i].start, ranges[i].length))) throw new VerificationError(`SHA-256 mismatch for S3 object ${id}`)
    }
    return {
      ...stats,
      bytes: ranges.reduce((sum, r) => sum + r.length, 0),
      verified: true,
      cephCpuS: ceph1.rgw - ceph0.rgw + ceph1.rados - ceph0.rados,
      s3: {
        rgwCpuS: ceph1.rgw - ceph0.rgw,
        radosCpuS: ceph1.rados - ceph0.rados,
        peakTempBytes,
        uploadParts: counts.uploadParts - counts0.uploadParts,
        uploadPartSeconds: counts.uploadPartSeconds - counts0.uploadPartSeconds,
        requests: counts.requests - counts0.requests,
        errors: counts.errors - counts0.errors,
        uploads: ranges.length,
      },
    }
  } finally {
    await server.stop()
    // The OSD keeps objects in RAM: each run's go before the next.
    for (let at = 0; at < ids.length; at += 300) {
      const Objects = ids.slice(at, at + 300).flatMap((id) => [{ Key: id }, { Key: `${id}.info` }, { Key: `${id}.part` }])
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects } })).catch((error: Error) => log(`could not delete: ${error.message}`))
    }
    s3.destroy()
    rmSync(tmp, { recursive: true, force: true })
  }
}

// ------------------------------------------------------------------------------------------ scenarios

interface Ctx {
  sha: string
  sliceShas: string[]
}

interface Scenario {
  id: string
  label: string
  kind: 'single' | 'concurrent' | 'other' | 's3'
  group: string
  peer?: Peer
  client?: ClientId
  n?: number
  run(ctx: Ctx): Promise<Partial<RunResult>>
}

const singlePeers: Peer[] = [PEERS.tusd, PEERS.raw, PEERS.rawFsync, PEERS.bare, PEERS.tusgateNoFsync, PEERS.tusgate].filter((p): p is Peer => p !== undefined)
const concurrentPeers: Peer[] = [PEERS.tusd, PEERS.tusgate, PEERS.tusgateOne].filter((p): p is Peer => p !== undefined)
const N_MAX = Math.max(...CONCURRENCY)

const ALL_SCENARIOS: Scenario[] = [
  ...CLIENTS.flatMap((client) =>
    singlePeers.map(
      (peer): Scenario => ({
        id: `${peer.id}/${client}`,
        label: `${peer.label} · ${client}`,
        kind: 'single',
        group: peer.group,
        peer,
        client,
        run: (c) => runSingle(peer, client, c),
      }),
    ),
  ),
  { id: 'tusgate/tus-js-client', label: `tusgate, tus-js-client ${CHUNK / MiB} MiB chunks`, kind: 'other', group: 'tusgate', run: runTusJs },
  {
    id: `raw-fsync/c${N_MAX}`,
    label: `raw http + fsync, ${N_MAX} x 1 MiB concurrent`,
    kind: 'other',
    group: 'raw',
    run: (c) => runConcurrentBaseline(N_MAX, c),
  },
  ...CONCURRENCY.flatMap((n) =>
    concurrentPeers.map(
      (peer): Scenario => ({
        id: `${peer.id}/c${n}`,
        label: `${peer.label}, ${n} x 1 MiB`,
        kind: 'concurrent',
        group: 'concurrent',
        peer,
        n,
        run: (c) => runConcurrent(peer, n, c),
      }),
    ),
  ),
  ...(WITH_S3
    ? S3_PART_SIZES.flatMap((partSize) =>
        S3_PARALLEL.flatMap((parallel) =>
          [false, true].map(
            (many): Scenario => ({
              id: `s3-${partSize / MiB}m-x${parallel}/${many ? `c${S3_UPLOADS}` : 'one'}`,
              label: `tusgate on radosgw, ${partSize / MiB} MiB parts, ${parallel} at once: ${many ? `${S3_UPLOADS} x ${S3_EACH / MiB} MiB` : `1 x ${S3_SIZE / MiB} MiB`}`,
              kind: 's3',
              group: 's3',
              run: () => runS3({ partSize, parallel, many }),
            }),
          ),
        ),
      )
    : []),
]
const SCENARIOS = ALL_SCENARIOS.filter((s) => !ONLY || ONLY.some((o) => s.id === o || (o.endsWith('*') && s.id.startsWith(o.slice(0, -1)))))

// --------------------------------------------------------------------------------------------- profile

async function profileRun(ctx: Ctx): Promise<Record<string, ProfileSummary>> {
  const out: Record<string, ProfileSummary> = {}
  const keepDir = path.join(RESULTS_DIR, 'profiles')
  mkdirSync(keepDir, { recursive: true })
  const jobs: [string, string, (flags: string[]) => Promise<Partial<RunResult>>][] = [
    ['tusgate', `tusgate (WORKERS=1, fsync), 1 curl PATCH of ${(SIZE / MiB).toFixed(0)} MiB`, (flags) => runSingle(PEERS.tusgateOne, 'curl', ctx, flags)],
    ['bare', `bare @tus/server, 1 curl PATCH of ${(SIZE / MiB).toFixed(0)} MiB`, (flags) => runSingle(PEERS.bare, 'curl', ctx, flags)],
    [`tusgate-c${N_MAX}`, `tusgate (WORKERS=1), ${N_MAX} concurrent 1 MiB uploads`, (flags) => runConcurrent(PEERS.tusgateOne, N_MAX, ctx, flags)],
  ]
  for (const [name, what, run] of jobs) {
    const profDir = freshDir(`cpuprof-${name}`)
    const result = await run(['--cpu-prof', `--cpu-prof-dir=${profDir}`])
    // One profile per thread (tsx's loader has its own); the main thread's is the largest.
    const files = readdirSync(profDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(profDir, f))
    if (!files.length) throw new Error(`no .cpuprofile written for ${name}`)
    const main = files.sort((x, y) => statSync(y).size - statSync(x).size)[0]
    const kept = path.join(keepDir, `${name}.cpuprofile`)
    copyFileSync(main, kept)
    out[name] = { ...summarizeCpuProfile(main, ROOT, 25, result.windowUs), file: path.relative(ROOT, kept), what, seconds: result.seconds }
    log(`profile ${name}: ${result.seconds?.toFixed(2)} s under the profiler, ${path.relative(ROOT, kept)}`)
  }
  return out
}

// ------------------------------------------------------------------------------------------------ main

function environment() {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: ROOT, encoding: 'utf8' }).stdout.trim()
  return {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 1024 ** 3),
    kernel: os.release(),
    commit: git('rev-parse', 'HEAD'),
    modifiedFiles: git('status', '--porcelain', '--', 'server', 'stores').split('\n').filter(Boolean),
  }
}

async function main() {
  if (!process.env.TUSGATE_MAIN && spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) {
    throw new Error('npm run build failed')
  }
  log(
    `size ${SIZE} B, rounds ${ROUNDS}, clients ${CLIENTS.join(',')}, concurrency ${CONCURRENCY.join('/')}, tusgate WORKERS=${WORKERS}, tusd ${TUSD ?? 'none'}, chunk ${CHUNK} B, s3 ${WITH_S3}, work dir ${work}`,
  )
  log(`scenarios: ${SCENARIOS.map((s) => s.id).join(' ')}`)
  const load1Start = os.loadavg()
  const source = await makeSource()
  log(`source ${SIZE} B sha256 ${source.sha.slice(0, 16)}...`)
  const ctx: Ctx = { ...source }
  if (SCENARIOS.some((s) => s.kind === 's3')) {
    // RAM for the largest run's objects twice over (deleted objects wait for radosgw's garbage collection).
    ceph = await startBenchCeph(Math.max(4 * GiB, 3 * Math.max(S3_SIZE, S3_UPLOADS * S3_EACH)))
    log(`Ceph started in ${ceph.startupMs} ms at ${ceph.endpoint} (pids ${JSON.stringify(ceph.pids)})`)
  }

  const runs: RunResult[] = []
  let fatal: Error | undefined
  let profiles: Record<string, ProfileSummary> | undefined
  const shift = Math.max(1, Math.ceil(SCENARIOS.length / ROUNDS))
  for (let round = 0; round < ROUNDS && !fatal; round++) {
    const k = (round * shift) % SCENARIOS.length
    const order = [...SCENARIOS.slice(k), ...SCENARIOS.slice(0, k)]
    for (const [position, scenario] of order.entries()) {
      const load1Before = os.loadavg()[0]
      let result: RunResult
      try {
        const r = await scenario.run(ctx)
        const cpuPerGiB = (r.serverCpuS ?? NaN) / ((r.bytes ?? NaN) / GiB)
        result = { scenario: scenario.id, round, position, load1Before, mbps: (r.bytes ?? 0) / 1e6 / (r.seconds ?? NaN), cpuPerGiB, ...r } as RunResult
      } catch (error) {
        result = {
          scenario: scenario.id,
          round,
          position,
          load1Before,
          seconds: NaN,
          bytes: 0,
          mbps: NaN,
          cpuPerGiB: NaN,
          verified: false,
          error: (error as Error).message,
        } as RunResult
        if (error instanceof VerificationError) fatal = error
      }
      runs.push(result)
      const extra = result.concurrency
        ? ` ${result.concurrency.completed}/${result.concurrency.n} ok, HEAD p50/p99 kept-alive ${result.concurrency.head.keepAlive.p50?.toFixed(1)}/${result.concurrency.head.keepAlive.p99?.toFixed(1)} ms, new connection ${result.concurrency.head.fresh.p50?.toFixed(1)}/${result.concurrency.head.fresh.p99?.toFixed(1)} ms, RSS ${(Math.max(result.serverHwmBytes ?? 0, result.serverPeakRssBytes ?? 0) / 1e6).toFixed(0)} MB`
        : ''
      log(
        `round ${round + 1}/${ROUNDS} ${scenario.id}: ${result.error ? `FAILED ${result.error}` : `${result.seconds.toFixed(2)} s ${result.mbps.toFixed(0)} MB/s${extra}`} (server CPU ${result.serverCpuS?.toFixed(1)} s, ${result.cpuPerGiB?.toFixed(2)} s/GiB, other CPU ${result.otherCpuS?.toFixed(1)} s, load ${load1Before.toFixed(2)})`,
      )
      if (fatal) break
    }
  }
  if (PROFILE && !fatal) profiles = await profileRun(ctx)
  await ceph?.stop()
  report(runs, load1Start, profiles, fatal)
}

function report(runs: RunResult[], load1Start: number[], profiles: Record<string, ProfileSummary> | undefined, fatal: Error | undefined) {
  const of = (id: string) => runs.filter((r) => r.scenario === id && !r.error)
  const failedRuns = (id: string) => runs.filter((r) => r.scenario === id && r.error).length
  const f = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(d))
  /** Medians over the rounds that succeeded; MB/s from the median bytes and seconds. */
  const stat = (id: string) => {
    const ok = of(id)
    const seconds = median(ok.map((r) => r.seconds))
    const mbpsAll = ok.map((r) => r.mbps)
    return {
      ok: ok.length,
      runs: ok.length + failedRuns(id),
      seconds,
      mbps: median(ok.map((r) => r.bytes)) / 1e6 / seconds,
      min: Math.min(...mbpsAll),
      max: Math.max(...mbpsAll),
      cpuPerGiB: median(ok.map((r) => r.cpuPerGiB)),
      serverCpuS: median(ok.map((r) => r.serverCpuS)),
      clientCpuS: median(ok.map((r) => r.benchCpuS)),
      otherCpuS: median(ok.map((r) => r.otherCpuS)),
      rssMB: median(ok.map((r) => Math.max(r.serverHwmBytes ?? 0, r.serverPeakRssBytes ?? 0) / 1e6)),
      rssMBWorst: Math.max(...ok.map((r) => Math.max(r.serverHwmBytes ?? 0, r.serverPeakRssBytes ?? 0) / 1e6)),
      rssIdleMB: median(ok.map((r) => (r.serverRssBeforeBytes ?? NaN) / 1e6)),
      anonMB: median(ok.map((r) => (r.serverPeakAnonBytes ?? NaN) / 1e6)),
      load1: median(runs.filter((r) => r.scenario === id).map((r) => r.load1Before)),
    }
  }
  const has = (id: string) => SCENARIOS.some((s) => s.id === id) && of(id).length > 0
  const ratio = (a: string, b: string, pick: (x: ReturnType<typeof stat>) => number = (x) => x.mbps) =>
    has(a) && has(b) && a !== b ? pick(stat(a)) / pick(stat(b)) : undefined
  /** Per-round ratios of two scenarios run in the same round: median and range. */
  const paired = (a: string, b: string) => {
    const values: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const ra = of(a).find((r) => r.round === round)
      const rb = of(b).find((r) => r.round === round)
      if (ra && rb) values.push(ra.mbps / rb.mbps)
    }
    return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length }
  }

  // Single uploads: per client, every peer, with ratios to tusd, to the raw baseline (with fsync for a
  // server that fsyncs) and to bare @tus/server.
  const singles = SCENARIOS.filter((s) => s.kind === 'single')
  const singleRows = singles.map((s) => {
    const peer = s.peer as Peer
    const client = s.client as ClientId
    const st = stat(s.id)
    const raw = `${rawFor(peer).id}/${client}`
    return {
      s,
      st,
      xTusd: peer.id !== 'tusd' ? ratio(s.id, `tusd/${client}`) : undefined,
      xRaw: peer.group !== 'raw' ? ratio(s.id, raw) : undefined,
      xBare: peer.group === 'tusgate' ? ratio(s.id, `bare/${client}`) : undefined,
      cpuXRaw: peer.group !== 'raw' ? ratio(s.id, raw, (x) => x.cpuPerGiB) : undefined,
      rawId: raw,
    }
  })
  const singleTable = table(
    [
      'scenario',
      'MB/s',
      'min..max',
      'srv CPU s/GiB',
      'x tusd',
      'x raw',
      'x bare',
      'CPU/GiB x raw',
      'client CPU s',
      'other CPU s',
      'srv RSS MB',
      'load1',
      'runs ok',
    ],
    singleRows.map(({ s, st, xTusd, xRaw, xBare, cpuXRaw }) => [
      s.id,
      f(st.mbps, 0),
      `${f(st.min, 0)}..${f(st.max, 0)}`,
      f(st.cpuPerGiB),
      f(xTusd),
      f(xRaw),
      f(xBare),
      f(cpuXRaw),
      f(st.clientCpuS, 1),
      f(st.otherCpuS, 1),
      f(st.rssMBWorst, 0),
      f(st.load1),
      `${st.ok}/${st.runs}`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  const concurrents = SCENARIOS.filter((s) => s.kind === 'concurrent')
  const conc = concurrents.map((s) => {
    const rs = of(s.id)
    const c = rs.map((r) => r.concurrency!)
    const n = s.n as number
    const head = (mode: 'keepAlive' | 'fresh') => ({
      p50: median(c.map((x) => x.head[mode].p50)),
      p99: median(c.map((x) => x.head[mode].p99)),
      p99Worst: Math.max(...c.map((x) => x.head[mode].p99)),
      max: Math.max(...c.map((x) => x.head[mode].max)),
      count: c.reduce((sum, x) => sum + x.head[mode].count, 0),
      errors: c.reduce((sum, x) => sum + x.head[mode].errors, 0),
      pending: c.reduce((sum, x) => sum + (x.head[mode].pendingAtStop ?? 0), 0),
    })
    const st = stat(s.id)
    return {
      id: s.id,
      peer: s.peer as Peer,
      n,
      st,
      failedUploads: c.reduce((sum, x) => sum + x.failed, 0) + failedRuns(s.id) * n,
      totalUploads: c.reduce((sum, x) => sum + x.n, 0) + failedRuns(s.id) * n,
      keepAlive: head('keepAlive'),
      fresh: head('fresh'),
      serverHeadP99: median(c.map((x) => x.serverSide.HEAD?.p99 ?? NaN)),
      loopLagMaxMs: median(c.map((x) => (x.metrics?.nodejs_eventloop_lag_max_seconds ?? NaN) * 1000)),
      uploadP99: median(c.map((x) => x.uploadMsP99)),
      xTusd: s.peer?.id !== 'tusd' ? ratio(s.id, `tusd/c${n}`) : undefined,
      rssXTusd: s.peer?.id !== 'tusd' ? ratio(s.id, `tusd/c${n}`, (x) => x.rssMB) : undefined,
      anonXTusd: s.peer?.id !== 'tusd' ? ratio(s.id, `tusd/c${n}`, (x) => x.anonMB) : undefined,
      failureSamples: c.flatMap((x) => x.failureSamples).slice(0, 5),
    }
  })
  const headCell = (h: (typeof conc)[number]['keepAlive']) =>
    `${f(h.p50, 1)} / ${f(h.p99, 1)} (${f(h.p99Worst, 0)})${h.errors ? ` ${h.errors} bad` : ''}${h.pending ? ` ${h.pending} unanswered at end` : ''}`
  const concTable = table(
    [
      'scenario',
      'uploads ok',
      'median s',
      'MB/s',
      'x tusd',
      'srv CPU s/GiB',
      'HEAD kept-alive p50/p99 ms (worst)',
      'HEAD new conn. p50/p99 ms (worst)',
      'HEADs ka/new',
      'srv-side HEAD p99',
      'loop lag max ms',
      'upload p99 ms',
      'srv RSS MB idle/peak (worst)',
      'RSS x tusd',
      'srv anon RSS MB peak',
      'anon x tusd',
    ],
    conc.map((c) => [
      c.id,
      `${c.totalUploads - c.failedUploads}/${c.totalUploads}`,
      f(c.st.seconds),
      f(c.st.mbps, 0),
      f(c.xTusd),
      f(c.st.cpuPerGiB),
      headCell(c.keepAlive),
      headCell(c.fresh),
      `${c.keepAlive.count}/${c.fresh.count}`,
      f(c.serverHeadP99, 1),
      f(c.loopLagMaxMs, 0),
      f(c.uploadP99, 0),
      `${f(c.st.rssIdleMB, 0)} / ${f(c.st.rssMB, 0)} (${f(c.st.rssMBWorst, 0)})`,
      f(c.rssXTusd),
      f(c.st.anonMB, 0),
      f(c.anonXTusd),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  const others = SCENARIOS.filter((s) => s.kind === 'other')
  const otherTable = table(
    ['scenario', 'MB/s', 'min..max', 'srv CPU s/GiB', 'client CPU s', 'other CPU s', 'srv RSS MB', 'runs ok'],
    others.map((s) => {
      const st = stat(s.id)
      return [
        s.id,
        f(st.mbps, 0),
        `${f(st.min, 0)}..${f(st.max, 0)}`,
        f(st.cpuPerGiB),
        f(st.clientCpuS, 1),
        f(st.otherCpuS, 1),
        f(st.rssMBWorst, 0),
        `${st.ok}/${st.runs}`,
      ]
    }),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  // S3: the costs per GiB of each side, and how busy the machine and the part uploads were.
  const s3Rows = SCENARIOS.filter((s) => s.kind === 's3').map((s) => {
    const ok = of(s.id).filter((r) => r.s3)
    const pick = (f: (r: RunResult, s3: NonNullable<RunResult['s3']>) => number) => median(ok.map((r) => f(r, r.s3!)))
    const perGiB = (f: (s3: NonNullable<RunResult['s3']>) => number) => pick((r, x) => f(x) / (r.bytes / GiB))
    return {
      id: s.id,
      label: s.label,
      ...stat(s.id),
      rgwCpuPerGiB: perGiB((x) => x.rgwCpuS),
      radosCpuPerGiB: perGiB((x) => x.radosCpuS),
      machineBusy: pick((r, x) => (r.serverCpuS + r.benchCpuS + r.otherCpuS + x.rgwCpuS + x.radosCpuS) / (r.seconds * os.availableParallelism())),
      peakTempMB: pick((_r, x) => x.peakTempBytes / 1e6),
      uploadParts: pick((_r, x) => x.uploadParts),
      meanPartS: pick((_r, x) => x.uploadPartSeconds / x.uploadParts),
      partsInFlight: pick((r, x) => x.uploadPartSeconds / r.seconds),
      s3Errors: ok.reduce((sum, r) => sum + r.s3!.errors, 0),
    }
  })
  const s3Table = table(
    [
      'scenario',
      'MB/s',
      'min..max',
      'tusgate CPU s/GiB',
      'radosgw CPU s/GiB',
      'OSD+mon CPU s/GiB',
      'machine busy',
      'srv RSS MB',
      'peak temp MB',
      'UploadParts',
      'mean part s',
      'parts in flight',
      'S3 errors (not 404)',
      'runs ok',
    ],
    s3Rows.map((r) => [
      r.id,
      f(r.mbps, 0),
      `${f(r.min, 0)}..${f(r.max, 0)}`,
      f(r.cpuPerGiB),
      f(r.rgwCpuPerGiB),
      f(r.radosCpuPerGiB),
      `${f(r.machineBusy * 100, 0)}%`,
      f(r.rssMBWorst, 0),
      f(r.peakTempMB, 0),
      f(r.uploadParts, 0),
      f(r.meanPartS),
      f(r.partsInFlight, 1),
      String(r.s3Errors),
      `${r.ok}/${r.runs}`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  // The issue's targets, where this run has the scenarios to judge them.
  type Target = { name: string; value: string; met: boolean | undefined; note?: string }
  const target = (name: string, v: number | undefined, ok: (v: number) => boolean, d = 2, note?: string): Target => ({
    name,
    value: v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d),
    met: v === undefined || !Number.isFinite(v) ? undefined : ok(v),
    note,
  })
  const ratioTarget = (name: string, a: string, b: string, min: number) => {
    const p = paired(a, b)
    const straddles = p.n > 1 && p.min < min && p.max >= min
    const note = p.n
      ? `per-round paired ratios: median ${f(p.median)}, range ${f(p.min)}..${f(p.max)}${straddles ? ' (the range straddles the target: within noise)' : ''}`
      : undefined
    return target(name, ratio(a, b), (v) => v >= min, 2, note)
  }
  const targets: Target[] = []
  if (CLIENTS.includes('curl')) {
    targets.push(
      ratioTarget('curl, no fsync: tusgate MB/s >= 0.9x raw Node http -> file', 'tusgate-nofsync/curl', 'raw/curl', 0.9),
      target(
        'curl, no fsync: tusgate CPU s/GiB <= 1.25x raw Node http -> file',
        ratio('tusgate-nofsync/curl', 'raw/curl', (x) => x.cpuPerGiB),
        (v) => v <= 1.25,
      ),
      ratioTarget('curl: tusgate with the default fsync >= 0.9x itself with FILE_FSYNC=false', 'tusgate/curl', 'tusgate-nofsync/curl', 0.9),
    )
  }
  const big = conc.filter((c) => c.n === N_MAX)
  const bigGate = big.find((c) => c.peer.id === 'tusgate')
  const bigTusd = big.find((c) => c.peer.id === 'tusd')
  if (bigGate) {
    targets.push(
      ratioTarget(`${N_MAX} concurrent: tusgate MB/s >= 1.0x tusd`, `tusgate/c${N_MAX}`, `tusd/c${N_MAX}`, 1),
      {
        name: `${N_MAX} concurrent: every upload completes and matches (all rounds)`,
        value: big.map((c) => `${c.peer.id} ${c.totalUploads - c.failedUploads}/${c.totalUploads}`).join(', '),
        met: big.every((c) => c.totalUploads > 0 && c.failedUploads === 0),
      },
      target(
        `${N_MAX} concurrent: tusgate peak RSS <= 2x tusd's`,
        bigGate.rssXTusd,
        (v) => v <= 2,
        2,
        `tusgate ${f(bigGate.st.rssMB, 0)} MB, tusd ${f(bigTusd?.st.rssMB, 0)} MB (medians of rounds)`,
      ),
      target(
        `${N_MAX} concurrent: tusgate HEAD p99 <= 50 ms, kept-alive connection`,
        bigGate.keepAlive.p99,
        (v) => v <= 50,
        1,
        `worst round ${f(bigGate.keepAlive.p99Worst, 1)}; tusd ${f(bigTusd?.keepAlive.p99, 1)}`,
      ),
      target(
        `${N_MAX} concurrent: tusgate HEAD p99 <= 200 ms, new connection`,
        bigGate.fresh.p99,
        (v) => v <= 200,
        1,
        `worst round ${f(bigGate.fresh.p99Worst, 1)}; tusd ${f(bigTusd?.fresh.p99, 1)}`,
      ),
    )
  }
  const targetText = targets
    .map((t) => `  [${t.met === undefined ? ' n/a ' : t.met ? ' met ' : 'MISSED'}] ${t.name}: ${t.value}${t.note ? `\n           ${t.note}` : ''}`)
    .join('\n')

  const loadEnd = os.loadavg()
  const env = environment()
  const header = [
    `tusgate bench, ${new Date().toISOString()}, ${quick ? 'quick' : 'full'}: ${ROUNDS} round(s), single uploads ${SIZE} B (${(SIZE / MiB).toFixed(0)} MiB) by ${CLIENTS.join(', ')}, concurrency ${CONCURRENCY.join('/')} x 1 MiB, tusgate WORKERS=${WORKERS}, tusd ${TUSD ? 'yes' : 'no'}`,
    `node ${env.node}, ${env.cpus} CPUs (${env.cpuModel}), ${env.memGiB} GiB, commit ${env.commit.slice(0, 12)}${env.modifiedFiles.length ? ` + ${env.modifiedFiles.length} modified file(s) in server/ stores/` : ''}`,
    `load average at start ${load1Start.map((v) => v.toFixed(2)).join(' ')}, at end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}; MB = 10^6 bytes; server CPU = user + sys of the server and its workers`,
    `ratios: MB/s of the row / MB/s of the peer with the same client (raw: with fsync for a server that fsyncs); CPU/GiB x raw: the same for CPU seconds per GiB`,
  ]
  const text = [...header, '', 'Single uploads (one request with the whole body):', singleTable]
  if (conc.length) {
    text.push(
      '',
      'Concurrent uploads (POST + PATCH of 1 MiB each). HEADs to finished uploads during the load, from a separate prober process: on one',
      'kept-alive connection, and on a new connection each. srv-side: from the access log; loop lag: prom-client (the worst of the tusgate workers).',
      concTable,
    )
  }
  if (others.length) text.push('', 'Other scenarios:', otherTable)
  if (s3Rows.length) {
    text.push(
      '',
      `S3: tusgate (WORKERS=1) on the bench's Ceph radosgw (OSD on memstore), POSTs and PATCHes; CPU per GiB received; machine busy: every`,
      `process's CPU over the interval's ${os.availableParallelism()} cores; parts in flight: UploadPart seconds over the interval (from /metrics)`,
      s3Table,
    )
  }
  text.push('', 'Targets:', targetText)
  if (conc.some((c) => c.failureSamples.length))
    text.push('', 'Failed uploads, samples:', ...conc.flatMap((c) => c.failureSamples.map((s) => `  ${c.id}: ${s}`)))
  const errors = runs.filter((r) => r.error)
  if (errors.length) text.push('', 'Failed runs:', ...errors.map((r) => `  round ${r.round + 1} ${r.scenario}: ${r.error}`))
  if (profiles) {
    for (const p of Object.values(profiles)) {
      text.push(
        '',
        `CPU profile of the server, ${p.what} (${p.windowed ? 'samples during the measured interval' : 'whole process'}, ${p.seconds?.toFixed(2)} s under the profiler; ${p.file}): total ${(p.totalMs / 1000).toFixed(2)} s, idle ${(p.idleMs / 1000).toFixed(2)} s, GC ${(p.gcMs / 1000).toFixed(2)} s, (program) ${(p.programMs / 1000).toFixed(2)} s`,
        table(
          ['self ms', '%', 'function', 'where'],
          p.topFunctions.slice(0, 15).map((t) => [t.selfMs.toFixed(0), t.pct.toFixed(1), t.name, t.where]),
          ['r', 'r', 'l', 'l'],
        ),
        '  by category:',
        table(
          ['self ms', '%', 'category'],
          p.byCategory.slice(0, 14).map((t) => [t.selfMs.toFixed(0), t.pct.toFixed(1), t.category]),
          ['r', 'r', 'l'],
        ),
        '  by module:',
        table(
          ['self ms', '%', 'module'],
          p.byModule.slice(0, 12).map((t) => [t.selfMs.toFixed(0), t.pct.toFixed(1), t.module]),
          ['r', 'r', 'l'],
        ),
      )
    }
  }
  if (fatal) text.push('', `RUN FAILED: ${fatal.message}`)
  process.stdout.write(`${text.join('\n')}\n`)

  mkdirSync(RESULTS_DIR, { recursive: true })
  const json = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    options: {
      rounds: ROUNDS,
      size: SIZE,
      concurrency: CONCURRENCY,
      clients: CLIENTS,
      workers: WORKERS,
      tusd: TUSD,
      chunk: CHUNK,
      s3: WITH_S3 ? { partSizes: S3_PART_SIZES, parallel: S3_PARALLEL, size: S3_SIZE, uploads: S3_UPLOADS, each: S3_EACH } : false,
      probeUploads: PROBE_UPLOADS,
      tusgateEnv: TUSGATE_ENV,
      tusgateMain: TUSGATE_MAIN,
      clientReadSize: Number(process.env.CLIENT_READ_SIZE ?? 65536),
    },
    environment: { ...env, loadavgStart: load1Start, loadavgEnd: loadEnd },
    single: singleRows.map(({ s, st, xTusd, xRaw, xBare, cpuXRaw }) => ({ id: s.id, peer: s.peer?.id, client: s.client, ...st, xTusd, xRaw, xBare, cpuXRaw })),
    concurrency: conc.map(({ peer, ...c }) => ({ ...c, peer: peer.id })),
    other: others.map((s) => ({ id: s.id, ...stat(s.id) })),
    s3: s3Rows,
    targets,
    runs,
    profiles,
    failed: fatal?.message,
    durationSeconds: (Date.now() - benchStarted) / 1000,
  }
  writeFileSync(path.join(RESULTS_DIR, `${OUT}.json`), `${JSON.stringify(json, null, 2)}\n`)
  const chartRows: Row[] = [
    ...singleRows.map(({ s, st, xTusd, xRaw }) => ({
      id: s.id,
      label: s.label,
      group: s.group,
      mbps: st.mbps,
      minMbps: st.min,
      maxMbps: st.max,
      cpuPerGiB: st.cpuPerGiB,
      ratios: [xTusd !== undefined ? `x tusd ${f(xTusd)}` : '', xRaw !== undefined ? `x raw ${f(xRaw)}` : ''].filter(Boolean).join('  '),
    })),
    ...conc.map((c) => ({
      id: c.id,
      label: `${c.peer.label}, ${c.n} x 1 MiB`,
      group: 'concurrent',
      mbps: c.st.mbps,
      minMbps: c.st.min,
      maxMbps: c.st.max,
      cpuPerGiB: c.st.cpuPerGiB,
      ratios: c.xTusd !== undefined ? `x tusd ${f(c.xTusd)}` : '',
    })),
    ...others.map((s) => {
      const st = stat(s.id)
      return { id: s.id, label: s.label, group: s.group, mbps: st.mbps, minMbps: st.min, maxMbps: st.max, cpuPerGiB: st.cpuPerGiB }
    }),
    ...s3Rows.map((r) => ({ id: r.id, label: r.label, group: 's3', mbps: r.mbps, minMbps: r.min, maxMbps: r.max, cpuPerGiB: r.cpuPerGiB })),
  ]
  const svgSub = [
    `${ROUNDS} round(s), ${(SIZE / MiB).toFixed(0)} MiB single uploads, node ${env.node}, ${env.cpus} CPUs, tusgate WORKERS=${WORKERS}, load avg ${load1Start[0].toFixed(2)} -> ${loadEnd[0].toFixed(2)}`,
    ...targets.map((t) => `${t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED'}: ${t.name}: ${t.value}`),
  ]
  writeFileSync(path.join(RESULTS_DIR, `${OUT}.svg`), svgChart(chartRows, `tusgate bench (${json.date.slice(0, 16).replace('T', ' ')} UTC)`, svgSub))
  log(`wrote bench/results/${OUT}.json and bench/results/${OUT}.svg in ${elapsed()}`)
  if (fatal || errors.length) process.exitCode = 1
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack}\n`)
  process.exit(1)
})
