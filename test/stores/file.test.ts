// The file store's own behaviour beyond the contract: what a failed creation leaves (nothing), what a
// full disk looks like to the host, and the sweep of leftovers, all on a real disk.
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { Upload } from '@tus/utils'
import { loadConfig } from '../../server/config.js'
import { Metrics } from '../../server/metrics.js'
import { composeStorage } from '../../server/storage/compose.js'
import { StoreError } from '../../stores/errors.js'
import { FileDatastore } from '../../stores/file/FileDatastore.js'
import { newUploadId } from '../../stores/uploadId.js'
import { sha256 } from '../helpers/http.js'
import { capturedLogger, tempDir } from '../helpers/servers.js'

const run = promisify(execFile)
const HOUR = 3600_000

/** Mounts a tmpfs of `bytes` at `dir`; false where mounting is not permitted. */
async function mountTmpfs(dir: string, bytes: number): Promise<boolean> {
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir])
    return true
  } catch {
    return false
  }
}

const probe = tempDir()
const canMount = await mountTmpfs(probe.dir, 64 * 1024)
if (canMount) await run('umount', [probe.dir])
probe.remove()
if (!canMount) console.warn('SKIPPED: the disk-full tests of the file store need to mount a tmpfs, which is not permitted here')
const onTmpfs = canMount ? describe : describe.skip

/** Makes a file `ageMs` old, as a crash that long ago would have left it. */
function age(file: string, ageMs: number): void {
  const then = new Date(Date.now() - ageMs)
  utimesSync(file, then, then)
}

describe('a creation that fails part-way leaves nothing behind', () => {
  let temp: ReturnType<typeof tempDir>
  let store: FileDatastore
  beforeEach(() => {
    temp = tempDir()
    store = new FileDatastore({ directory: temp.dir, fsync: false, expiresAfterMs: 0 })
  })
  afterEach(() => temp.remove())

  test('an info file already there (a leftover): refused with exists, the new data file removed, the info kept', async () => {
    const id = newUploadId()
    writeFileSync(path.join(temp.dir, `${id}.json`), '{"id":"someone else"}')
    const creating = store.create(new Upload({ id, size: 10, offset: 0 }))
    await expect(creating).rejects.toBeInstanceOf(StoreError)
    await expect(creating).rejects.toMatchObject({ kind: 'exists' })
    expect(readdirSync(temp.dir)).toEqual([`${id}.json`])
    expect(readFileSync(path.join(temp.dir, `${id}.json`), 'utf8')).toBe('{"id":"someone else"}')
  })

  test('an info file that cannot be written: the error, and neither data file nor temporary info left', async () => {
    const id = newUploadId()
    // A folder where the info file would go makes its rename fail after data and temporary info exist.
    mkdirSync(path.join(temp.dir, `${id}.json`))
    await expect(store.create(new Upload({ id, size: 10, offset: 0 }))).rejects.toThrow()
    expect(readdirSync(temp.dir)).toEqual([`${id}.json`])
  })
})

