// tusgate benchmark: `npm run bench` (full), `npm run bench -- --quick` (a fast check).
//
// Side by side in one run, in interleaved rounds (each round runs every scenario once, in an order
// rotated from round to round):
//   (a) the machine's baseline: a raw Node http server piping the body to a file, without and with fsync;
//   (b) a bare @tus/server + @tus/file-store, one PATCH;
//   (c) tusgate (its own process, compiled and run as `npm start` runs it, JSON logs to a file, metrics on)
//       on the file store: one PATCH with FILE_FSYNC=true (the default) and =false, and tus-js-client in
//       chunks;
//   (d) N concurrent 1 MiB uploads (POST + PATCH) against tusgate, with a HEAD prober in its own process;
//   (e) tusgate on S3 (a real single-node Ceph radosgw), one PATCH.
// Every upload's SHA-256 is checked; a mismatch fails the run.
//
// Options (argv `--name=value`, or the environment variable NAME):
//   --quick              SIZE=64MiB, ROUNDS=1, CONCURRENCY=50,100, CHUNK=16MiB, no S3
//   --rounds=N           rounds (5: the machine is shared, and medians of 3 moved by 20% between runs)
//   --size=SIZE          bytes of the single uploads (1GiB); units are binary: KiB/MiB/GiB (k/m/g alike)
//   --concurrency=A,B    concurrent 1 MiB uploads (200,1000)
//   --chunk=SIZE         tus-js-client chunkSize (64MiB)
//   --s3=0|1             the Ceph scenario (1 unless --quick)
//   --profile            after the rounds, untimed: one PATCH each to tusgate and bare @tus/server, and the
//                        largest concurrency against tusgate, under `node --cpu-prof`; self time per function
//                        and module during the measured interval (raw profiles in bench/results/profiles/)
//   --only=id,id         only these scenarios (debugging); ids are listed in SCENARIOS below
//   --out=NAME           results file name stem in bench/results/ (full: results, quick: quick)
//   --tusgate-env=K=V,.. extra environment for every tusgate child, for diagnosis (e.g. FILE_FSYNC=false,
//                        UV_THREADPOOL_SIZE=64); recorded in the results
// Also CLIENT_READ_SIZE (env): the client's read size, 64 KiB by default; TUSGATE_MAIN (env, diagnosis):
// tusgate's entry point, dist/server/main.js (built by `npm run build` at the start of the run) unless
// given; a .ts one runs under tsx (`TUSGATE_MAIN=server/main.ts`: the sources, as the tests run them).

