import { spawn } from 'node:child_process'

/** How long a hook process gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2_000

export interface RunOptions {
  /** The executable's absolute path; run without a shell and without arguments. */
  file: string
  cwd: string
  env: Record<string, string>
  /** Written to stdin, which is then closed. */
  input: string
  /** Aborting it kills the process. */
  signal: AbortSignal
  /** More stdout than this kills the process. */
  maxStdout: number
  /** How much of stderr is kept; the rest is read and dropped. */
  maxStderr: number
}

export interface RunResult {
  /** The exit code, or null when a signal ended the process. */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: Buffer
  /** The start of stderr, at most `maxStderr` bytes. */
  stderr: Buffer
  /** Whether more stderr came than was kept. */
  stderrCut: boolean
  /** Why tusgate killed the process, if it did: `signal` aborted, or stdout passed `maxStdout`. */
  killed?: 'aborted' | 'overflow'
}

/**
 * Runs an executable to its end, in a process group of its own so that killing it also kills what it
 * started (a shell script's `sleep`). Settles once its output is closed; rejects only when it cannot be
 * started (the spawn error: ENOENT, EACCES...). Every kill is sent to that group by its id.
 */
export function runExecutable(options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.file, [], { cwd: options.cwd, env: options.env, stdio: 'pipe', detached: true })
    const stdout: Buffer[] = []
    let stdoutBytes = 0
    const stderr: Buffer[] = []
    let stderrBytes = 0
    let stderrCut = false
    let killed: RunResult['killed']
    let escalation: NodeJS.Timeout | undefined
    let settled = false

    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, signal)
      } catch {
        // ESRCH: the whole group is gone already.
      }
    }
    const kill = (why: NonNullable<RunResult['killed']>) => {
      if (killed || settled) return
      killed = why
      signalGroup('SIGTERM')
      escalation = setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_MS)
    }
    const onAbort = () => kill('aborted')
    const finish = () => {
      settled = true
      clearTimeout(escalation)
      options.signal.removeEventListener('abort', onAbort)
    }

    child.stdout.on('data', (chunk: Buffer) => {
      if (killed) return
      stdoutBytes += chunk.length
      if (stdoutBytes > options.maxStdout) return kill('overflow')
      stdout.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      const room = options.maxStderr - stderrBytes
      if (chunk.length > room) stderrCut = true
      if (room <= 0) return
      const kept = chunk.subarray(0, room)
      stderr.push(kept)
      stderrBytes += kept.length
    })
    // A hook that exits without reading its stdin makes the write fail with EPIPE: its exit code tells the outcome.
    child.stdin.on('error', () => {})
    child.once('error', (error) => {
      if (settled) return
      finish()
      reject(error)
    })
    child.once('close', (code, signal) => {
      if (settled) return
      finish()
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr), stderrCut, killed })
    })
    if (options.signal.aborted) onAbort()
    else options.signal.addEventListener('abort', onAbort, { once: true })
    child.stdin.end(options.input)
  })
}
