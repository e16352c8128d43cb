// Sends HEADs to already-finished uploads, round-robin, and records their latencies between a "start"
// and a "stop" line on stdin; then prints one JSON line with the percentiles and exits.
//
// Two loops, each one request at a time with PROBE_GAP_MS between requests:
//  - keepAlive: one persistent connection, opened before the load (a minimal HTTP/1.1 client on a raw
//    socket): the server's own HEAD latency under load;
//  - fresh: Node's http client on a new TCP connection for every HEAD (no agent), as a client resuming
//    after a network change would: this adds the cost of getting a connection accepted while the load's
//    own connections arrive.
// Env: PROBE_URLS (JSON list), PROBE_LENGTH, PROBE_GAP_MS (5).
import http from 'node:http'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'

const urls = JSON.parse(process.env.PROBE_URLS ?? '[]') as string[]
const length = Number(process.env.PROBE_LENGTH)
const gapMs = Number(process.env.PROBE_GAP_MS ?? 5)

let recording = false
let recordingSince = 0
let stopping = false

/**
 * A HEAD's latency; for one on a new connection, how much of it went to getting connected (the kernel's
 * handshake) and the request id it was sent with, by which the bench finds when the server read it.
 */
type Timing = { ms: number; connectMs?: number; requestId?: string }

class Series {
  latencies: number[] = []
  /** [ms after "start" the HEAD was sent, its latency, wall-clock ms it was sent, ms until connected, request id] */
  timeline: [number, number, number, number | undefined, string | undefined][] = []
  errors = 0
  errorSamples: string[] = []
  newConnections = 0
  /** The HEAD in flight; one still unanswered at "stop" counts with its wait so far (a lower bound). */
  private inFlight?: { startedMs: number; sentAt: number; sentEpochMs: number }
  pendingAtStop = 0
  /** Counts every HEAD answered during the load (one sent just before it included) and, at "stop", the one still waiting. */
  async measure(fn: () => Promise<Timing>) {
    const sentAt = performance.now() - recordingSince
    const sentEpochMs = Date.now()
    this.inFlight = { startedMs: performance.now(), sentAt, sentEpochMs }
    try {
      const { ms, connectMs, requestId } = await fn()
      if (recording) {
        this.latencies.push(ms)
        this.timeline.push([
          Math.round(sentAt),
          Math.round(ms * 10) / 10,
          sentEpochMs,
          connectMs === undefined ? undefined : Math.round(connectMs * 10) / 10,
          requestId,
        ])
      }
    } catch (error) {
      if (recording) {
        this.errors++
        if (this.errorSamples.length < 5) this.errorSamples.push((error as Error).message)
      }
    } finally {
      this.inFlight = undefined
    }
  }
  /** At "stop": a HEAD still waiting counts, with how long it has waited. */
  closeInFlight() {
    if (!this.inFlight || !recording) return
    const ms = performance.now() - this.inFlight.startedMs
    this.latencies.push(ms)
    this.timeline.push([Math.round(this.inFlight.sentAt), Math.round(ms * 10) / 10, this.inFlight.sentEpochMs, undefined, undefined])
    this.pendingAtStop++
    this.inFlight = undefined
  }
  result() {
    const sorted = [...this.latencies].sort((a, b) => a - b)
    const percentile = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN)
    return {
      count: sorted.length,
      errors: this.errors,
      errorSamples: this.errorSamples,
      newConnections: this.newConnections,
      pendingAtStop: this.pendingAtStop,
      p50: percentile(50),
      p90: percentile(90),
      p99: percentile(99),
      max: sorted.at(-1) ?? NaN,
      slowest: [...this.timeline]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8)
        .map(([atMs, ms, sentEpochMs, connectMs, requestId]) => ({ atMs, ms, sentEpochMs, connectMs, requestId })),
    }
  }
}

const check = (status: number | undefined, offset: unknown) => {
  if (status !== 200 || Number(offset) !== length) throw new Error(`HEAD ${status} offset ${offset}`)
}

