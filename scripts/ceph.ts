import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CreateBucketCommand, ListBucketsCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'

// A real single-node Ceph for the tests and the bench: one monitor, one OSD on memstore (RAM, nothing on disk but
// logs), and radosgw, the S3 gateway, all as child processes of the test, on 127.0.0.1 with
// random ports, everything under one temporary directory. Auth between the daemons is off; S3
// requests are signed with a user made by radosgw-admin. Start-up takes about 2 s (4 s with
// three clusters starting at once on two cores): the monitor proposes map changes every 0.1 s
// instead of every 1 s, which would make it about 12 s.
//
// The daemons run in the foreground (`-f`), so each is the PID spawned here and ending that PID
// ends it. Should the test process die without stop(), a process 'exit' hook and, for a hard
// kill, a small watchdog shell end the daemons (by PID) and remove the directory.

export interface CephOptions {
  /** Whole start-up budget, after which start fails with the daemons' log tails. */
  startTimeoutMs?: number
  /** RAM the OSD may fill (memstore). The OSD reports full near this, so leave room over the data. */
  memstoreBytes?: number
  /** Appended to ceph.conf, e.g. `[client.rgw]\nrgw max put size = 1000`; a later line wins over an earlier one. */
  extraConf?: string
}

export interface CephCluster {
  /** radosgw's S3 endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  region: string
  /** What an S3Client (or @tus/s3-store's s3ClientConfig) needs for this gateway. */
  clientConfig: S3ClientConfig & { endpoint: string; region: string; forcePathStyle: true }
  /** A new S3Client on clientConfig. */
  client(): S3Client
  /** Creates a bucket and returns its name (a fresh unique one when none is given). */
  createBucket(name?: string): Promise<string>
  /** The temporary directory holding the conf, mon data, OSD data, sockets and logs. */
  dir: string
  pids: { mon: number; osd: number; rgw: number }
  /** Milliseconds from startCeph() until an S3 request succeeded. */
  startupMs: number
  /** The last lines of each daemon's log, for failure messages. */
  logTail(lines?: number): string
  /** Ends the daemons (SIGTERM, then SIGKILL) and removes the directory. Safe to call twice. */
  stop(): Promise<void>
  /** radosgw alone, for faults: killed (SIGKILL, as a crash) and started again on the same port. */
  gateway: {
    kill(): Promise<void>
    /** Resolves once the gateway answers HTTP again (rejects after `timeoutMs`). */
    start(timeoutMs?: number): Promise<void>
  }
}

const REGION = 'us-east-1'
const STOP_GRACE_MS = 3_000
const KILL_WAIT_MS = 5_000
const COMMAND_TIMEOUT_MS = 30_000

/** Start-up failed; the message ends with the daemons' log tails. The directory is already removed. */
export class CephStartError extends Error {
  constructor(
    message: string,
    readonly dir: string,
    readonly step: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
    this.name = 'CephStartError'
  }
}

interface Daemon {
  name: string
  child: ChildProcess
  exited: Promise<void>
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function tail(file: string, lines: number): string | undefined {
  if (!existsSync(file)) return undefined
  const text = readFileSync(file, 'utf8').trimEnd()
  return text.split('\n').slice(-lines).join('\n')
}

function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number, memstoreBytes: number): string {
  // `$name` is the daemon's type.id (mon.a, osd.0, client.rgw, client.admin).
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monPort}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind msgr2 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
# radosgw defaults to a 'secure' monitor connection, which auth 'none' cannot give.
ms mon client mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms cluster mode = crc
ms service mode = crc
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
crash dir = ${dir}/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
# Each OSD map change (OSD boot, every pool radosgw creates) waits for a Paxos round, 1 s by default.
paxos propose interval = 0.1

[mon]
mon data = ${dir}/mon/$name
mon cluster log file = ${dir}/log/cluster.log

[osd]
osd data = ${dir}/osd/$name
osd objectstore = memstore
memstore device bytes = ${memstoreBytes}
osd crush update on start = true