onTmpfs('on a full disk (a tmpfs)', () => {
  let temp: ReturnType<typeof tempDir>
  let store: FileDatastore
  beforeEach(async () => {
    temp = tempDir()
    expect(await mountTmpfs(temp.dir, 256 * 1024)).toBe(true)
    store = new FileDatastore({ directory: temp.dir, fsync: true, expiresAfterMs: 0 })
  })
  afterEach(async () => {
    await run('umount', [temp.dir])
    temp.remove()
  })

  /** Fills the disk to its last byte with one file. */
  async function fill(): Promise<void> {
    const filler = await open(path.join(temp.dir, 'filler'), 'w')
    try {
      for (let i = 0; i < 1024; i++) await filler.write(Buffer.alloc(4096))
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC')
    } finally {
      await filler.close()
    }
  }

  test('a creation fails with no-space and leaves neither data file nor info nor temporary info', async () => {
    await fill()
    const creating = store.create(new Upload({ id: newUploadId(), size: 10, offset: 0, metadata: { filename: 'a.bin' } }))
    await expect(creating).rejects.toBeInstanceOf(StoreError)
    await expect(creating).rejects.toMatchObject({ kind: 'no-space' })
    expect(readdirSync(temp.dir)).toEqual(['filler'])
  })

  test('a write that runs out of space fails with no-space; the offset is the bytes on disk, and the upload resumes once there is room', async () => {
    const data = Buffer.alloc(512 * 1024, 1)
    const id = newUploadId()
    await store.create(new Upload({ id, size: data.length, offset: 0 }))
    const writing = store.write(Readable.from([data]), id, 0)
    await expect(writing).rejects.toMatchObject({ kind: 'no-space' })
    const { offset } = await store.getUpload(id)
    expect(offset).toBeGreaterThan(0)
    expect(offset).toBeLessThan(data.length)
    await run('mount', ['-o', `remount,size=${2 * 1024 * 1024}`, temp.dir])
    expect(await store.write(Readable.from([data.subarray(offset)]), id, offset)).toBe(data.length)
    expect(sha256(readFileSync(path.join(temp.dir, id)))).toBe(sha256(data))
  })
})

describe('the sweep of leftovers (file store)', () => {
  test('removes data without info and temporary info files past the grace period, counts them, and spares uploads and recent ones', async () => {
    const temp = tempDir()
    const metrics = new Metrics()
    const config = loadConfig({ FILE_DIR: temp.dir, ORPHAN_GRACE_PERIOD: '1h', UPLOAD_EXPIRES_AFTER: '0' })
    const storage = await composeStorage(config, { metrics, logger: capturedLogger().logger })
    try {
      const live = newUploadId()
      await storage.datastore.create(new Upload({ id: live, size: 10, offset: 0 }))
      await storage.datastore.write(Readable.from([Buffer.from('abc')]), live, 0)
      const [dataOnly, tempInfo, recent] = [newUploadId(), newUploadId(), newUploadId()]
      writeFileSync(path.join(temp.dir, dataOnly), 'bytes of a creation that crashed')
      writeFileSync(path.join(temp.dir, `${tempInfo}.json.tmp`), '{"id":')
      writeFileSync(path.join(temp.dir, recent), '') // a creation in progress, as far as anyone can tell
      writeFileSync(path.join(temp.dir, 'notes.txt'), 'not ours')
      for (const name of [live, `${live}.json`, dataOnly, `${tempInfo}.json.tmp`, 'notes.txt']) age(path.join(temp.dir, name), 2 * HOUR)

      await storage.sweeper.sweep()
      expect(readdirSync(temp.dir).sort()).toEqual([live, `${live}.json`, 'notes.txt', recent].sort())
      expect((await metrics.orphansRemoved.get()).values[0].value).toBe(2)
      expect(await storage.datastore.getUpload(live)).toMatchObject({ offset: 3, size: 10 })

      await storage.sweeper.sweep()
      expect((await metrics.orphansRemoved.get()).values[0].value).toBe(2)
    } finally {
      await storage.close()
      temp.remove()
    }
  })

  test('a leftover whose id is locked (a creation holding it) is left for the next sweep', async () => {
    const temp = tempDir()
    const storage = await composeStorage(loadConfig({ FILE_DIR: temp.dir, ORPHAN_GRACE_PERIOD: '0' }), {
      metrics: new Metrics(),
      logger: capturedLogger().logger,
    })
    try {
      const id = newUploadId()
      writeFileSync(path.join(temp.dir, id), '')
      const lock = storage.locker.newLock(id)
      await lock.lock(new AbortController().signal, () => {})
      await storage.sweeper.sweep()
      expect(readdirSync(temp.dir)).toContain(id)
      await lock.unlock()
      await storage.sweeper.sweep()
      expect(readdirSync(temp.dir)).not.toContain(id)
    } finally {
      await storage.close()
      temp.remove()
    }
  })
})