/** A persistent HTTP/1.1 connection sending HEADs one at a time; reconnects (counted) if the server closes it. */
class RawConnection {
  private socket?: net.Socket
  private buffer = ''
  private waiting?: { resolve: (head: string) => void; reject: (e: Error) => void }
  constructor(
    private readonly port: number,
    private readonly series: Series,
  ) {}
  private connect(): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1')
      socket.setNoDelay(true)
      socket.setEncoding('latin1')
      socket.once('connect', () => resolve(socket))
      socket.once('error', reject)
      socket.on('data', (chunk: string) => {
        this.buffer += chunk
        const end = this.buffer.indexOf('\r\n\r\n')
        if (end >= 0 && this.waiting) {
          const head = this.buffer.slice(0, end)
          this.buffer = this.buffer.slice(end + 4) // a HEAD response has no body
          this.waiting.resolve(head)
          this.waiting = undefined
        }
      })
      socket.on('close', () => {
        if (this.socket === socket) this.socket = undefined
        this.waiting?.reject(new Error('connection closed'))
        this.waiting = undefined
      })
    })
  }
  async head(url: string): Promise<Timing> {
    if (!this.socket) {
      if (recording) this.series.newConnections++
      this.buffer = ''
      this.socket = await this.connect()
    }
    const socket = this.socket
    const { pathname, host } = new URL(url)
    const started = process.hrtime.bigint()
    const head = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new Error('HEAD timeout')), 30_000)
      const done =
        <T>(f: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer)
          f(v)
        }
      this.waiting = { resolve: done(resolve), reject: done(reject) }
      socket.write(`HEAD ${pathname} HTTP/1.1\r\nHost: ${host}\r\nTus-Resumable: 1.0.0\r\n\r\n`)
    })
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1])
    const offset = /\r\nupload-offset:\s*(\d+)/i.exec(head)?.[1]
    check(status, offset)
    return { ms }
  }
}

let probes = 0
function nodeHead(url: string, series: Series): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const requestId = `probe-${++probes}`
    const req = http.request(url, { method: 'HEAD', agent: false, headers: { 'Tus-Resumable': '1.0.0', 'X-Request-Id': requestId } }, (res) => {
      res.resume()
      res.on('end', () => {
        try {
          check(res.statusCode, res.headers['upload-offset'])
          resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, connectMs, requestId })
        } catch (error) {
          reject(error)
        }
      })
    })
    let connectMs: number | undefined
    req.once('socket', (socket) => {
      if (!req.reusedSocket && recording) series.newConnections++
      if (socket.connecting) socket.once('connect', () => (connectMs = Number(process.hrtime.bigint() - started) / 1e6))
    })
    req.setTimeout(30_000, () => req.destroy(new Error('HEAD timeout')))
    req.on('error', reject)
    req.end()
  })
}

const keepAlive = new Series()
const fresh = new Series()
const raw = new RawConnection(Number(new URL(urls[0]).port), keepAlive)

async function loop(series: Series, send: (url: string) => Promise<Timing>, first: number) {
  let i = first
  while (!stopping) {
    await series.measure(() => send(urls[i++ % urls.length]))
    await sleep(gapMs)
  }
}

let running: Promise<unknown> | undefined
const lines = createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  if (line === 'start') {
    recording = true
    recordingSince = performance.now()
  }
  if (line === 'stop') {
    keepAlive.closeInFlight()
    fresh.closeInFlight()
    recording = false
    stopping = true
    await running
    process.stdout.write(`${JSON.stringify({ keepAlive: keepAlive.result(), fresh: fresh.result() })}\n`)
    process.exit(0)
  }
})

// Open the persistent connection and warm both paths before saying ready.
void (async () => {
  await raw.head(urls[0]).catch(() => {})
  await nodeHead(urls[0], fresh).catch(() => {})
  running = Promise.all([loop(keepAlive, (u) => raw.head(u), 0), loop(fresh, (u) => nodeHead(u, fresh), 1)])
  process.stdout.write('ready\n')
})()
