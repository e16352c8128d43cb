import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import winston from 'winston'
import { createApp } from '../../server/app.js'
import { loadConfig } from '../../server/config.js'
import { listen } from '../../server/httpServer.js'
import { createLogger, type Logger } from '../../server/logger.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export function tempDir(prefix = 'tusgate-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export interface InProcessServer {
  url: string
  dir: string
  logs: Record<string, unknown>[]
  app: Awaited<ReturnType<typeof createApp>>
  stop(): Promise<void>
}

/** A debug-level logger in the production JSON format whose lines are captured, parsed, in `logs`. */
export function capturedLogger(): { logger: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = []
  const capture = new Writable({
    write(line, _enc, done) {
      logs.push(JSON.parse(String(line)))
      done()
    },
  })
  const logger = createLogger({ LOG_LEVEL: 'debug', LOG_FORMAT: 'json' }, new winston.transports.Stream({ stream: capture }))
  return { logger, logs }
}

/** tusgate in the test's own process on 127.0.0.1, with a fresh FILE_DIR and its log lines captured. */
export async function startServer(env: Record<string, string> = {}): Promise<InProcessServer> {
  const temp = tempDir()
  const dir = path.join(temp.dir, 'data')
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', FILE_DIR: dir, ...env })
  const { logger, logs } = capturedLogger()
  const app = await createApp(config, logger)
  const running = await listen(config, app, logger)
  return {
    url: `http://127.0.0.1:${running.port}`,
    dir,
    logs,
    app,
    async stop() {
      await running.shutdown()
      temp.remove()
    },
  }
}

/**
 * A server for the tests of the enclosing describe block (or file): started before them, stopped after.
 * Its fields read through to the running server.
 */
export function useServer(env: Record<string, string> = {}): InProcessServer {
  let server: InProcessServer | undefined
  beforeAll(async () => {
    server = await startServer(env)
  })
  afterAll(() => server?.stop())
  const running = (): InProcessServer => {
    if (!server) throw new Error('useServer: the server starts in beforeAll; use it inside a test')
    return server
  }
  return {
    get url() {
      return running().url
    },
    get dir() {
      return running().dir
    },
    get logs() {
      return running().logs
    },
    get app() {
      return running().app
    },
    stop: () => running().stop(),
  }
}

export interface ServerProcess {
  url: string
  port: number
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * tusgate as its own process (`node --import tsx server/main.ts`), for crashes, signals and start-up;
 * with `openFiles`, under that limit of open files (`ulimit -n`, the shell exec'ing node in its place).
 */
export async function startProcess(
  env: Record<string, string>,
  { waitMs = 15_000, openFiles }: { waitMs?: number; openFiles?: number } = {},
): Promise<ServerProcess> {
  const node = [process.execPath, '--import', 'tsx', 'server/main.ts']
  const [command, ...args] = openFiles ? ['/bin/sh', '-c', `ulimit -n ${openFiles} && exec "$@"`, 'sh', ...node] : node
  const child = spawn(command, args, {
    cwd: ROOT,
    // One process unless a test asks for workers (WORKERS defaults to the machine's cores).
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_FORMAT: 'json', WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (c) => (out += c))
  child.stderr?.on('data', (c) => (out += c))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), waitMs)
    const check = () => {
      const match = /"message":"listening".*?"port":(\d+)/.exec(out) ?? /"port":(\d+).*?"message":"listening"/.exec(out)
      if (match) {
        clearTimeout(deadline)
        child.stdout?.off('data', check)
        resolve(Number(match[1]))
      }
    }
    child.stdout?.on('data', check)
    void exited.then((code) => {
      clearTimeout(deadline)
      reject(new Error(`server exited with ${code}:\n${out}`))
    })
  })
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/**
 * Server processes and temp folders for a test file, each cleaned up by `cleanup()` (call it in
 * afterEach) even when a failing test left them behind.
 */
export function processPool(prefix: string, defaults: Record<string, string> = {}) {
  const running = new Set<ServerProcess>()
  const dirs: Array<{ remove(): void }> = []
  const pool = {
    newDir(): string {
      const temp = tempDir(prefix)
      dirs.push(temp)
      return temp.dir
    },
    async launch(dir: string, env: Record<string, string> = {}, options: { openFiles?: number } = {}): Promise<ServerProcess> {
      const server = await startProcess({ FILE_DIR: path.join(dir, 'data'), SHUTDOWN_TIMEOUT: '2s', ...defaults, ...env }, options)
      running.add(server)
      return server
    },
    /** Stops a process by its handle; escalates to SIGKILL if it has not exited within 5 s. */
    async stop(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
      const escalate = setTimeout(() => server.child.kill('SIGKILL'), 5_000)
      try {
        await server.stop(signal)
      } finally {
        clearTimeout(escalate)
        running.delete(server)
      }
    },
    async cleanup(): Promise<void> {
      await Promise.all([...running].map((server) => pool.stop(server, 'SIGKILL')))
      for (const dir of dirs.splice(0)) dir.remove()
    },
  }
  return pool
}
