import { type ChildProcess, spawn } from 'node:child_process'
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ERRORS, Upload } from '@tus/utils'
import { fileStore } from '../stores/file/index.js'
import { FileLocker } from '../stores/lockers/file.js'
import { lockerNames } from '../stores/registry.js'
import { createUpload, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { processPool, ROOT, tempDir } from './helpers/servers.js'
import { until } from './helpers/wait.js'

// The file locker (LOCKER=file) over a real folder: in one process, across child processes that share
// the folder, and under two tusgate processes sharing one FILE_DIR. LOCK_TTL is 1 s in the unit tests.
const TTL = 1000
const NODE = path.join(ROOT, 'node_modules/.bin/node')

const never = () => new AbortController().signal
const noop = () => {}

let dirs: Array<{ dir: string; remove(): void }> = []
const lockers: FileLocker[] = []
const children: ChildProcess[] = []
const pool = processPool('tusgate-filelock-')

function lockDir(): string {
  const temp = tempDir('tusgate-locks-')
  dirs.push(temp)
  return temp.dir
}

function makeLocker(dir: string, { timeoutMs = 10_000, ttlMs = TTL } = {}): FileLocker {
  const locker = new FileLocker({ dir, timeoutMs, ttlMs })
  lockers.push(locker)
  return locker
}

/** A fileLockHolder.ts child; its output collected. */
function holder(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<unknown> } {
  const child = spawn(NODE, ['--import', 'tsx', 'test/helpers/fileLockHolder.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, LOCK_TTL: String(TTL), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let out = ''
  child.stdout?.on('data', (c) => (out += c))
  child.stderr?.on('data', (c) => (out += c))
  return { child, output: () => out, exited: new Promise((resolve) => child.once('exit', resolve)) }
}

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const locker of lockers.splice(0)) locker.close()
  await pool.cleanup()
  for (const dir of dirs) dir.remove()
  dirs = []
})

test('the registry offers the file locker', () => {
  expect(lockerNames).toContain('file')
})

test('contenders over two lockers on one folder: one holder at a time, no lost update, holders asked to let go', async () => {
  const dir = lockDir()
  const pair = [makeLocker(dir), makeLocker(dir)]
  let holders = 0
  let maxHolders = 0
  let counter = 0
  let asked = 0
  await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      const lock = pair[i % 2].newLock('upload-c')
      await lock.lock(never(), () => void asked++)
      holders++
      maxHolders = Math.max(maxHolders, holders)
      const seen = counter
      await sleep(5)
      counter = seen + 1
      holders--
      await lock.unlock()
    }),
  )
  expect(maxHolders).toBe(1)
  expect(counter).toBe(12)
  expect(asked).toBeGreaterThan(0)
  // Every lock given back: no lock or release file left.
  expect(await readdir(dir)).toEqual([])
}, 30_000)

test('three processes take one lock 30 times each and increment a counter file: no lost update', async () => {
  const dir = lockDir()
  const counter = path.join(dir, 'counter')
  await writeFile(counter, '0')
  const rounds = 30
  const workers = Array.from({ length: 3 }, () => holder({ MODE: 'count', LOCK_DIR: dir, LOCK_ID: 'upload-n', COUNTER_FILE: counter, ROUNDS: String(rounds) }))
  await Promise.all(workers.map((w) => w.exited))
  for (const w of workers) expect(w.output()).toContain('done\n')
  expect(Number(await readFile(counter, 'utf8'))).toBe(3 * rounds)
}, 60_000)

test("a waiter in another process makes the holder's requestRelease run, then gets the lock", async () => {
  const dir = lockDir()
  const child = holder({ MODE: 'hold', LET_GO: '1', LOCK_DIR: dir, LOCK_ID: 'upload-r' })
  await until(() => child.output().includes('locked\n'), 20_000, `the holder process to lock (output: ${child.output()})`)
  const lock = makeLocker(dir).newLock('upload-r')
  await lock.lock(never(), noop)
  expect(child.output()).toContain('release requested\n')
  // Held here now; the child let go before (its file would otherwise still be there and fresh).
  await until(() => child.output().includes('unlocked\n'), 5_000, 'the holder to report its unlock')
  expect(await readdir(dir)).toEqual(['upload-r.lock'])
  await lock.unlock()
  expect(await readdir(dir)).toEqual([])
}, 30_000)

test('a holder that cannot watch the folder (as on NFS) still hears a release request, by polling', async () => {
  const dir = path.join(lockDir(), 'later')
  // Made before its folder exists, this locker has no watch.
  const unwatched = makeLocker(dir)
  await mkdir(dir)
  const held = unwatched.newLock('upload-p')
  let asked = 0
  await held.lock(never(), () => {
    asked++
    void held.unlock()
  })
  await makeLocker(dir).newLock('upload-p').lock(never(), noop)
  expect(asked).toBe(1)
}, 20_000)

