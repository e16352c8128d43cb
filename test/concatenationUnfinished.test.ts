// concatenation-unfinished on the file store and on S3 (Ceph radosgw): a final upload naming partials
// still uploading. The concatenation-unfinished cases of lua-tus-server's public compliance suite
// (t/suite.t: OPTIONS, finals naming unfinished and deferred partials, HEAD, PATCH of a final, the
// partials finished) reproduced over raw HTTP; HEAD as the partials progress; assembly exactly once with
// post-finish once, when the last partial finishes on this instance, on another one (LOCKER=redis), on
// both at once, or before a restart (assembled as the next instance starts), or on the final's HEAD; a
// partial removed before the final assembles.
import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { tusgateS3Env, useCeph } from './helpers/ceph.js'
import { type HookReceiver, startHookReceiver } from './helpers/hookReceiver.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { type InProcessServer, ROOT, startServer, tempDir } from './helpers/servers.js'

const head = (url: string) => request(url, { method: 'HEAD', headers: TUS })
const final = (base: string, urls: string[]) => request(`${base}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${urls.join(' ')}` } })
const locationOf = (base: string, res: Awaited<ReturnType<typeof request>>) => new URL(res.headers.location as string, base).toString()
const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string
const HOOKS = { HOOKS_ENABLED: 'post-finish,post-terminate', HOOKS_BACKOFF: '50ms', HOOKS_BACKOFF_MAX: '200ms' }

