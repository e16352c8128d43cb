import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** Every child this bench started and has not seen exit: ended (by PID) when the bench exits. */
const children = new Set<ChildProcess>()
const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null
process.on('exit', () => {
  for (const child of children) if (alive(child)) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) if (alive(child)) child.kill('SIGKILL')
    process.exit(130)
  })
}

/** Registers a child so the bench ends it (by its PID) if the bench exits first. */
export function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

export interface ServerChild {
  name: string
  pid: number
  port: number
  url: string
  child: ChildProcess
  logFile: string
  exited: Promise<void>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** A port free on 127.0.0.1 now (the kernel's pick), for a child to listen on. */
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

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })

/**
 * A server as its own process on a free port (given to it as PORT), with stdout and stderr going to
 * `logFile` (as a deployment would log to a file); ready once the port accepts connections. `args` go
 * to this Node unless `executable` names another program (tusd).
 */
export async function startServerChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  logFile: string,
  { timeoutMs = 30_000, executable = process.execPath } = {},
): Promise<ServerChild> {
  const port = await freePort()
  const fd = openSync(logFile, 'a')
  const child = spawn(executable, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env, PORT: String(port) },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  if (child.pid === undefined) throw new Error(`could not start ${name}`)
  children.add(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => children.delete(child))
  const started = Date.now()
  while (!(await accepts(port))) {
    if (!alive(child))
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${readFileSync(logFile, 'utf8').slice(-3000)}`)
    if (Date.now() - started > timeoutMs) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not listen within ${timeoutMs} ms:\n${readFileSync(logFile, 'utf8').slice(-3000)}`)
    }
    await sleep(25)
  }
  const pid = child.pid
  return {
    name,
    pid,
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    logFile,
    exited,
    async stop(graceMs = 15_000) {
      if (!alive(child)) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => alive(child) && child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/** `node --import tsx <script>` with the bench's conventions. */
export const tsxArgs = (script: string, extra: string[] = []) => [...extra, '--import', 'tsx', script]

function procStatus(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM), or undefined once the process is gone. */
export function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number | undefined {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(procStatus(pid) ?? '')
  return match ? Number(match[1]) : undefined
}

/** User + system CPU seconds a process has used so far (/proc/<pid>/stat). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) -> index 11 and 12 here
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return NaN
  }
}

/** A process and its descendants (a server's workers), from /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const out = [pid]
  for (let i = 0; i < out.length && i < 1000; i++) {
    let tasks: string[]
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`)
    } catch {
      continue
    }
    for (const task of tasks) {
      try {
        for (const child of readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').split(' ')) if (child.trim()) out.push(Number(child))
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return out
}

/** CPU seconds of a process and its descendants alive now (a worker that died meanwhile is not counted). */
export const treeCpuSeconds = (pid: number): number => processTree(pid).reduce((sum, p) => sum + (Number.isFinite(cpuSeconds(p)) ? cpuSeconds(p) : 0), 0)

/** CPU seconds of this process's children that have ended and been waited for (curl), from /proc/self/stat. */
export function reapedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // cutime 16, cstime 17 (1-based) -> index 13 and 14 here
  return (Number(fields[13]) + Number(fields[14])) / CLK_TCK
}

/** Whole-machine busy and total CPU seconds (/proc/stat), to tell how much other work ran meanwhile. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = v[3] + (v[4] ?? 0)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK }
}

/**
 * Samples the VmRSS of a process and its descendants, summed, every `everyMs` until stopped; the peak in
 * bytes, plus the kernel's VmHWM at stop for a single process (for several, the sampled sum is what counts).
 */
export class RssSampler {
  private timer: NodeJS.Timeout
  private peakKiB = 0
  private peakAnonKiB = 0
  private processes = 1
  samples = 0
  constructor(
    private readonly pid: number,
    everyMs = 50,
  ) {
    const sample = () => {
      const tree = this.pid === process.pid ? [this.pid] : processTree(this.pid)
      this.processes = Math.max(this.processes, tree.length)
      let kib = 0
      for (const p of tree) kib += p === process.pid ? process.memoryUsage.rss() / 1024 : (statusKiB(p, 'VmRSS') ?? 0)
      if (kib > 0) {
        this.samples++
        if (kib > this.peakKiB) this.peakKiB = kib
      }
      const anon = tree.reduce((sum, p) => sum + (p === process.pid ? 0 : (statusKiB(p, 'RssAnon') ?? 0)), 0)
      if (anon > this.peakAnonKiB) this.peakAnonKiB = anon
    }
    sample()
    this.timer = setInterval(sample, everyMs)
  }
  stop(): { peakBytes: number; hwmBytes: number | undefined; peakAnonBytes: number; samples: number } {
    clearInterval(this.timer)
    const hwm = this.processes === 1 ? statusKiB(this.pid, 'VmHWM') : undefined
    return {
      peakBytes: this.peakKiB * 1024,
      hwmBytes: hwm === undefined ? undefined : hwm * 1024,
      peakAnonBytes: this.peakAnonKiB * 1024,
      samples: this.samples,
    }
  }
}

/** Flushes dirty pages machine-wide, so one scenario's write-back does not land in the next one's time. */
export function syncDisks(): void {
  spawnSync('sync', [], { stdio: 'ignore' })
}
