// A pre-create hook chooses where an upload's bytes go (ChangeFileInfo.Storage): the file store's Path
// under FILE_DIR, S3's Key under the key prefix. Against a real hook receiver, the real file system and a
// real Ceph radosgw; every operation, the payloads and the sweeps follow the place, across a restart.
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { createApp } from '../server/app.js'
import { loadConfig } from '../server/config.js'
import { listen } from '../server/httpServer.js'
import { type Azurite, startAzurite } from './helpers/azurite.js'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { type HookReceiver, startHookReceiver } from './helpers/hookReceiver.js'
import { patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { capturedLogger, tempDir } from './helpers/servers.js'

const MiB = 1024 * 1024
const b64 = (text: string) => Buffer.from(text).toString('base64')
const idOf = (url: string) => url.split('/').pop() as string

interface Running {
  url: string
  app: Awaited<ReturnType<typeof createApp>>
  stop(): Promise<void>
}

/** tusgate in this process with exactly `env` (so a second one over the same storage is a restart). */
async function boot(env: Record<string, string>): Promise<Running> {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', ...env })
  const { logger } = capturedLogger()
  const app = await createApp(config, logger)
  const running = await listen(config, app, logger)
  return { url: `http://127.0.0.1:${running.port}`, app, stop: () => running.shutdown() }
}

/** The receiver places each upload where its `place` metadata says (as a hook deriving it from the client's request would). */
function placeByMetadata(receiver: HookReceiver, field: 'Path' | 'Key'): void {
  receiver.answer((hook) => {
    const place = hook.Event.Upload.MetaData.place
    return hook.Type === 'pre-create' && place !== undefined ? { ChangeFileInfo: { Storage: { [field]: place } } } : {}
  })
}

/** POST asking for `place`; the raw answer. */
const create = (url: string, place: string, size: number) =>
  request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': size, 'Upload-Metadata': `place ${b64(place)}` } })

/** Creates an upload at `place`: its URL. */
async function createAt(url: string, place: string, size: number): Promise<string> {
  const res = await create(url, place, size)
  expect({ place, status: res.status }).toEqual({ place, status: 201 })
  return new URL(res.headers.location as string, url).toString()
}

/** An upload's URL on another server (the same storage after a restart). */
const on = (server: Running, location: string) => location.replace(/^http:\/\/[^/]+/, server.url)

const head = (location: string) => request(location, { method: 'HEAD', headers: TUS })
const remove = (location: string) => request(location, { method: 'DELETE', headers: TUS })

/** Every entry under `dir`, as relative paths ('a', 'a/b', 'a/b/c.bin'), but the hooks' outbox. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => !name.startsWith('hooks-outbox'))
    .sort()
}

const HOOKS = { HOOKS_ENABLED: 'pre-create,post-create,post-finish,post-terminate', HOOKS_BACKOFF: '50ms', HOOKS_BACKOFF_MAX: '200ms' }

describe('file store', () => {
  let receiver: HookReceiver
  let temp: ReturnType<typeof tempDir>
  let dir: string
  let env: Record<string, string>
  let server: Running | undefined

  beforeEach(async () => {
    receiver = await startHookReceiver()
    placeByMetadata(receiver, 'Path')
    temp = tempDir()
    dir = path.join(temp.dir, 'data')
    // The outbox in FILE_DIR (its default), where no upload may be placed.
    env = { FILE_DIR: dir, HOOKS_URL: receiver.url, ...HOOKS }
  })
  afterEach(async () => {
    await server?.stop()
    server = undefined
    await receiver.stop()
    temp.remove()
  })

  test('the bytes go to FILE_DIR/<Path>; HEAD, PATCH, GET, DELETE and the payloads follow it, across a restart', async () => {
    server = await boot(env)
    const data = randomData(3 * MiB + 17, 5)
    const location = await createAt(server.url, 'a/b/c.bin', data.length)
    const id = idOf(location)
    const placed = path.join(dir, 'a/b/c.bin')
    expect(existsSync(placed)).toBe(true)
    expect((await patch(location, 0, data.subarray(0, MiB))).status).toBe(204)

    await server.stop()
    server = await boot(env)
    const resumed = on(server, location)
    expect((await head(resumed)).headers['upload-offset']).toBe(String(MiB))
    expect((await patch(resumed, MiB, data.subarray(MiB))).status).toBe(204)
    expect(sha256(readFileSync(placed))).toBe(sha256(data))
    // The upload's own name in FILE_DIR holds no bytes of its own: it leads to the placed file.
    expect(
      readdirSync(dir)
        .filter((name) => name.startsWith(id))
        .sort(),
    ).toEqual([id, `${id}.json`])

    const [listed] = (await server.app.store.listFinished?.(10)) ?? []
    expect({ id: listed?.id, path: listed?.storage?.path }).toEqual({ id, path: placed })
    const download = await sha256OfDownload(resumed)
    expect(download).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
    const storage = { Type: 'filestore', Path: placed, InfoPath: path.join(dir, `${id}.json`) }
    expect(receiver.of('post-create', id)[0].Event.Upload.Storage).toEqual(storage)
    expect(receiver.of('post-finish', id)[0].Event.Upload.Storage).toEqual(storage)

    expect((await remove(resumed)).status).toBe(204)
    await receiver.waitFor(() => receiver.of('post-terminate', id).length === 1, 5_000, 'post-terminate')
    expect(receiver.of('post-terminate', id)[0].Event.Upload.Storage).toEqual(storage)
    expect(existsSync(placed)).toBe(false)
    expect(tree(dir).filter((name) => name.includes(id))).toEqual([])
    expect((await head(resumed)).status).toBe(404)
  })

  test('a Path that leaves FILE_DIR, is absolute, names the store’s files, or goes through a link is refused; nothing is written', async () => {
    const outside = path.join(temp.dir, 'outside')
    mkdirSync(outside)
    mkdirSync(dir, { recursive: true })
    symlinkSync(outside, path.join(dir, 'out'))
    server = await boot(env)
    const bad = [
      '../x',
      '/etc/x',
      'a/../../x',
      'a/./x',
      'a//x',
      'a/',
      'x\u0000y',
      'out/x.bin',
      'out/deeper/x.bin',
      '.index/x',
      'hooks-outbox/x.json',
      'AAAAAAAAAAAAAAAAAAAAAAAA.json',
      'A'.repeat(1025),
    ]
    for (const place of bad) {
      const res = await create(server.url, place, 10)
      expect({ place, status: res.status }).toEqual({ place, status: 400 })
    }
    expect(readdirSync(outside)).toEqual([])
    expect(tree(dir)).toEqual(['out'])
    expect(existsSync(path.join(dir, 'hooks-outbox/x.json'))).toBe(false)
    expect(receiver.of('post-create')).toEqual([])
    expect(await server.app.store.orphans?.(0)).toEqual([])
  })

  test('a Path that is taken (by an upload, a folder, a file in the way) is refused with 409, the upload there untouched', async () => {
    server = await boot(env)
    const data = randomData(1000, 7)
    const location = await createAt(server.url, 'u/f.bin', data.length)
    expect((await patch(location, 0, data)).status).toBe(204)

    for (const place of ['u/f.bin', 'u', 'u/f.bin/g.bin']) {
      const res = await create(server.url, place, 10)
      expect({ place, status: res.status, body: res.body.toString() }).toEqual({
        place,
        status: 409,
        body: 'The storage place chosen for this upload holds something already\n',
      })
    }
    expect(sha256(readFileSync(path.join(dir, 'u/f.bin')))).toBe(sha256(data))
    expect((await sha256OfDownload(location)).sha).toBe(sha256(data))
    // One upload: its link, its info, its folder and file.
    expect(tree(dir).filter((name) => !name.startsWith('.'))).toEqual([idOf(location), `${idOf(location)}.json`, 'u', 'u/f.bin'].sort())
    expect(await server.app.store.orphans?.(0)).toEqual([])
  })

  test('the expiry sweep after a restart removes a placed unfinished upload and its file', async () => {
    env = { ...env, UPLOAD_EXPIRES_AFTER: '1s' }
    server = await boot(env)
    const location = await createAt(server.url, 'exp/one.bin', 100)
    expect((await patch(location, 0, randomData(40))).status).toBe(204)
    await server.stop()
    await sleep(1100)
    server = await boot(env)
    expect(readFileSync(path.join(dir, 'exp/one.bin')).length).toBe(40)
    expect(await server.app.sweeper.sweep()).toEqual([idOf(location)])
    expect(existsSync(path.join(dir, 'exp/one.bin'))).toBe(false)
    expect(tree(dir).filter((name) => name.includes(idOf(location)))).toEqual([])
  })

  test('a creation cut between its link and its info leaves an orphan the sweep removes, placed file included', async () => {
    server = await boot(env)
    const id = idOf(await createAt(server.url, 'cut/x.bin', 10))
    expect(existsSync(path.join(dir, 'cut/x.bin'))).toBe(true)
    unlinkSync(path.join(dir, `${id}.json`))
    const orphans = await server.app.store.orphans?.(0)
    expect(orphans).toEqual([{ id, key: id, kind: 'data-without-info' }])
    expect(await server.app.store.removeOrphan?.(orphans?.[0] as never, 0)).toBe(true)
    expect(existsSync(path.join(dir, 'cut/x.bin'))).toBe(false)
    expect(existsSync(path.join(dir, id))).toBe(false)
  })

  test('the list of finished uploads holds an upload whose name a placed file sorts next to', async () => {
    server = await boot(env)
    const first = idOf(await createAt(server.url, 'p/zero.bin', 0))
    // ' ' sorts before '.': between `<id>` and `<id>.json`.
    const second = idOf(await createAt(server.url, `${first} x`, 0))
    const listed = ((await server.app.store.listFinished?.(10)) ?? []).map(({ id }) => id)
    expect(listed.sort()).toEqual([first, second].sort())
  })

  test('a Storage without Path fails as a failing hook does', async () => {
    receiver.answer((hook) => (hook.Type === 'pre-create' ? { ChangeFileInfo: { Storage: { Key: 'k' } } } : {}))
    server = await boot(env)
    const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 10 } })
    expect(res.status).toBe(500)
    expect(tree(dir).filter((name) => !name.startsWith('.'))).toEqual([])
  })
})

describe('S3 (Ceph)', () => {
  const PREFIX = 'pre/'
  let ceph: CephCluster
  let s3: S3Client
  let receiver: HookReceiver
  let env: Record<string, string>
  let server: Running | undefined
  let temp: ReturnType<typeof tempDir>

  beforeAll(async () => {
    ceph = await startCeph()
    s3 = ceph.client()
  }, 120_000)
  afterAll(async () => {
    s3?.destroy()
    await ceph?.stop()
  }, 30_000)
  beforeEach(async () => {
    receiver = await startHookReceiver()
    placeByMetadata(receiver, 'Key')
    temp = tempDir()
    env = {
      ...(await tusgateS3Env(ceph, { S3_KEY_PREFIX: PREFIX })),
      FILE_DIR: path.join(temp.dir, 'data'),
      HOOKS_URL: receiver.url,
      HOOKS_OUTBOX_DIR: path.join(temp.dir, 'outbox'),
      ...HOOKS,
    }
  })
  afterEach(async () => {
    await server?.stop()
    server = undefined
    await receiver.stop()
    temp.remove()
  })

  const bucketKeys = async () => {
    const { Contents } = await s3.send(new ListObjectsV2Command({ Bucket: env.S3_BUCKET }))
    return (Contents ?? []).map(({ Key }) => Key as string).sort()
  }
  const multipartKeys = async () => {
    const { Uploads } = await s3.send(new ListMultipartUploadsCommand({ Bucket: env.S3_BUCKET }))
    return (Uploads ?? []).map(({ Key }) => Key as string).sort()
  }

  test('the object is prefix + Key; HEAD, PATCH, GET, DELETE and the payloads follow it, across a restart', async () => {
    server = await boot(env)
    const data = randomData(7 * MiB + 3, 11)
    const location = await createAt(server.url, 'user/42/file.bin', data.length)
    const id = idOf(location)
    expect(await multipartKeys()).toEqual([`${PREFIX}user/42/file.bin`])
    expect((await patch(location, 0, data.subarray(0, 5 * MiB + 100))).status).toBe(204)

    await server.stop()
    server = await boot(env)
    const resumed = on(server, location)
    expect((await head(resumed)).headers['upload-offset']).toBe(String(5 * MiB + 100))
    expect((await patch(resumed, 5 * MiB + 100, data.subarray(5 * MiB + 100))).status).toBe(204)

    const object = await s3.send(new GetObjectCommand({ Bucket: env.S3_BUCKET, Key: `${PREFIX}user/42/file.bin` }))
    expect(sha256(Buffer.from(await (object.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(sha256(data))
    expect(await bucketKeys()).toEqual([`${PREFIX}${id}.info`, `${PREFIX}user/42/file.bin`])
    expect(await sha256OfDownload(resumed)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
    const storage = { Type: 's3store', Bucket: env.S3_BUCKET, Key: `${PREFIX}user/42/file.bin` }
    expect(receiver.of('post-create', id)[0].Event.Upload.Storage).toEqual(storage)
    expect(receiver.of('post-finish', id)[0].Event.Upload.Storage).toEqual(storage)

    await server.stop()
    server = await boot(env)
    expect((await remove(on(server, resumed))).status).toBe(204)
    expect(await bucketKeys()).toEqual([])
  }, 60_000)

  test('an unfinished placed upload is removed with its multipart upload, and expires, after a restart', async () => {
    env = { ...env, UPLOAD_EXPIRES_AFTER: '1s' }
    server = await boot(env)
    const one = await createAt(server.url, 'del/one.bin', 100)
    const two = await createAt(server.url, 'exp/two.bin', 100)
    expect((await patch(one, 0, randomData(10))).status).toBe(204)
    await server.stop()
    await sleep(1100)
    server = await boot(env)
    expect((await remove(on(server, one))).status).toBe(204)
    expect(await multipartKeys()).toEqual([`${PREFIX}exp/two.bin`])
    // An unfinished placed upload is no leftover.
    expect(await server.app.store.orphans?.(0)).toEqual([])
    expect(await server.app.sweeper.sweep()).toEqual([idOf(two)])
    expect(await multipartKeys()).toEqual([])
    expect(await bucketKeys()).toEqual([])
  }, 60_000)

  test('a Key that leaves the prefix, is absolute, names the store’s objects or is taken is refused; nothing is left', async () => {
    server = await boot(env)
    await s3.send(new PutObjectCommand({ Bucket: env.S3_BUCKET, Key: `${PREFIX}taken.bin`, Body: 'someone else' }))
    const bad = [
      '../x',
      '/x',
      'a/../../x',
      'a//x',
      'a/',
      'AAAAAAAAAAAAAAAAAAAAAAAA',
      'AAAAAAAAAAAAAAAAAAAAAAAA.info',
      'AAAAAAAAAAAAAAAAAAAAAAAA.waiting/BBBBBBBBBBBBBBBBBBBBBBBB',
      'k'.repeat(1024 - PREFIX.length + 1),
    ]
    for (const place of bad) {
      const res = await create(server.url, place, 10)
      expect({ place, status: res.status }).toEqual({ place, status: 400 })
    }
    expect((await create(server.url, 'taken.bin', 10)).status).toBe(409)
    const placed = await create(server.url, 'twice.bin', 10)
    expect(placed.status).toBe(201)
    expect((await create(server.url, 'twice.bin', 10)).status).toBe(409)
    expect(await multipartKeys()).toEqual([`${PREFIX}twice.bin`])
    expect(await bucketKeys()).toEqual([`${PREFIX}${idOf(placed.headers.location as string)}.info`, `${PREFIX}taken.bin`])
    const other = await s3.send(new HeadObjectCommand({ Bucket: env.S3_BUCKET, Key: `${PREFIX}taken.bin` }))
    expect(other.ContentLength).toBe('someone else'.length)
  }, 60_000)
})

describe('Azure (Azurite), a store that places every upload itself', () => {
  let azurite: Azurite
  beforeAll(async () => {
    azurite = await startAzurite()
  }, 60_000)
  afterAll(() => azurite?.stop())

  test('a pre-create answer with Storage fails the creation as a failing hook does; nothing is stored', async () => {
    const receiver = await startHookReceiver()
    placeByMetadata(receiver, 'Path')
    const temp = tempDir()
    const container = azurite.containerName()
    const server = await boot({
      STORE: 'azure',
      ...azurite.env,
      AZURE_CONTAINER: container,
      FILE_DIR: path.join(temp.dir, 'data'),
      HOOKS_URL: receiver.url,
      HOOKS_OUTBOX_DIR: path.join(temp.dir, 'outbox'),
      ...HOOKS,
    })
    try {
      expect((await create(server.url, 'a/b/c.bin', 10)).status).toBe(500)
      const blobs: string[] = []
      for await (const blob of azurite.client().getContainerClient(container).listBlobsFlat()) blobs.push(blob.name)
      expect(blobs).toEqual([])
      expect(receiver.of('post-create')).toEqual([])
    } finally {
      await server.stop()
      await receiver.stop()
      temp.remove()
    }
  }, 60_000)
})
