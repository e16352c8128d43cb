import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server'

export interface RedisServer {
  port: number
  url: string
  /** The running server's PID (changes on restart). */
  readonly pid: number
  /** Whether the server process is up. */
  readonly running: boolean
  /** Its output so far, for failure messages. */
  output(): string
  /** Kills the server by PID (SIGKILL by default) and waits for it to exit. Idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port, empty (nothing is persisted). */
  start(): Promise<void>
  /** stop() then start(). */
  restart(): Promise<void>
  /** stop() and remove its folder. */
  dispose(): Promise<void>
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; free when this resolves). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Resolves when `PING` on 127.0.0.1:port answers `+PONG`; rejects after `timeoutMs`. */
export async function waitForPing(port: number, timeoutMs = 10_000, exited?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await pingOnce(port)) return
    if (exited?.()) throw new Error(`redis-server on port ${port} exited before answering PING`)
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    let reply = ''
    const finish = (ok: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false), 500)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'))
    })
    socket.on('error', () => finish(false))
  })
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * A real redis-server on 127.0.0.1 and a free port, persisting nothing (`--save '' --appendonly no`),
 * in a temporary folder; resolves once it answers PING (within 10 s).
 */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tusgate-redis-'))
  let port = await freePort()
  let child: ChildProcess | undefined
  let exited = true
  let out = ''

  const start = async () => {
    if (!exited) throw new Error('redis-server is already running')
    out = ''
    const proc = spawn(
      REDIS_SERVER,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--logfile', ''],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    child = proc
    exited = false
    running.add(proc)
    proc.stdout?.on('data', (c) => (out += c))
    proc.stderr?.on('data', (c) => (out += c))
    proc.once('exit', () => {
      if (child === proc) exited = true
      running.delete(proc)
    })
    proc.once('error', (error) => {
      out += String(error)
      if (child === proc) exited = true
    })
    try {
      await waitForPing(port, 10_000, () => exited)
    } catch (error) {
      await stop()
      throw new Error(`${(error as Error).message}\n${out}`)
    }
  }

  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    const proc = child
    if (!proc || exited) return
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    process.kill(proc.pid as number, signal)
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
    await gone
    clearTimeout(timer)
  }

  // A port picked free can be taken before redis-server binds it: pick another, a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      await start()
      break
    } catch (error) {
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
      port = await freePort()
    }
  }

  return {
    get port() {
      return port
    },
    get url() {
      return `redis://127.0.0.1:${port}`
    },
    get pid() {
      return child?.pid as number
    },
    get running() {
      return !exited
    },
    output: () => out,
    stop,
    start,
    async restart() {
      await stop()
      await start()
    },
    async dispose() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