async function partial(base: string, length?: number): Promise<string> {
  return createUpload(base, { 'Upload-Concat': 'partial', ...(length === undefined ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': length }) })
}

async function patched(url: string, offset: number, data: Buffer | string, headers: Record<string, string | number> = {}): Promise<void> {
  const res = await patch(url, offset, data, headers)
  if (res.status !== 204) throw new Error(`PATCH ${url} at ${offset}: ${res.status} ${res.body}`)
}

/**
 * post-finish of `id` arrived exactly once: the post-finish of an upload finished afterwards is awaited
 * first, so one sent twice would have come by then (the outbox delivers in order).
 */
async function expectOnePostFinish(receiver: HookReceiver, base: string, id: string): Promise<void> {
  await receiver.waitFor(() => receiver.of('post-finish', id).length > 0, 20_000, `post-finish of ${id}`)
  const marker = await createUpload(base, { 'Upload-Length': 1 })
  await patched(marker, 0, 'm')
  await receiver.waitFor(() => receiver.of('post-finish', idOf(marker)).length > 0, 20_000, 'post-finish of the marker upload')
  expect(receiver.of('post-finish', id)).toHaveLength(1)
}

interface Subject {
  /** Settings for a tusgate on a fresh store; every call gives a new one. */
  store(): Promise<Record<string, string>>
}

function unfinishedSuite(name: string, subject: () => Subject) {
  describe(`concatenation-unfinished on ${name}`, () => {
    let receiver: HookReceiver
    let server: InProcessServer
    beforeAll(async () => {
      receiver = await startHookReceiver()
      server = await startServer({ ...(await subject().store()), HOOKS_URL: receiver.url, ...HOOKS })
    }, 60_000)
    afterAll(async () => {
      await server?.stop()
      await receiver?.stop()
    })

    test('compliance suite: OPTIONS advertises concatenation-unfinished next to concatenation', async () => {
      const res = await request(`${server.url}/files`, { method: 'OPTIONS' })
      expect([200, 204]).toContain(res.status)
      const extensions = (res.headers['tus-extension'] as string).split(',')
      expect(extensions).toEqual(expect.arrayContaining(['concatenation', 'concatenation-unfinished']))
    })

    test('compliance suite: finals naming unfinished partials (one, two, a deferred one, absolute URLs) 201; HEAD 200 with Upload-Concat; PATCH of a final 403; partials PATCHed 204; a final of finished partials 201', async () => {
      const base = server.url
      const ten = await partial(base, 10)
      const twoHundred = await partial(base, 200)
      const deferred = await partial(base)
      const created = {
        one: await final(base, [new URL(ten).pathname]),
        two: await final(base, [new URL(ten).pathname, new URL(twoHundred).pathname]),
        withDeferred: await final(base, [new URL(ten).pathname, new URL(deferred).pathname]),
        absolute: await final(base, [ten, twoHundred]),
      }
      for (const [what, res] of Object.entries(created)) {
        expect([what, res.status]).toEqual([what, 201])
        expect([what, res.headers.location]).toEqual([what, expect.stringMatching(/\/files\/[0-9a-f]{32}$/)])
        expect(res.headers['tus-resumable']).toBe('1.0.0')
      }

      const two = locationOf(base, created.two)
      const info = await head(two)
      expect(info.status).toBe(200)
      expect(info.headers['tus-resumable']).toBe('1.0.0')
      expect(info.headers['upload-concat']).toBe(`final;${new URL(ten).pathname} ${new URL(twoHundred).pathname}`)

      const refused = await patch(two, 0, '123456')
      expect(refused.status).toBe(403)

      await patched(ten, 0, '1234567890')
      const body200 = '1234567890'.repeat(20)
      await patched(twoHundred, 0, body200)
      const body150 = 'abcdefghij'.repeat(15)
      const declared = await patch(deferred, 0, body150, { 'Upload-Length': 150 })
      expect(declared.status).toBe(204)
      expect(declared.headers['upload-offset']).toBe('150')

      const expected = {
        one: '1234567890',
        two: `1234567890${body200}`,
        withDeferred: `1234567890${body150}`,
        absolute: `1234567890${body200}`,
      }
      for (const [what, res] of Object.entries(created)) {
        const url = locationOf(base, res)
        const done = await head(url)
        const length = String(Buffer.byteLength(expected[what as keyof typeof expected]))
        expect([what, done.status, done.headers['upload-offset'], done.headers['upload-length']]).toEqual([what, 200, length, length])
        expect([what, (await request(url)).body.toString()]).toEqual([what, expected[what as keyof typeof expected]])
      }
      const ofFinished = await final(base, [twoHundred, deferred])
      expect(ofFinished.status).toBe(201)
      expect((await request(locationOf(base, ofFinished))).body.toString()).toBe(`${body200}${body150}`)
    })

    test('partials finished in reverse order: HEAD shows the bytes contiguous so far and no Upload-Length until every length is known; the last PATCH assembles it once', async () => {
      const base = server.url
      const first = randomData(300 * 1024, 11)
      const second = randomData(200 * 1024 + 7, 12)
      const a = await partial(base, first.length)
      const b = await partial(base) // its length comes with its bytes
      const created = await final(base, [a, b])
      expect(created.status).toBe(201)
      expect(created.headers['upload-concat']).toBe(`final;${a} ${b}`)
      // Unfinished, it expires like any upload (UPLOAD_EXPIRES_AFTER), and says when.
      expect(created.headers['upload-expires']).toMatch(/GMT$/)
      const url = locationOf(base, created)
      const id = idOf(url)

      let info = await head(url)
      expect([info.status, info.headers['upload-offset'], info.headers['upload-length'], info.headers['upload-defer-length']]).toEqual([
        200,
        '0',
        undefined,
        '1',
      ])

      await patched(b, 0, second, { 'Upload-Length': second.length })
      info = await head(url)
      // b is done, but nothing is contiguous from the start while a holds no byte.
      expect([info.headers['upload-offset'], info.headers['upload-length'], info.headers['upload-defer-length']]).toEqual([
        '0',
        String(first.length + second.length),
        undefined,
      ])
      await patched(a, 0, first.subarray(0, 100_000))
      expect((await head(url)).headers['upload-offset']).toBe('100000')
      expect((await request(url)).status).not.toBe(200)
      expect(receiver.of('post-finish', id)).toHaveLength(0)

      await patched(a, 100_000, first.subarray(100_000))
      info = await head(url)
      const total = String(first.length + second.length)
      expect([info.headers['upload-offset'], info.headers['upload-length']]).toEqual([total, total])
      const download = await sha256OfDownload(url)
      expect(download).toEqual({ status: 200, sha: sha256(Buffer.concat([first, second])), bytes: first.length + second.length })
      // Neither another HEAD nor a repeated empty PATCH of a partial assembles it again.
      expect((await head(url)).headers['upload-offset']).toBe(total)
      await patched(a, first.length, '')
      await expectOnePostFinish(receiver, base, id)
      expect(receiver.of('post-finish', id)[0].Event.Upload).toMatchObject({
        Size: first.length + second.length,
        Offset: first.length + second.length,
        IsFinal: true,
      })
    })

    test('a partial terminated before its final assembles: the final is removed too (post-terminate), and its HEAD answers 404', async () => {
      const base = server.url
      const a = await partial(base, 4)
      const b = await partial(base, 4)
      await patched(a, 0, 'done')
      const url = locationOf(base, await final(base, [a, b]))
      expect((await head(url)).headers['upload-offset']).toBe('4')
      expect((await request(b, { method: 'DELETE', headers: TUS })).status).toBe(204)
      await receiver.waitFor(() => receiver.of('post-terminate', idOf(url)).length > 0, 20_000, 'post-terminate of the final')
      expect((await head(url)).status).toBe(404)
      expect((await head(a)).status).toBe(200)
    })

    test('a partial removed behind the server (as the expiry sweep does): the next HEAD of its final answers 410 and removes it', async () => {
      const base = server.url
      const a = await partial(base, 4)
      const b = await partial(base, 4)
      const url = locationOf(base, await final(base, [a, b]))
      await server.app.store.datastore.remove(idOf(b))
      const failed = await head(url)
      expect(failed.status).toBe(410)
      expect(failed.body.toString()).toBe('')
      await receiver.waitFor(() => receiver.of('post-terminate', idOf(url)).length > 0, 20_000, 'post-terminate of the final')
      expect((await head(url)).status).toBe(404)
      expect((await head(a)).status).toBe(200)
    })

    test('a final whose waiting entry was lost: the PATCH finishing its last partial does not find it, its HEAD assembles it, once', async () => {
      const base = server.url
      const a = await partial(base, 5)
      const b = await partial(base, 5)
      const url = locationOf(base, await final(base, [a, b]))
      const id = idOf(url)
      await patched(a, 0, 'hello')
      await server.app.store.waitingFinals?.remove(idOf(b), id)
      await patched(b, 0, 'world')
      expect(server.logs.filter((line) => line.message === 'upload finished' && line.uploadId === id)).toHaveLength(0)
      const info = await head(url)
      expect([info.headers['upload-offset'], info.headers['upload-length']]).toEqual(['10', '10'])
      expect((await request(url)).body.toString()).toBe('helloworld')
      expect(server.logs.filter((line) => line.message === 'upload finished' && line.uploadId === id)).toHaveLength(1)
      await expectOnePostFinish(receiver, base, id)
    })

    test('repeats past twice the bytes uploaded, known only once the deferred partial finishes: the final is removed, the partial kept', async () => {
      const base = server.url
      const d = await partial(base)
      const url = locationOf(base, await final(base, [d, d, d]))
      expect((await head(url)).headers['upload-defer-length']).toBe('1')
      await patched(d, 0, '0123456789', { 'Upload-Length': 10 })
      expect((await head(url)).status).toBe(404)
      await receiver.waitFor(() => receiver.of('post-terminate', idOf(url)).length > 0, 20_000, 'post-terminate of the final')
      expect(receiver.of('post-finish', idOf(url))).toHaveLength(0)
      expect((await request(d)).body.toString()).toBe('0123456789')
    })
  })
}

/** A process holding one upload's Redis lock until killed: an assembly that needs it cannot run. */
async function holdLock(redis: RedisServer, prefix: string, id: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/redisLockHolder.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, LOCK_TTL: '1s', LOCK_ID: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (c) => (out += c))
  child.stderr?.on('data', (c) => (out += c))
  const deadline = Date.now() + 20_000
  while (!out.includes('locked\n')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the lock holder did not lock: ${out}`)
    await sleep(20)
  }
  return child
}

function sharedSuite(name: string, subject: () => Subject) {
  describe(`concatenation-unfinished on ${name} with LOCKER=redis`, () => {
    let redis: RedisServer
    let receiver: HookReceiver
    const servers: InProcessServer[] = []
    let prefix = 0
    const start = async (store: Record<string, string>, keyPrefix: string, env: Record<string, string> = {}) => {
      const server = await startServer({
        ...store,
        LOCKER: 'redis',
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: keyPrefix,
        HOOKS_URL: receiver.url,
        ...HOOKS,
        ...env,
      })
      servers.push(server)
      return server
    }
    beforeAll(async () => {
      redis = await startRedis()
      receiver = await startHookReceiver()
      // A fresh Redis grants no lock for a while (stores/lockers/redis.ts): past that before any test, so
      // that only the lock a test holds on purpose makes a request wait.
      const warmUp = await start(await subject().store(), 'warm-up:', { LOCK_TIMEOUT: '30s' })
      await createUpload(warmUp.url)
      await warmUp.stop()
    }, 60_000)
    afterAll(async () => {
      for (const server of servers) await server.stop().catch(() => undefined)
      await receiver?.stop()
      await redis?.dispose()
    })

    test('two instances: the final is created on one, its last partial finishes on the other, which assembles it once', async () => {
      const store = await subject().store()
      const keyPrefix = `two${++prefix}:`
      const one = await start(store, keyPrefix)
      const other = await start(store, keyPrefix)
      const first = randomData(64 * 1024, 21)
      const second = randomData(70_000, 22)
      const a = await partial(one.url, first.length)
      const b = await partial(one.url, second.length)
      const url = locationOf(one.url, await final(one.url, [a, b]))
      await patched(a, 0, first)
      expect((await head(url)).headers['upload-offset']).toBe(String(first.length))
      // The last partial's bytes go through the other instance.
      await patched(b.replace(one.url, other.url), 0, second)
      const seenByOne = await head(url)
      expect([seenByOne.headers['upload-offset'], seenByOne.headers['upload-length']]).toEqual([
        String(first.length + second.length),
        String(first.length + second.length),
      ])
      expect((await sha256OfDownload(url)).sha).toBe(sha256(Buffer.concat([first, second])))
      const assembledBy = (server: InProcessServer) => server.logs.some((line) => line.message === 'upload finished' && line.uploadId === idOf(url))
      expect([assembledBy(one), assembledBy(other)]).toEqual([false, true])
      await expectOnePostFinish(receiver, one.url, idOf(url))
    })

    test('both partials finish at once, one on each instance: the final is assembled exactly once', async () => {
      const store = await subject().store()
      const keyPrefix = `race${++prefix}:`
      const one = await start(store, keyPrefix)
      const other = await start(store, keyPrefix)
      const first = randomData(80_000, 41)
      const second = randomData(60_000, 42)
      const a = await partial(one.url, first.length)
      const b = await partial(one.url, second.length)
      const url = locationOf(one.url, await final(one.url, [a, b]))
      await patched(a, 0, first.subarray(0, first.length - 1))
      await patched(b, 0, second.subarray(0, second.length - 1))
      await Promise.all([
        patched(a, first.length - 1, first.subarray(first.length - 1)),
        patched(b.replace(one.url, other.url), second.length - 1, second.subarray(second.length - 1)),
      ])
      const total = String(first.length + second.length)
      const info = await head(url)
      expect([info.headers['upload-offset'], info.headers['upload-length']]).toEqual([total, total])
      expect((await sha256OfDownload(url)).sha).toBe(sha256(Buffer.concat([first, second])))
      const assemblies = [one, other].flatMap((server) => server.logs.filter((line) => line.message === 'upload finished' && line.uploadId === idOf(url)))
      expect(assemblies).toHaveLength(1)
      await expectOnePostFinish(receiver, one.url, idOf(url))
    })

    test('after a restart: the last partial finished while the assembly could not run (the final locked); the next instance assembles it as it starts, once', async () => {
      const store = await subject().store()
      const keyPrefix = `restart${++prefix}:`
      const before = await start(store, keyPrefix, { LOCK_TIMEOUT: '2s' })
      const first = randomData(50_000, 31)
      const second = randomData(40_000, 32)
      const a = await partial(before.url, first.length)
      const b = await partial(before.url, second.length)
      const url = locationOf(before.url, await final(before.url, [a, b]))
      const id = idOf(url)
      await patched(b, 0, second)
      const holder = await holdLock(redis, keyPrefix, id)
      try {
        // The partial is stored and answered; its final's assembly found the lock taken and gave up.
        await patched(a, 0, first)
        expect(before.logs.some((line) => line.message === 'cannot complete a final upload' && line.uploadId === id)).toBe(true)
        await before.stop()
      } finally {
        holder.kill('SIGKILL')
        await new Promise((resolve) => (holder.exitCode === null ? holder.once('exit', resolve) : resolve(null)))
      }
      expect(receiver.of('post-finish', id)).toHaveLength(0)

      const after = await start(store, keyPrefix, { LOCK_TIMEOUT: '10s' })
      // No request asks for it: the start's look at the waiting finals assembles it.
      await receiver.waitFor(() => receiver.of('post-finish', id).length > 0, 20_000, 'post-finish of the final')
      const again = url.replace(before.url, after.url)
      const info = await head(again)
      const total = String(first.length + second.length)
      expect([info.status, info.headers['upload-offset'], info.headers['upload-length']]).toEqual([200, total, total])
      expect((await sha256OfDownload(again)).sha).toBe(sha256(Buffer.concat([first, second])))
      expect(after.logs.filter((line) => line.message === 'upload finished' && line.uploadId === id)).toHaveLength(1)
      await expectOnePostFinish(receiver, after.url, id)
    })
  })
}

const folders: Array<{ remove(): void }> = []
afterAll(() => {
  for (const folder of folders) folder.remove()
})
const fileStore = (): Subject => ({
  async store() {
    const folder = tempDir('tusgate-unfinished-')
    folders.push(folder)
    return { FILE_DIR: `${folder.dir}/data` }
  },
})

unfinishedSuite('the file store', fileStore)
sharedSuite('the file store', fileStore)

describe('on S3 (Ceph radosgw)', () => {
  const ceph = useCeph()
  const s3 = (): Subject => ({ store: () => tusgateS3Env(ceph(), { S3_KEY_PREFIX: 'uploads/' }) })
  unfinishedSuite('S3 (Ceph radosgw)', s3)
  sharedSuite('S3 (Ceph radosgw)', s3)
})