[client.rgw]
rgw data = ${dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw dns name = localhost
rgw enable usage log = false
rgw enable ops log = false
# Deleted and overwritten data sits in RAM until garbage-collected; collect soon.
rgw gc obj min wait = 10
rgw gc processor period = 10
`
}

/** Starts mon, OSD and radosgw; resolves once a signed S3 request succeeds. */
export async function startCeph(options: CephOptions = {}): Promise<CephCluster> {
  const { startTimeoutMs = 60_000, memstoreBytes = 4 * 1024 ** 3, extraConf = '' } = options
  const started = Date.now()
  const dir = mkdtempSync(path.join(tmpdir(), 'tusgate-ceph-'))
  for (const sub of ['run', 'log', 'mon', 'osd/osd.0', 'rgw', 'crash']) mkdirSync(path.join(dir, sub), { recursive: true })
  const conf = path.join(dir, 'ceph.conf')
  const pidList = path.join(dir, 'daemons.pids')
  writeFileSync(pidList, '')

  const env = { ...process.env }
  for (const key of Object.keys(env)) if (key.startsWith('CEPH_')) delete env[key]

  const daemons: Daemon[] = []
  const logFiles = ['mon.a.out', 'mon.a.log', 'osd.0.out', 'osd.0.log', 'client.rgw.out', 'client.rgw.log', 'commands.log']
  const logTail = (lines = 30) =>
    logFiles
      .map((f) => [f, tail(path.join(dir, 'log', f), lines)] as const)
      .filter(([, text]) => text)
      .map(([f, text]) => `----- ${f} (last ${lines} lines) -----\n${text}`)
      .join('\n')

  // Hard-death cleanup: a detached shell that waits for this process to go, then kills the
  // daemons listed in daemons.pids and removes the directory. stop() ends it first.
  const watchdogScript =
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; ' + 'for p in $(cat "$2/daemons.pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; rm -rf "$2"'
  const watchdog = spawn('/bin/sh', ['-c', watchdogScript, 'ceph-watchdog', String(process.pid), dir], {
    stdio: 'ignore',
    detached: true,
    env: { PATH: '/usr/bin:/bin' },
  })
  watchdog.unref()

  const onExit = () => {
    for (const d of daemons) if (running(d.child)) d.child.kill('SIGKILL')
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // the watchdog tries again
    }
  }
  process.on('exit', onExit)

  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      if (watchdog.pid !== undefined && running(watchdog)) watchdog.kill('SIGKILL')
      // The gateway first, while the cluster it talks to is still there; then the OSD; then the mon.
      const errors: unknown[] = []
      for (const d of [...daemons].reverse()) await endDaemon(d).catch((e: unknown) => errors.push(e))
      process.off('exit', onExit)
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
      if (errors.length > 0) throw new AggregateError(errors, `stopping Ceph in ${dir} failed`)
    })())

  // Every step of the start-up is cancelled by the deadline or by a daemon exiting.
  const abort = new AbortController()
  const deadline = setTimeout(() => abort.abort(new Error(`start-up took over ${startTimeoutMs} ms`)), startTimeoutMs)
  const check = () => {
    if (abort.signal.aborted) throw abort.signal.reason
  }

  const command = (file: string, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      check()
      execFile(
        file,
        args,
        { env, timeout: COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL', signal: abort.signal, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          appendFileSync(path.join(dir, 'log', 'commands.log'), `$ ${file} ${args.join(' ')}\n${stdout}${stderr}\n`)
          if (!error) return resolve(stdout)
          const hint = (error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (install radosgw, ceph-mon and ceph-osd: see .ci/run)' : ''
          reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}${hint}\n${stdout}${stderr}`))
        },
      )
    })

  const startDaemon = (name: string, file: string, args: string[]) => {
    check()
    return spawnDaemon(name, file, args)
  }

  const spawnDaemon = (name: string, file: string, args: string[]) => {
    const out = openSync(path.join(dir, 'log', `${name}.out`), 'a')
    const child = spawn(file, ['-f', '-c', conf, ...args], { env, stdio: ['ignore', out, out] })
    closeSync(out)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.once('error', () => {}) // a spawn failure also emits 'exit' (code -2), handled there
    void exited.then(() => {
      if (!stopping) abort.abort(new Error(`${name} exited (code ${child.exitCode}, signal ${child.signalCode})`))
    })
    if (child.pid === undefined) throw new Error(`could not start ${file} (install radosgw, ceph-mon and ceph-osd: see .ci/run)`)
    child.unref()
    appendFileSync(pidList, `${child.pid}\n`)
    daemons.push({ name, child, exited })
    return child.pid
  }

  /** Polls until `ready` resolves true (errors count as not yet), within the start-up budget. */
  const until = async (ready: () => Promise<boolean>) => {
    for (;;) {
      check()
      if (await ready().catch(() => false)) return
      await sleep(200, undefined, { signal: abort.signal }).catch(() => check())
    }
  }

  let step = 'choosing ports'
  try {
    const monPort = await freePort()
    let rgwPort = await freePort()
    while (rgwPort === monPort) rgwPort = await freePort()
    const fsid = randomUUID()
    writeFileSync(conf, `${cephConf(dir, fsid, monPort, rgwPort, memstoreBytes)}\n${extraConf}\n`)
    const endpoint = `http://127.0.0.1:${rgwPort}`

    step = 'creating the monitor'
    const monmap = path.join(dir, 'monmap')
    await command('monmaptool', ['--create', '--clobber', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, monmap])
    await command('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', monmap])

    step = 'starting the monitor'
    const mon = startDaemon('mon.a', 'ceph-mon', ['-i', 'a'])

    step = 'creating the OSD'
    const osdUuid = randomUUID()
    // Blocks until the monitor answers (within --connect-timeout).
    const osdId = (await command('ceph', ['-c', conf, '--connect-timeout', '20', 'osd', 'new', osdUuid])).trim()
    if (osdId !== '0') throw new Error(`expected OSD id 0, got '${osdId}'`)
    await command('ceph-osd', ['-c', conf, '--mkfs', '-i', '0', '--osd-uuid', osdUuid])

    step = 'starting the OSD and radosgw'
    const osd = startDaemon('osd.0', 'ceph-osd', ['-i', '0'])
    // radosgw waits for the OSD by itself, then creates its pools (one OSD map epoch each).
    const rgw = startDaemon('client.rgw', 'radosgw', ['-n', 'client.rgw'])

    step = 'waiting for radosgw to answer HTTP'
    await until(async () => {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.any([abort.signal, AbortSignal.timeout(2_000)]) })
      await res.arrayBuffer()
      return res.ok
    })

    step = 'creating the S3 user'
    const accessKeyId = `TUSGATE${randomBytes(8).toString('hex').toUpperCase()}`
    const secretAccessKey = randomBytes(20).toString('hex')
    await command('radosgw-admin', [
      '-c',
      conf,
      'user',
      'create',
      '--uid=tusgate',
      '--display-name=tusgate',
      `--access-key=${accessKeyId}`,
      `--secret=${secretAccessKey}`,
    ])

    const clientConfig = {
      endpoint,
      region: REGION,
      forcePathStyle: true as const,
      credentials: { accessKeyId, secretAccessKey },
      // Checksums on every request are an AWS extension; radosgw answers UploadPart with 411.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
    }
    const client = () => new S3Client(clientConfig)

    step = 'waiting for a signed S3 request to succeed'
    const probe = new S3Client({ ...clientConfig, maxAttempts: 1 })
    try {
      await until(async () => {
        await probe.send(new ListBucketsCommand({}), { abortSignal: AbortSignal.any([abort.signal, AbortSignal.timeout(5_000)]) })
        return true
      })
    } finally {
      probe.destroy()
    }

    clearTimeout(deadline)
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      region: REGION,
      clientConfig,
      client,
      async createBucket(name = `test-${randomBytes(6).toString('hex')}`) {
        const s3 = client()
        try {
          await s3.send(new CreateBucketCommand({ Bucket: name }))
        } finally {
          s3.destroy()
        }
        return name
      },
      dir,
      pids: { mon, osd, rgw },
      gateway: {
        async kill() {
          for (const d of daemons) {
            if (d.name !== 'client.rgw' || !running(d.child)) continue
            d.child.kill('SIGKILL')
            if (!(await within(d.exited, KILL_WAIT_MS))) throw new Error(`radosgw (pid ${d.child.pid}) did not exit after SIGKILL`)
          }
        },
        async start(timeoutMs = 30_000) {
          spawnDaemon('client.rgw', 'radosgw', ['-n', 'client.rgw'])
          const deadline = Date.now() + timeoutMs
          for (;;) {
            const ok = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) }).then(
              async (res) => {
                await res.arrayBuffer()
                return res.ok
              },
              () => false,
            )
            if (ok) return
            if (Date.now() > deadline) throw new Error(`radosgw did not answer within ${timeoutMs} ms after its restart\n${logTail(20)}`)
            await sleep(100)
          }
        },
      },
      startupMs: Date.now() - started,
      logTail,
      stop,
    }
  } catch (error) {
    clearTimeout(deadline)
    const cause = abort.signal.aborted && error !== abort.signal.reason ? `${(abort.signal.reason as Error).message}; ` : ''
    const logs = logTail(40)
    await stop().catch(() => {})
    throw new CephStartError(`Ceph did not start (step: ${step}; after ${Date.now() - started} ms): ${cause}${(error as Error).message}\n${logs}`, dir, step, {
      cause: error,
    })
  }
}

/** Whether `promise` settles within `ms` (the timer is cleared either way, so nothing lingers). */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)))
  try {
    return await Promise.race([promise.then(() => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function endDaemon(d: Daemon): Promise<void> {
  if (!running(d.child)) return
  d.child.kill('SIGTERM')
  if (await within(d.exited, STOP_GRACE_MS)) return
  d.child.kill('SIGKILL')
  if (!(await within(d.exited, KILL_WAIT_MS))) throw new Error(`${d.name} (pid ${d.child.pid}) did not exit after SIGKILL`)
}