import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { DeleteObjectsCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import * as tus from 'tus-js-client'
import { idOf, send, sha256File, tusCreate, tusPatch } from './lib/client.js'
import { type ProfileSummary, summarizeCpuProfile } from './lib/cpuprofile.js'
import { cpuSeconds, machineCpu, ROOT, RssSampler, type ServerChild, startServerChild, statusKiB, syncDisks, track, tsxArgs } from './lib/procs.js'
import { type Row, svgChart, table } from './lib/report.js'

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
const quick = flag('quick')
const ROUNDS = Number(option('rounds') ?? (quick ? 1 : 5))
const SIZE = parseSize(option('size') ?? (quick ? '64MiB' : '1GiB'))
const CONCURRENCY = (option('concurrency') ?? (quick ? '50,100' : '200,1000')).split(',').map(Number)
const CHUNK = parseSize(option('chunk') ?? (quick ? '16MiB' : '64MiB'))
const WITH_S3 = (option('s3') ?? (quick ? '0' : '1')) === '1'
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
if (!(ROUNDS >= 1) || !(SIZE >= MiB) || CONCURRENCY.some((n) => !(n >= 1))) throw new Error('bad ROUNDS, SIZE (>= 1 MiB) or CONCURRENCY')

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

const tusgateEnv = (extra: Record<string, string>) => ({ HOST: '127.0.0.1', LOG_FORMAT: 'json', ...extra, ...TUSGATE_ENV })

const TUSGATE_MAIN = process.env.TUSGATE_MAIN ?? 'dist/server/main.js'
function startTusgate(label: string, env: Record<string, string>, nodeFlags: string[] = []): Promise<ServerChild> {
  const args = TUSGATE_MAIN.endsWith('.ts') ? tsxArgs(TUSGATE_MAIN, nodeFlags) : [...nodeFlags, TUSGATE_MAIN]
  return startServerChild(`tusgate (${label})`, args, tusgateEnv(env), path.join(work, `${label}-${++runDirs}.log`))
}
function startBaseline(dir: string, fsync: boolean): Promise<ServerChild> {
  return startServerChild('baseline', tsxArgs('bench/baselineServer.ts'), { DIR: dir, FSYNC: String(fsync) }, path.join(work, `baseline-${++runDirs}.log`))
}
function startBareTus(dir: string, nodeFlags: string[] = []): Promise<ServerChild> {
  return startServerChild('bare @tus/server', tsxArgs('bench/bareTusServer.ts', nodeFlags), { DIR: dir }, path.join(work, `bare-${++runDirs}.log`))
}

// ------------------------------------------------------------------------------------ measurements

class VerificationError extends Error {}

interface HeadStats {
  count: number
  errors: number
  errorSamples: string[]
  newConnections: number
  p50: number
  p90: number
  p99: number
  max: number
  /** On new connections also: ms to connect, the request id, and ms from sending to the server beginning it. */
  slowest: { atMs: number; ms: number; sentEpochMs: number; connectMs?: number; requestId?: string; serverBeganAfterMs?: number }[]
}

interface RunResult {
  scenario: string
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
  benchPeakRssBytes?: number
  benchRssBeforeBytes?: number
  postMs?: number
  /** CPU seconds of the Ceph daemons during the measurement (S3 only). */
  cephCpuS?: number
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

/** Counters around one measured interval: server and bench CPU, everything else on the machine, RSS peaks. */
function meter(server: ServerChild, { sampleBench = false } = {}) {
  const machine0 = machineCpu()
  const server0 = cpuSeconds(server.pid)
  const bench0 = process.cpuUsage()
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
      const serverCpuS = cpuSeconds(server.pid) - server0
      const b = process.cpuUsage(bench0)
      const benchCpuS = (b.user + b.system) / 1e6
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

// (a) raw http server -> file
async function runBaseline(fsync: boolean, ctx: Ctx): Promise<Partial<RunResult>> {
  const dir = freshDir(`baseline-${fsync}`)
  const server = await startBaseline(dir, fsync)
  try {
    await settle()
    const m = meter(server)
    const res = await send(`${server.url}/upload`, { method: 'PUT', file: whole() })
    const stats = m.stop()
    if (res.status !== 201) throw new Error(`baseline PUT: ${res.status} ${res.body}`)
    const { name, bytes } = JSON.parse(res.body) as { name: string; bytes: number }
    if (bytes !== SIZE) throw new VerificationError(`baseline stored ${bytes} bytes, sent ${SIZE}`)
    await verifyFile(path.join(dir, name), ctx.sha, 'the baseline upload')
    return { ...stats, bytes: SIZE, verified: true }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** POST, then one timed PATCH of the whole file; the bytes then read back from `stored(id)`. */
async function runSinglePatch(server: ServerChild, stored: (id: string) => string, ctx: Ctx): Promise<Partial<RunResult>> {
  await settle()
  const created = await tusCreate(`${server.url}/files`, SIZE)
  const m = meter(server)
  await tusPatch(created.url, whole())
  const stats = m.stop()
  await verifyFile(stored(idOf(created.url)), ctx.sha, `upload ${created.url}`)
  return { ...stats, bytes: SIZE, postMs: created.ms, verified: true }
}

// (b) bare @tus/server
async function runBare(ctx: Ctx, nodeFlags: string[] = []): Promise<Partial<RunResult>> {
  const dir = freshDir('bare')
  const server = await startBareTus(dir, nodeFlags)
  try {
    return await runSinglePatch(server, (id) => path.join(dir, id), ctx)
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// (c) tusgate, one PATCH
async function runTusgatePatch(fsync: boolean, ctx: Ctx, nodeFlags: string[] = []): Promise<Partial<RunResult>> {
  const dir = freshDir(`tusgate-${fsync}`)
  const server = await startTusgate(`tusgate-fsync-${fsync}`, { FILE_DIR: dir, FILE_FSYNC: String(fsync) }, nodeFlags)
  try {
    return await runSinglePatch(server, (id) => path.join(dir, id), ctx)
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

// (c) tusgate, tus-js-client in CHUNK-sized PATCHes from a file stream (read slice by slice, not held in memory)
async function runTusJs(ctx: Ctx): Promise<Partial<RunResult>> {
  const dir = freshDir('tusjs')
  const server = await startTusgate('tusgate-tusjs', { FILE_DIR: dir })
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
    if (!waiter) queue.push(line)
    else {
      waiter(line)
      waiter = undefined
    }
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

// (d) N concurrent 1 MiB uploads against tusgate
async function runConcurrent(n: number, ctx: Ctx, nodeFlags: string[] = []): Promise<Partial<RunResult>> {
  const dir = freshDir(`concurrent-${n}`)
  const server = await startTusgate(`tusgate-c${n}`, { FILE_DIR: dir }, nodeFlags)
  const slices = ctx.sliceShas.length
  const sliceOf = (i: number) => ({ path: SOURCE, start: (i % slices) * MiB, length: MiB })
  try {
    // Already-finished uploads for the prober to HEAD.
    const probeUrls: string[] = []
    for (let i = 0; i < PROBE_UPLOADS; i++) {
      const { url } = await tusCreate(`${server.url}/files`, MiB)
      await tusPatch(url, sliceOf(i))
      probeUrls.push(url)
    }
    const prober = await startProber(probeUrls, MiB)
    const proberCpu0 = cpuSeconds(prober.pid)
    await settle()
    const agent = new http.Agent({ keepAlive: true, maxSockets: n + 16, maxFreeSockets: n + 16 })
    await scrapeMetrics(server) // resets the event-loop delay histogram
    const m = meter(server)
    const loadStartMs = Date.now()
    prober.start()
    const outcomes = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const started = process.hrtime.bigint()
        try {
          const { url } = await tusCreate(`${server.url}/files`, MiB, agent)
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
    const metrics = await scrapeMetrics(server)
    await sleep(200) // the last access-log lines
    const { byMethod: serverSide, probes } = accessLogDurations(server.logFile, loadStartMs, loadEndMs)
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

// (a) the raw baseline (with fsync, as tusgate's default) under N concurrent 1 MiB PUTs: what plain Node
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

// (e) tusgate on S3 (Ceph radosgw), one PATCH; the object read back with GetObject
async function runS3(ctx: Ctx): Promise<Partial<RunResult>> {
  const ceph = ctx.ceph
  if (!ceph) throw new Error('no Ceph')
  const { tusgateS3Env } = await import('../test/helpers/ceph.js')
  const env = await tusgateS3Env(ceph.cluster)
  delete (env as Record<string, string | undefined>).S3_PART_SIZE // tusgate's default part size
  const server = await startTusgate('tusgate-s3', env)
  const s3: S3Client = ceph.cluster.client()
  let id: string | undefined
  try {
    await settle()
    const created = await tusCreate(`${server.url}/files`, SIZE)
    id = idOf(created.url)
    const cephCpu0 = ceph.cpu()
    const m = meter(server)
    await tusPatch(created.url, whole())
    const cephCpuS = ceph.cpu() - cephCpu0
    const stats = m.stop(cephCpuS)
    const { Body } = await s3.send(new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: id }))
    const hash = createHash('sha256')
    for await (const chunk of Body as Readable) hash.update(chunk as Buffer)
    const actual = hash.digest('hex')
    if (actual !== ctx.sha) throw new VerificationError(`SHA-256 mismatch for S3 object ${id}: ${actual}`)
    return { ...stats, bytes: SIZE, postMs: created.ms, verified: true, cephCpuS }
  } finally {
    await server.stop()
    if (id) {
      await s3
        .send(new DeleteObjectsCommand({ Bucket: env.S3_BUCKET, Delete: { Objects: [{ Key: id }, { Key: `${id}.info` }, { Key: `${id}.part` }] } }))
        .catch((error: Error) => log(`could not delete ${id}: ${error.message}`))
    }
    s3.destroy()
  }
}

// ------------------------------------------------------------------------------------------ scenarios

interface Ctx {
  sha: string
  sliceShas: string[]
  ceph?: { cluster: Awaited<ReturnType<typeof import('../test/helpers/ceph.js').startCeph>>; cpu(): number }
}

interface Scenario {
  id: string
  label: string
  group: 'a' | 'b' | 'c' | 'd' | 'e'
  run(ctx: Ctx): Promise<Partial<RunResult>>
}

const ALL_SCENARIOS: Scenario[] = [
  { id: 'a-nofsync', label: '(a) raw http -> file', group: 'a', run: (c) => runBaseline(false, c) },
  { id: 'a-fsync', label: '(a) raw http -> file + fsync', group: 'a', run: (c) => runBaseline(true, c) },
  { id: 'b-bare', label: '(b) bare @tus/server + file-store', group: 'b', run: runBare },
  { id: 'c-fsync', label: '(c) tusgate PATCH, FILE_FSYNC=true', group: 'c', run: (c) => runTusgatePatch(true, c) },
  { id: 'c-nofsync', label: '(c) tusgate PATCH, FILE_FSYNC=false', group: 'c', run: (c) => runTusgatePatch(false, c) },
  { id: 'c-tusjs', label: `(c) tusgate, tus-js-client ${CHUNK / MiB} MiB chunks`, group: 'c', run: runTusJs },
  {
    id: `a-c${Math.max(...CONCURRENCY)}`,
    label: `(a) raw http + fsync, ${Math.max(...CONCURRENCY)} x 1 MiB concurrent`,
    group: 'a',
    run: (c) => runConcurrentBaseline(Math.max(...CONCURRENCY), c),
  },
  ...CONCURRENCY.map((n): Scenario => ({ id: `d-${n}`, label: `(d) tusgate, ${n} x 1 MiB concurrent`, group: 'd', run: (c) => runConcurrent(n, c) })),
  ...(WITH_S3 ? [{ id: 'e-s3', label: '(e) tusgate on S3 (Ceph radosgw)', group: 'e' as const, run: runS3 }] : []),
]
const SCENARIOS = ALL_SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.id))

// --------------------------------------------------------------------------------------------- profile

async function profileRun(ctx: Ctx): Promise<Record<string, ProfileSummary>> {
  const out: Record<string, ProfileSummary> = {}
  const keepDir = path.join(RESULTS_DIR, 'profiles')
  mkdirSync(keepDir, { recursive: true })
  const n = Math.max(...CONCURRENCY)
  const jobs: [string, string, (flags: string[]) => Promise<Partial<RunResult>>][] = [
    ['tusgate', `tusgate, 1 PATCH of ${(SIZE / MiB).toFixed(0)} MiB (FILE_FSYNC=true)`, (flags) => runTusgatePatch(true, ctx, flags)],
    ['bare', `bare @tus/server, 1 PATCH of ${(SIZE / MiB).toFixed(0)} MiB`, (flags) => runBare(ctx, flags)],
    [`tusgate-d${n}`, `tusgate, ${n} concurrent 1 MiB uploads`, (flags) => runConcurrent(n, ctx, flags)],
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
  log(`size ${SIZE} B, rounds ${ROUNDS}, concurrency ${CONCURRENCY.join('/')}, chunk ${CHUNK} B, s3 ${WITH_S3}, work dir ${work}`)
  const load1Start = os.loadavg()
  const source = await makeSource()
  log(`source ${SIZE} B sha256 ${source.sha.slice(0, 16)}...`)
  const ctx: Ctx = { ...source }
  if (SCENARIOS.some((s) => s.group === 'e')) {
    const { startCeph } = await import('../test/helpers/ceph.js')
    // memstore keeps objects in RAM; each round's object is deleted after it is checked.
    const cluster = await startCeph({ memstoreBytes: Math.max(4 * 1024 ** 3, 3 * SIZE + 2 * 1024 ** 3) })
    ctx.ceph = { cluster, cpu: () => Object.values(cluster.pids).reduce((sum, pid) => sum + cpuSeconds(pid), 0) }
    log(`Ceph up in ${cluster.startupMs} ms at ${cluster.endpoint}`)
  }

  const runs: RunResult[] = []
  let fatal: Error | undefined
  let profiles: Record<string, ProfileSummary> | undefined
  const shift = Math.max(1, Math.ceil(SCENARIOS.length / ROUNDS))
  try {
    for (let round = 0; round < ROUNDS && !fatal; round++) {
      const k = (round * shift) % SCENARIOS.length
      const order = [...SCENARIOS.slice(k), ...SCENARIOS.slice(0, k)]
      for (const [position, scenario] of order.entries()) {
        const load1Before = os.loadavg()[0]
        let result: RunResult
        try {
          const r = await scenario.run(ctx)
          result = { scenario: scenario.id, round, position, load1Before, mbps: (r.bytes ?? 0) / 1e6 / (r.seconds ?? NaN), ...r } as RunResult
        } catch (error) {
          result = {
            scenario: scenario.id,
            round,
            position,
            load1Before,
            seconds: NaN,
            bytes: 0,
            mbps: NaN,
            verified: false,
            error: (error as Error).message,
          } as RunResult
          if (error instanceof VerificationError) fatal = error
        }
        runs.push(result)
        const extra = result.concurrency
          ? ` ${result.concurrency.completed}/${result.concurrency.n} ok, HEAD p50/p99 kept-alive ${result.concurrency.head.keepAlive.p50?.toFixed(1)}/${result.concurrency.head.keepAlive.p99?.toFixed(1)} ms, new connection ${result.concurrency.head.fresh.p50?.toFixed(1)}/${result.concurrency.head.fresh.p99?.toFixed(1)} ms, RSS ${((result.serverHwmBytes ?? 0) / 1e6).toFixed(0)} MB`
          : ''
        log(
          `round ${round + 1}/${ROUNDS} ${scenario.id}: ${result.error ? `FAILED ${result.error}` : `${result.seconds.toFixed(2)} s ${result.mbps.toFixed(0)} MB/s${extra}`} (server CPU ${result.serverCpuS?.toFixed(1)} s, other CPU ${result.otherCpuS?.toFixed(1)} s, load ${load1Before.toFixed(2)})`,
        )
        if (fatal) break
      }
    }
    if (PROFILE && !fatal) profiles = await profileRun(ctx)
  } finally {
    await ctx.ceph?.cluster.stop().catch((error: Error) => log(`stopping Ceph: ${error.message}`))
  }
  report(runs, load1Start, profiles, fatal)
}

function report(runs: RunResult[], load1Start: number[], profiles: Record<string, ProfileSummary> | undefined, fatal: Error | undefined) {
  const of = (id: string) => runs.filter((r) => r.scenario === id && !r.error)
  const summary = new Map<string, { seconds: number; mbps: number; min: number; max: number }>()
  for (const s of SCENARIOS) {
    const ok = of(s.id)
    const seconds = median(ok.map((r) => r.seconds))
    const bytes = median(ok.map((r) => r.bytes))
    const mbpsAll = ok.map((r) => r.mbps)
    summary.set(s.id, { seconds, mbps: bytes / 1e6 / seconds, min: Math.min(...mbpsAll), max: Math.max(...mbpsAll) })
  }
  const mbps = (id: string) => summary.get(id)?.mbps ?? NaN
  const ratio = (c: string, x: string) => (summary.has(c) && summary.has(x) ? mbps(c) / mbps(x) : undefined)
  const vsA: Record<string, string> = { 'c-fsync': 'a-fsync', 'c-nofsync': 'a-nofsync', 'c-tusjs': 'a-fsync' }

  const rows: Row[] = SCENARIOS.map((s) => {
    const ok = of(s.id)
    const sm = summary.get(s.id)!
    const aRef = vsA[s.id]
    return {
      id: s.id,
      label: s.label,
      group: s.group,
      medianSeconds: sm.seconds,
      mbps: sm.mbps,
      minMbps: sm.min,
      maxMbps: sm.max,
      vsA: aRef ? ratio(s.id, aRef) : undefined,
      vsALabel: aRef ? `/${aRef}` : undefined,
      vsB: s.group === 'c' ? ratio(s.id, 'b-bare') : undefined,
      serverCpuS: median(ok.map((r) => r.serverCpuS)),
      peakRssMB: Math.max(...ok.map((r) => Math.max(r.serverHwmBytes ?? 0, r.serverPeakRssBytes ?? 0) / 1e6)),
      load1: median(runs.filter((r) => r.scenario === s.id).map((r) => r.load1Before)),
    }
  })
  const f = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(d))
  const failedRuns = (id: string) => runs.filter((r) => r.scenario === id && r.error).length
  const main = table(
    [
      'scenario',
      'median s',
      'MB/s',
      'min..max MB/s',
      '(c)/(a)',
      '(c)/(b)',
      'srv CPU s',
      'client CPU s',
      'other CPU s',
      'srv RSS MB idle/peak',
      'load1',
      'runs ok',
    ],
    rows.map((r) => [
      `${r.id}  ${r.label}`,
      f(r.medianSeconds),
      f(r.mbps, 0),
      `${f(r.minMbps, 0)}..${f(r.maxMbps, 0)}`,
      r.vsA !== undefined ? `${f(r.vsA)} vs ${vsA[r.id]}` : '',
      f(r.vsB),
      f(r.serverCpuS, 1),
      f(median(of(r.id).map((x) => x.benchCpuS)), 1),
      f(median(of(r.id).map((x) => x.otherCpuS)), 1),
      `${f(median(of(r.id).map((x) => (x.serverRssBeforeBytes ?? NaN) / 1e6)), 0)} / ${f(r.peakRssMB, 0)}`,
      f(r.load1),
      `${of(r.id).length}/${of(r.id).length + failedRuns(r.id)}`,
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  const dIds = SCENARIOS.filter((s) => s.group === 'd').map((s) => s.id)
  const conc = dIds.map((id) => {
    const rs = of(id)
    const c = rs.map((r) => r.concurrency!)
    const n = c[0]?.n ?? Number(id.slice(2))
    const head = (mode: 'keepAlive' | 'fresh') => ({
      p50: median(c.map((x) => x.head[mode].p50)),
      p99: median(c.map((x) => x.head[mode].p99)),
      p99Worst: Math.max(...c.map((x) => x.head[mode].p99)),
      max: Math.max(...c.map((x) => x.head[mode].max)),
      count: c.reduce((s, x) => s + x.head[mode].count, 0),
      errors: c.reduce((s, x) => s + x.head[mode].errors, 0),
      newConnections: c.reduce((s, x) => s + x.head[mode].newConnections, 0),
      // Of the slowest HEADs' time, the share that passed before the server began them (new connections: the accept queue).
      waitedShare: (() => {
        const slow = c.flatMap((x) => x.head[mode].slowest).filter((h) => h.serverBeganAfterMs !== undefined && h.ms >= 50)
        const total = slow.reduce((sum, h) => sum + h.ms, 0)
        return total > 0 ? slow.reduce((sum, h) => sum + (h.serverBeganAfterMs ?? 0), 0) / total : NaN
      })(),
    })
    return {
      id,
      n,
      rounds: rs.length,
      failedUploads: c.reduce((s, x) => s + x.failed, 0) + failedRuns(id) * n,
      totalUploads: c.reduce((s, x) => s + x.n, 0) + failedRuns(id) * n,
      seconds: median(rs.map((r) => r.seconds)),
      mbps: median(rs.map((r) => r.mbps)),
      keepAlive: head('keepAlive'),
      fresh: head('fresh'),
      serverHeadP99: median(c.map((x) => x.serverSide.HEAD?.p99 ?? NaN)),
      loopLagMaxMs: median(c.map((x) => (x.metrics?.nodejs_eventloop_lag_max_seconds ?? NaN) * 1000)),
      uploadP99: median(c.map((x) => x.uploadMsP99)),
      rssIdleMB: median(rs.map((r) => (r.serverRssBeforeBytes ?? NaN) / 1e6)),
      rssMB: median(rs.map((r) => (r.serverHwmBytes ?? r.serverPeakRssBytes ?? NaN) / 1e6)),
      rssMBWorst: Math.max(...rs.map((r) => Math.max(r.serverHwmBytes ?? 0, r.serverPeakRssBytes ?? 0) / 1e6)),
      benchCpuS: median(rs.map((r) => r.benchCpuS)),
      serverCpuS: median(rs.map((r) => r.serverCpuS)),
      failureSamples: c.flatMap((x) => x.failureSamples).slice(0, 5),
    }
  })
  const headCell = (h: (typeof conc)[number]['keepAlive']) => `${f(h.p50, 1)} / ${f(h.p99, 1)} (${f(h.p99Worst, 0)})${h.errors ? ` ${h.errors} bad` : ''}`
  const concTable = table(
    [
      'scenario',
      'uploads ok',
      'median s',
      'MB/s',
      'HEAD kept-alive p50/p99 ms (worst)',
      'HEAD new conn. p50/p99 ms (worst)',
      'HEADs ka/new',
      'srv-side HEAD p99',
      'loop lag max ms',
      'upload p99 ms',
      'srv RSS MB idle/peak (worst)',
      'srv CPU s',
      'client CPU s',
    ],
    conc.map((c) => [
      c.id,
      `${c.totalUploads - c.failedUploads}/${c.totalUploads}`,
      f(c.seconds),
      f(c.mbps, 0),
      headCell(c.keepAlive),
      headCell(c.fresh),
      `${c.keepAlive.count}/${c.fresh.count}`,
      f(c.serverHeadP99, 1),
      f(c.loopLagMaxMs, 0),
      f(c.uploadP99, 0),
      `${f(c.rssIdleMB, 0)} / ${f(c.rssMB, 0)} (${f(c.rssMBWorst, 0)})`,
      f(c.serverCpuS, 1),
      f(c.benchCpuS, 1),
    ]),
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  )

  /** Per-round ratios of two scenarios that ran close together in the same round: median and range. */
  const paired = (c: string, x: string) => {
    const values: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const rc = of(c).find((r) => r.round === round)
      const rx = of(x).find((r) => r.round === round)
      if (rc && rx) values.push(rc.mbps / rx.mbps)
    }
    return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length }
  }

  const big = conc.at(-1)
  type Target = { name: string; value: string; met: boolean | undefined; note?: string }
  const target = (name: string, v: number | undefined, ok: (v: number) => boolean, d = 2, note?: string): Target => ({
    name,
    value: v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d),
    met: v === undefined || !Number.isFinite(v) ? undefined : ok(v),
    note,
  })
  const ratioTarget = (name: string, c: string, x: string, min: number) => {
    const p = paired(c, x)
    const straddles = p.n > 1 && p.min < min && p.max >= min
    return target(
      name,
      ratio(c, x),
      (v) => v >= min,
      2,
      p.n
        ? `per-round paired ratios: median ${f(p.median)}, range ${f(p.min)}..${f(p.max)}${straddles ? ' (the range straddles the target: within noise)' : ''}`
        : undefined,
    )
  }
  const targets: Target[] = [
    ratioTarget('(c)/(a) >= 0.90: tusgate FILE_FSYNC=true / raw + fsync', 'c-fsync', 'a-fsync', 0.9),
    ratioTarget('(c)/(a) >= 0.90: tusgate FILE_FSYNC=false / raw, no fsync', 'c-nofsync', 'a-nofsync', 0.9),
    ratioTarget('(c)/(b) >= 1.0: tusgate FILE_FSYNC=false / bare @tus/server (neither fsyncs)', 'c-nofsync', 'b-bare', 1),
    ratioTarget('(c)/(b) >= 1.0: tusgate default (fsync) / bare @tus/server (no fsync)', 'c-fsync', 'b-bare', 1),
  ]
  if (big) {
    targets.push(
      {
        name: `${big.n} concurrent: every upload completes (all rounds)`,
        value: `${big.totalUploads - big.failedUploads}/${big.totalUploads}`,
        met: big.rounds > 0 && big.failedUploads === 0,
      },
      target(
        `${big.n} concurrent: server peak RSS < 300 MB (worst round, VmHWM)`,
        big.rssMBWorst,
        (v) => v < 300,
        0,
        `median of rounds ${f(big.rssMB, 0)}, idle before the load ${f(big.rssIdleMB, 0)}`,
      ),
      target(
        `${big.n} concurrent: HEAD p99 < 50 ms, kept-alive connection (median of rounds)`,
        big.keepAlive.p99,
        (v) => v < 50,
        1,
        `worst round ${f(big.keepAlive.p99Worst, 1)}`,
      ),
      target(
        `${big.n} concurrent: HEAD p99 < 50 ms, new connection per HEAD (median of rounds)`,
        big.fresh.p99,
        (v) => v < 50,
        1,
        `worst round ${f(big.fresh.p99Worst, 1)}; of the slowest (>= 50 ms), ${f(big.fresh.waitedShare * 100, 0)} % of the time passed before tusgate began the request`,
      ),
    )
  }
  const targetText = targets
    .map((t) => `  [${t.met === undefined ? ' n/a ' : t.met ? ' met ' : 'MISSED'}] ${t.name}: ${t.value}${t.note ? `\n           ${t.note}` : ''}`)
    .join('\n')

  const loadEnd = os.loadavg()
  const env = environment()
  const header = [
    `tusgate bench, ${new Date().toISOString()}, ${quick ? 'quick' : 'full'}: ${ROUNDS} round(s), single uploads ${SIZE} B (${(SIZE / MiB).toFixed(0)} MiB), concurrency ${CONCURRENCY.join('/')} x 1 MiB, tus-js-client chunk ${CHUNK / MiB} MiB`,
    `node ${env.node}, ${env.cpus} CPUs (${env.cpuModel}), ${env.memGiB} GiB, commit ${env.commit.slice(0, 12)}${env.modifiedFiles.length ? ` + ${env.modifiedFiles.length} modified file(s) in server/ stores/` : ''}`,
    `load average at start ${load1Start.map((v) => v.toFixed(2)).join(' ')}, at end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}; MB = 10^6 bytes; ratios are throughput_c / throughput_x`,
  ]
  const text = [
    ...header,
    '',
    main,
    ...(conc.length
      ? [
          '',
          'Concurrent uploads (POST + PATCH of 1 MiB each). HEADs to finished uploads during the load, from a separate prober process: on one',
          "kept-alive connection, and with Node's http client, which opens a new connection for every HEAD (tusgate's HEAD has no Content-Length).",
          'srv-side: from the access log; loop lag: prom-client event-loop delay over the load.',
          concTable,
        ]
      : []),
    '',
    'Targets:',
    targetText,
  ]
  const tusjs = of('c-tusjs')
  if (tusjs.length) {
    text.push(
      '',
      `Bench process (client) RSS during tus-js-client: ${f(median(tusjs.map((r) => (r.benchRssBeforeBytes ?? NaN) / 1e6)), 0)} MB before, ` +
        `${f(Math.max(...tusjs.map((r) => (r.benchPeakRssBytes ?? NaN) / 1e6)), 0)} MB peak (fs.ReadStream source, read slice by slice)`,
    )
  }
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
    options: {
      rounds: ROUNDS,
      size: SIZE,
      concurrency: CONCURRENCY,
      chunk: CHUNK,
      s3: WITH_S3,
      probeUploads: PROBE_UPLOADS,
      tusgateEnv: TUSGATE_ENV,
      tusgateMain: TUSGATE_MAIN,
      clientReadSize: Number(process.env.CLIENT_READ_SIZE ?? 65536),
    },
    environment: { ...env, loadavgStart: load1Start, loadavgEnd: loadEnd },
    summary: rows,
    concurrency: conc,
    targets,
    runs,
    profiles,
    failed: fatal?.message,
    durationSeconds: (Date.now() - benchStarted) / 1000,
  }
  writeFileSync(path.join(RESULTS_DIR, `${OUT}.json`), `${JSON.stringify(json, null, 2)}\n`)
  const svgSub = [
    `${ROUNDS} round(s), ${(SIZE / MiB).toFixed(0)} MiB single uploads, node ${env.node}, ${env.cpus} CPUs, load avg ${load1Start[0].toFixed(2)} -> ${loadEnd[0].toFixed(2)}`,
    ...targets.map((t) => `${t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED'}: ${t.name}: ${t.value}`),
  ]
  writeFileSync(path.join(RESULTS_DIR, `${OUT}.svg`), svgChart(rows, `tusgate bench (${json.date.slice(0, 16).replace('T', ' ')} UTC)`, svgSub))
  log(`wrote bench/results/${OUT}.json and bench/results/${OUT}.svg in ${elapsed()}`)
  if (fatal || errors.length) process.exitCode = 1
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack}\n`)
  process.exit(1)
})
