import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import { ROOT, tempDir } from './servers.js'

// Azurite's blob service as a child of the test: `node .../blob/main.js` is the service itself (no
// shell, no npm wrapper), so the PID spawned here is the one to end. It listens on 127.0.0.1, port 0
// (the kernel picks a free one; Azurite prints it), keeps its data in a temporary directory, and
// sends no telemetry.

/** Azurite's well-known development account. */
export const AZURITE_ACCOUNT = 'devstoreaccount1'
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

const ENTRY = path.join(ROOT, 'node_modules/azurite/dist/src/blob/main.js')

export interface Azurite {
  /** `http://127.0.0.1:<port>/devstoreaccount1`, the account's blob endpoint. */
  endpoint: string
  port: number
  readonly pid: number
  /** What tusgate needs to use this account (add AZURE_CONTAINER). */
  env: Record<string, string>
  /** An SDK client on this account. */
  client(): BlobServiceClient
  /** A fresh container name (not created). */
  containerName(): string
  output(): string
  /** Ends the process by its PID (SIGTERM, then SIGKILL) and removes its directory. Safe to call twice. */
  stop(): Promise<void>
  /** Stops the service (SIGTERM, then SIGKILL), keeping its data, for faults. */
  pause(): Promise<void>
  /** Starts it again on the same port and data; resolves once it answers. */
  resume(): Promise<void>
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null

/** Any HTTP answer at all means the service is up (an unsigned request gets a 4xx). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1_000 }, (res) => {
      res.resume()
      resolve(true)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
  })
}

export async function startAzurite({ startTimeoutMs = 20_000 } = {}): Promise<Azurite> {
  const temp = tempDir('tusgate-azurite-')
  let out = ''
  const launch = (port: number) => {
    const proc = spawn(
      process.execPath,
      [
        ENTRY,
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--location',
        temp.dir,
        '--silent',
        '--skipApiVersionCheck',
        '--loose',
        '--disableTelemetry',
      ],
      { cwd: temp.dir, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    proc.stdout?.on('data', (c) => (out += c))
    proc.stderr?.on('data', (c) => (out += c))
    return { proc, exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())) }
  }
  let { proc: child, exited } = launch(0)
  // Should the test process end without stop(), the service must not outlive it.
  const onExit = () => {
    if (alive(child)) child.kill('SIGKILL')
  }
  process.once('exit', onExit)

  /** Ends the process by its PID: SIGTERM (Azurite saves its state), then SIGKILL. */
  const end = async () => {
    if (!alive(child)) return
    child.kill('SIGTERM')
    const killed = await Promise.race([exited.then(() => true), sleep(3_000, false, { ref: false })])
    if (!killed && alive(child)) {
      child.kill('SIGKILL')
      await exited
    }
  }
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      process.off('exit', onExit)
      await end()
      temp.remove()
    })()
    return stopped
  }

  /** Resolves once the service answers at `endpoint` (any HTTP answer), within the start-up budget. */
  const answering = async (endpoint: string, deadline: number) => {
    while (!(await answers(`${endpoint}?comp=list`))) {
      if (!alive(child)) throw new Error(`azurite exited with ${child.exitCode ?? child.signalCode}`)
      if (Date.now() > deadline) throw new Error(`azurite did not answer within ${startTimeoutMs} ms`)
      await sleep(50)
    }
  }

  try {
    const deadline = Date.now() + startTimeoutMs
    let port: number | undefined
    while (port === undefined) {
      if (!alive(child)) throw new Error(`azurite exited with ${child.exitCode ?? child.signalCode}`)
      if (Date.now() > deadline) throw new Error(`azurite printed no port within ${startTimeoutMs} ms`)
      const match = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)
      if (match) port = Number(match[1])
      else await sleep(50)
    }
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`
    await answering(endpoint, deadline)
    const chosen = port
    return {
      endpoint,
      port,
      get pid() {
        return child.pid as number
      },
      env: { AZURE_ACCOUNT_NAME: AZURITE_ACCOUNT, AZURE_ACCOUNT_KEY: AZURITE_KEY, AZURE_ENDPOINT: endpoint },
      client: () => new BlobServiceClient(endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)),
      containerName: () => `tusgate-${randomBytes(6).toString('hex')}`,
      output: () => out,
      stop,
      pause: end,
      async resume() {
        if (alive(child)) return
        ;({ proc: child, exited } = launch(chosen))
        await answering(endpoint, Date.now() + startTimeoutMs)
      },
    }
  } catch (error) {
    await stop()
    throw new Error(`${(error as Error).message}\n${out}`)
  }
}