test("a live holder's lock is never taken over; a SIGKILLed holder's is, once it is LOCK_TTL old", async () => {
  const dir = lockDir()
  // A longer TTL here: refreshes every second leave a loaded machine two seconds of slack.
  const ttl = 3 * TTL
  const child = holder({ MODE: 'hold', LOCK_DIR: dir, LOCK_ID: 'upload-k', LOCK_TTL: String(ttl) })
  await until(() => child.output().includes('locked\n'), 20_000, `the holder process to lock (output: ${child.output()})`)
  // Alive, it refreshes its lock: waiting 3.5 TTLs gets nothing, and it was asked to let go.
  const locker = makeLocker(dir, { timeoutMs: 3.5 * ttl, ttlMs: ttl })
  await expect(locker.newLock('upload-k').lock(never(), noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(child.output()).toContain('release requested\n')

  child.child.kill('SIGKILL')
  await child.exited
  const lastSignOfLife = (await stat(path.join(dir, 'upload-k.lock'))).mtimeMs
  const lock = locker.newLock('upload-k')
  await lock.lock(never(), noop)
  expect(Date.now() - lastSignOfLife).toBeGreaterThanOrEqual(ttl)
  await lock.unlock()
}, 40_000)

test('ERR_LOCK_TIMEOUT after the timeout and on an aborted signal; unlock without the lock throws', async () => {
  const dir = lockDir()
  const holding = makeLocker(dir).newLock('upload-t')
  await holding.lock(never(), noop)
  const started = Date.now()
  await expect(makeLocker(dir, { timeoutMs: 300 }).newLock('upload-t').lock(never(), noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  expect(Date.now() - started).toBeGreaterThanOrEqual(290)

  const waiting = new AbortController()
  const aborted = makeLocker(dir).newLock('upload-t').lock(waiting.signal, noop)
  waiting.abort()
  await expect(aborted).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  const early = new AbortController()
  early.abort()
  await expect(makeLocker(dir).newLock('upload-free').lock(early.signal, noop)).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT)
  // An aborted lock() leaves no lock behind.
  expect((await readdir(dir)).filter((name) => name.endsWith('.lock'))).toEqual(['upload-t.lock'])

  await holding.unlock()
  await expect(holding.unlock()).rejects.toThrow('Releasing an unlocked lock!')
  await expect(makeLocker(dir).newLock('upload-t').unlock()).rejects.toThrow('Releasing an unlocked lock!')
}, 20_000)

test('the sweep removes what dead holders left once older than LOCK_TTL, and nothing fresh, held or still asked for', async () => {
  const dir = lockDir()
  const locker = makeLocker(dir)
  const held = locker.newLock('held')
  await held.lock(never(), noop)
  const old = new Date(Date.now() - 5 * TTL)
  const leftovers: Record<string, boolean> = {
    'dead.lock': true, // its holder died and nobody resumed the upload
    [`taken.lock.${'a'.repeat(32)}.aside`]: true, // a crash mid-takeover
    'gone.release': true, // asked of a lock that is gone
    'waiting.lock': false, // fresh: a live holder
    'waiting.release': false, // old, but its lock is there
  }
  for (const name of Object.keys(leftovers)) {
    await writeFile(path.join(dir, name), JSON.stringify({ token: 'x' }))
    if (name !== 'waiting.lock') await utimes(path.join(dir, name), old, old)
  }
  expect(await locker.sweep()).toBe(3)
  expect((await readdir(dir)).sort()).toEqual(['held.lock', 'waiting.lock', 'waiting.release'])
  await held.unlock()
})

test('ids that are no plain file names get a file name of their own inside the folder', async () => {
  const dir = lockDir()
  const locker = makeLocker(dir)
  const odd = locker.newLock('../escape/me')
  await odd.lock(never(), noop)
  const names = await readdir(dir)
  expect(names).toHaveLength(1)
  expect(names[0]).toMatch(/^~[0-9a-f]{64}\.lock$/)
  await odd.unlock()
})

test('the file store takes no lock file for an upload: not listed, not an orphan', async () => {
  const dir = lockDir()
  const store = await fileStore.create({ directory: dir, fsync: false, expiresAfterMs: 1 })
  const id = 'a'.repeat(32)
  await store.datastore.create(new Upload({ id, size: 4, offset: 0 }))
  await mkdir(path.join(dir, '.locks'))
  const locker = makeLocker(path.join(dir, '.locks'))
  const lock = locker.newLock(id)
  await lock.lock(never(), noop)
  await writeFile(path.join(dir, '.locks', `${id}.release`), '')
  expect(await store.orphans?.(0)).toEqual([])
  expect(await store.expiredUploadIds(Date.now() + 60_000)).toEqual([id])
  expect((await store.listFinished?.(10))?.map((u) => u.id)).toEqual([])
  await lock.unlock()
  await store.close()
})

describe('two tusgate processes sharing FILE_DIR with LOCKER=file', () => {
  test('a client resuming on B makes A end its stale PATCH; the upload completes with the right SHA-256', async () => {
    const dir = pool.newDir()
    const env = { LOCKER: 'file', LOCK_TTL: '2s', LOCK_DRAIN_TIMEOUT: '1s' }
    const [a, b] = await Promise.all([pool.launch(dir, env), pool.launch(dir, env)])
    const data = randomData(2 * 1024 * 1024, 31)
    const url = await createUpload(a.url, { 'Upload-Length': data.length })
    const id = new URL(url).pathname.split('/').pop() as string
    const file = path.join(dir, 'data', id)
    // A stale PATCH on A that would take about 13 s to finish.
    const stale = pacedPatch(url, 0, data, { piece: 32 * 1024, delayMs: 200, holdMs: 0 })
    await until(async () => (await stat(file)).size > 0, 15_000, 'the first bytes on disk')
    const onB = `${b.url}${new URL(url).pathname}`
    // B's HEAD takes the lock: A is asked (a release file) to let go and ends its PATCH.
    const head = await request(onB, { method: 'HEAD', headers: TUS })
    expect(head.status).toBe(200)
    const offset = Number(head.headers['upload-offset'])
    const result = await stale
    expect(result.status === 204 ? Number(result.offset) : offset).toBe(offset)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)
    expect((await stat(file)).size).toBe(offset)
    expect((await patch(onB, offset, data.subarray(offset))).status).toBe(204)
    expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
    await until(async () => (await readdir(path.join(dir, 'data', '.locks'))).length === 0, 5_000, 'every lock given back')
  }, 60_000)
})
