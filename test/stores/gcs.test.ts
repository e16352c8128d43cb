// The GCS back end. No GCS emulator runs here, so everything below runs against a FAKE bucket
// (helpers/fakeGcs.ts). Passing here says the module and the server fit together and that the logic
// is right against that model, not that real GCS behaves like it. Its store contract: gcs.contract.test.ts.
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import { Storage as RealStorage, type StorageOptions } from '@google-cloud/storage'
import { jest } from '@jest/globals'
import { GCSStore } from '@tus/gcs-store'
import { Upload } from '@tus/utils'
import * as tus from 'tus-js-client'
import { type Config, loadConfig, storeSettings } from '../../server/config.js'
import type { GcsStoreSettings } from '../../stores/gcs/index.js'
import { newUploadId } from '../../stores/uploadId.js'
import { expectCorruptedChunkRejected } from '../helpers/checksum.js'
import { asBucket, FakeBucket, newFakeBucket as newBucket } from '../helpers/fakeGcs.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from '../helpers/http.js'

const MiB = 1024 * 1024

// tusgate's own `new Storage(options).bucket(name)` gets a fake bucket, by name; the options are kept.
const fakeBuckets = new Map<string, FakeBucket>()
const storages: StorageOptions[] = []
class FakeStorage {
  constructor(options: StorageOptions) {
    storages.push(options)
  }
  bucket(name: string): FakeBucket {
    if (!fakeBuckets.has(name)) fakeBuckets.set(name, new FakeBucket(name))
    return fakeBuckets.get(name) as FakeBucket
  }
}
jest.unstable_mockModule('@google-cloud/storage', () => ({ Storage: FakeStorage }))
// Imported after the mock, so that they (and the server they start) see the fake.
const { gcsBackend, gcsStorageOptions, gcsStore } = await import('../../stores/gcs/index.js')
const { startServer } = await import('../helpers/servers.js')

/** The GCS store's settings from a config. */
function gcsSettings(config: Config): GcsStoreSettings {
  const choice = storeSettings(config)
  if (choice.name !== 'gcs') throw new Error(`expected STORE=gcs, got ${choice.name}`)
  return choice.settings
}

function failingBody(data: Buffer, failure: Error): Readable {
  return Readable.from(
    (async function* () {
      yield data
      throw failure
    })(),
  )
}

describe('GCS store against a fake Bucket (no emulator available)', () => {
  describe('config wiring', () => {
    const base = { STORE: 'gcs', GCS_BUCKET: 'uploads-bucket' }

    test('GCS_PROJECT_ID, GCS_KEY_FILE and GCS_API_ENDPOINT become the client options', () => {
      expect(gcsStorageOptions(gcsSettings(loadConfig(base)))).toEqual({})
      expect(
        gcsStorageOptions(
          gcsSettings(loadConfig({ ...base, GCS_PROJECT_ID: 'proj', GCS_KEY_FILE: '/keys/sa.json', GCS_API_ENDPOINT: 'https://gcs.internal:8443' })),
        ),
      ).toEqual({ projectId: 'proj', keyFilename: '/keys/sa.json', apiEndpoint: 'https://gcs.internal:8443', useAuthWithCustomEndpoint: true })
      // An endpoint without a key file is an emulator: no authentication.
      expect(gcsStorageOptions(gcsSettings(loadConfig({ ...base, GCS_API_ENDPOINT: 'http://127.0.0.1:4443' })))).toEqual({
        apiEndpoint: 'http://127.0.0.1:4443',
        useAuthWithCustomEndpoint: false,
      })
    })

    test('the real @google-cloud/storage client takes those options (no request is made)', () => {
      const options = gcsStorageOptions(gcsSettings(loadConfig({ ...base, GCS_PROJECT_ID: 'proj', GCS_API_ENDPOINT: 'http://127.0.0.1:4443' })))
      const bucket = new RealStorage(options).bucket('uploads-bucket')
      expect(bucket.name).toBe('uploads-bucket')
      expect(bucket.storage.apiEndpoint).toBe('http://127.0.0.1:4443')
      expect(bucket.storage.projectId).toBe('proj')
      expect(bucket.storage.customEndpoint).toBe(true)
    })

    test('STORE=gcs builds the client from the config and uses GCS_BUCKET', async () => {
      storages.length = 0
      const backend = await gcsStore.create(gcsSettings(loadConfig({ ...base, GCS_PROJECT_ID: 'proj', UPLOAD_EXPIRES_AFTER: '0' })))
      expect(storages).toEqual([{ projectId: 'proj' }])
      expect(backend.datastore).toBeInstanceOf(GCSStore)
      expect((backend.datastore as GCSStore).bucket).toBe(fakeBuckets.get('uploads-bucket'))
      expect(backend.capabilities).toMatchObject({ expiresAfterMs: 0, concatenation: false, truncate: false, listing: false })
      expect(backend.datastore.extensions).toEqual(['creation', 'creation-with-upload', 'creation-defer-length', 'termination'])
      const expiring = await gcsStore.create(gcsSettings(loadConfig(base)))
      expect(expiring.capabilities.expiresAfterMs).toBe(24 * 3600_000)
      expect(expiring.datastore.hasExtension('expiration')).toBe(true)
    })

    test('STORE=gcs without GCS_BUCKET is a config error', () => {
      expect(() => loadConfig({ STORE: 'gcs' })).toThrow('invalid GCS_BUCKET: required when STORE=gcs')
    })
  })

  describe('health', () => {
    test('resolves while bucket.exists() is true; rejects naming the bucket when false, failing or hung', async () => {
      const fake = newBucket()
      const backend = gcsBackend(asBucket(fake), { expiresAfterMs: 0 })
      await expect(backend.health()).resolves.toBeUndefined()
      fake.present = false
      await expect(backend.health()).rejects.toThrow(`bucket '${fake.name}' does not exist`)
      fake.present = true
      fake.failure = new Error('getaddrinfo ENOTFOUND storage.googleapis.com')
      await expect(backend.health()).rejects.toThrow(`bucket '${fake.name}' is not usable: getaddrinfo ENOTFOUND storage.googleapis.com`)
      fake.failure = undefined
      fake.hang = true
      await expect(backend.datastore.checkBucket(100)).rejects.toThrow(`bucket '${fake.name}' did not answer within 100 ms`)
    })
  })

  describe('create, write, getUpload, offsets', () => {
    const fake = newBucket()
    const backend = gcsBackend(asBucket(fake), { expiresAfterMs: 60_000 })
    const { datastore } = backend
    const create = async (size?: number, metadata?: Record<string, string>) => {
      const upload = new Upload({ id: newUploadId(), size, offset: 0, metadata })
      await datastore.create(upload)
      return upload
    }

    test("the layout is upstream @tus/gcs-store's plus creation_date, and upstream reads it", async () => {
      const { id, creation_date } = await create(9, { filename: 'a.txt' })
      expect(fake.get(id).custom).toEqual({
        tus_version: '1.0.0',
        size: '9',
        sizeIsDeferred: 'false',
        offset: '0',
        metadata: JSON.stringify({ filename: 'a.txt' }),
        storage: JSON.stringify({ type: 'gcs', path: id, bucket: fake.name }),
        creation_date,
      })
      await datastore.write(Readable.from([Buffer.from('abcd')]), id, 0)
      await datastore.write(Readable.from([Buffer.from('ef')]), id, 4)
      const upstream = await new GCSStore({ bucket: asBucket(fake) }).getUpload(id)
      expect(upstream).toMatchObject({ id, size: 9, offset: 6, metadata: { filename: 'a.txt' } })
    })

    test('the offset is the object size; creation_date survives the first write and later composes', async () => {
      const { id, creation_date } = await create(10)
      expect(await datastore.write(Readable.from([Buffer.from('0123')]), id, 0)).toBe(4)
      expect(await datastore.write(Readable.from([Buffer.from('45'), Buffer.from('67')]), id, 4)).toBe(8)
      const upload = await datastore.getUpload(id)
      expect(upload).toMatchObject({ offset: 8, size: 10, creation_date })
      expect(fake.objects.has(`${id}_patch`)).toBe(false)
      expect(fake.get(id).data.toString()).toBe('01234567')
    })

    test('a write at a stale offset is refused with 409 and changes nothing', async () => {
      const { id } = await create(10)
      await datastore.write(Readable.from([Buffer.from('abc')]), id, 0)
      await expect(datastore.write(Readable.from([Buffer.from('zzz')]), id, 1)).rejects.toMatchObject({ status_code: 409 })
      expect(fake.get(id).data.toString()).toBe('abc')
    })

    test('a first PATCH that fails keeps the upload (upstream deletes its object)', async () => {
      const ours = await create(10)
      const failure = new Error('client went away')
      await expect(datastore.write(failingBody(Buffer.from('abc'), failure), ours.id, 0)).rejects.toBe(failure)
      expect(await datastore.getUpload(ours.id)).toMatchObject({ offset: 0, size: 10 })

      const theirs = await create(10)
      await expect(new GCSStore({ bucket: asBucket(fake) }).write(failingBody(Buffer.from('abc'), failure), theirs.id, 0)).rejects.toBeDefined()
      await expect(datastore.getUpload(theirs.id)).rejects.toMatchObject({ status_code: 404 })
    })

    test('a later PATCH that fails leaves the offset where it was and no _patch object', async () => {
      const { id } = await create(10)
      await datastore.write(Readable.from([Buffer.from('abc')]), id, 0)
      await expect(datastore.write(failingBody(Buffer.from('def'), new Error('cut')), id, 3)).rejects.toThrow('cut')
      expect((await datastore.getUpload(id)).offset).toBe(3)
      expect(fake.objects.has(`${id}_patch`)).toBe(false)
    })

    test('deferred length: size unknown, then declared; metadata and date kept', async () => {
      const { id, creation_date } = await create(undefined, { filename: 'later.bin' })
      expect(await datastore.getUpload(id)).toMatchObject({ sizeIsDeferred: true, offset: 0 })
      await datastore.write(Readable.from([Buffer.from('ab')]), id, 0)
      await datastore.declareUploadLength(id, 5)
      await datastore.write(Readable.from([Buffer.from('cde')]), id, 2)
      expect(await datastore.getUpload(id)).toMatchObject({ size: 5, offset: 5, sizeIsDeferred: false, creation_date, metadata: { filename: 'later.bin' } })
    })

    test('downloads: whole, and inclusive ranges', async () => {
      const data = randomData(1000, 4)
      const { id } = await create(data.length)
      await datastore.write(Readable.from([data.subarray(0, 600)]), id, 0)
      await datastore.write(Readable.from([data.subarray(600)]), id, 600)
      expect((await buffer(await backend.download(id))).equals(data)).toBe(true)
      expect((await buffer(await backend.download(id, { start: 590, end: 609 }))).equals(data.subarray(590, 610))).toBe(true)
      expect((await buffer(await backend.download(id, { start: 999, end: 999 }))).equals(data.subarray(999))).toBe(true)
    })

    test('termination removes the object; unknown and foreign ids are 404s', async () => {
      const { id } = await create(3)
      await datastore.remove(id)
      expect(fake.objects.has(id)).toBe(false)
      await expect(datastore.remove(id)).rejects.toMatchObject({ status_code: 404 })
      await expect(datastore.getUpload(newUploadId())).rejects.toMatchObject({ status_code: 404 })
      await expect(datastore.getUpload('../../etc')).rejects.toMatchObject({ status_code: 404 })
    })

    test('expiry pages through the listing and skips objects that are not uploads', async () => {
      const expiring = newBucket()
      expiring.pageSize = 2
      const store = gcsBackend(asBucket(expiring), { expiresAfterMs: 500 })
      const ids: string[] = []
      for (let i = 0; i < 5; i++) {
        const upload = new Upload({ id: newUploadId(), size: 10, offset: 0 })
        await store.datastore.create(upload)
        ids.push(upload.id)
      }
      await store.datastore.write(Readable.from([Buffer.alloc(10)]), ids[0], 0) // finished: never expires
      expiring.put('not-an-upload.txt', Buffer.from('x'), {})
      expiring.put(newUploadId(), Buffer.from('x'), {}) // our kind of name, but no tus info
      expect(await store.expiredUploadIds()).toEqual([])
      await sleep(600)
      expect((await store.expiredUploadIds()).sort()).toEqual(ids.slice(1).sort())
    })
  })

  test('a _patch object left by a write cut before composing is found once past the grace period and removed; the upload goes on', async () => {
    const HOUR = 3600_000
    const fake = newBucket()
    const backend = gcsBackend(asBucket(fake), { expiresAfterMs: 0 })
    const id = newUploadId()
    await backend.datastore.create(new Upload({ id, size: 10, offset: 0 }))
    await backend.datastore.write(Readable.from([Buffer.from('abc')]), id, 0)
    fake.put(`${id}_patch`, Buffer.from('def'), {})
    expect(await backend.orphans?.(HOUR)).toEqual([])
    ;(fake.objects.get(`${id}_patch`) as { updated: number }).updated -= 2 * HOUR
    const found = (await backend.orphans?.(HOUR)) ?? []
    expect(found).toEqual([{ id, key: `${id}_patch`, kind: 'patch-object' }])
    expect(await backend.removeOrphan?.(found[0], HOUR)).toBe(true)
    expect(fake.objects.has(`${id}_patch`)).toBe(false)
    expect(await backend.removeOrphan?.(found[0], HOUR)).toBe(false)
    expect(await backend.datastore.write(Readable.from([Buffer.from('defghij')]), id, 3)).toBe(10)
    expect(fake.get(id).data.toString()).toBe('abcdefghij')
  })

  describe('tusgate over HTTP with STORE=gcs (the client library replaced by the fake)', () => {
    let server: Awaited<ReturnType<typeof startServer>>
    let fake: FakeBucket
    beforeAll(async () => {
      server = await startServer({ STORE: 'gcs', GCS_BUCKET: 'http-bucket', GCS_PROJECT_ID: 'proj' })
      fake = fakeBuckets.get('http-bucket') as FakeBucket
    })
    afterAll(() => server?.stop())

    test('checksum: a corrupted chunk answers 460 and never reaches the bucket; the retried chunk is accepted', async () => {
      const data = randomData(3 * MiB, 32)
      await expectCorruptedChunkRejected(await createUpload(server.url, { 'Upload-Length': data.length }), data, MiB, ['sha256', 'md5'])
    })

    test('readiness follows bucket.exists()', async () => {
      expect((await request(`${server.url}/readyz`)).status).toBe(200)
      fake.present = false
      try {
        const res = await request(`${server.url}/readyz`)
        expect(res.status).toBe(503)
        expect(JSON.parse(res.body.toString()).reason).toBe("bucket 'http-bucket' does not exist")
      } finally {
        fake.present = true
      }
    })

    test('OPTIONS lists the extensions the GCS store has', async () => {
      const res = await request(`${server.url}/files`, { method: 'OPTIONS' })
      expect((res.headers['tus-extension'] as string).split(',').sort()).toEqual(
        ['checksum', 'checksum-trailer', 'creation', 'creation-defer-length', 'creation-with-upload', 'expiration', 'termination'].sort(),
      )
    })

    test('tus-js-client, 5 MiB in 2 MiB chunks: SHA-256 by GET, a Range GET, HEAD offset, DELETE', async () => {
      const data = randomData(5 * MiB, 8)
      const url = await new Promise<string>((resolve, reject) => {
        const upload = new tus.Upload(data, {
          endpoint: `${server.url}/files`,
          chunkSize: 2 * MiB,
          retryDelays: null,
          metadata: { filename: 'five.bin' },
          onError: reject,
          onSuccess: () => resolve(upload.url as string),
        })
        upload.start()
      })
      expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
      const part = await request(url, { headers: { Range: `bytes=${2 * MiB - 5}-${2 * MiB + 4}` } })
      expect(part.status).toBe(206)
      expect(part.body.equals(data.subarray(2 * MiB - 5, 2 * MiB + 5))).toBe(true)
      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.headers['upload-offset']).toBe(String(data.length))
      expect((await request(url, { method: 'DELETE', headers: TUS })).status).toBe(204)
      expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    })

    test('PATCHes by hand: offsets, a 409 with the current offset, deferred length', async () => {
      const url = await createUpload(server.url, { 'Upload-Defer-Length': 1 })
      expect((await patch(url, 0, 'hello')).headers['upload-offset']).toBe('5')
      const conflict = await patch(url, 2, 'x')
      expect(conflict.status).toBe(409)
      expect(conflict.headers['upload-offset']).toBe('5')
      expect((await patch(url, 5, ' world', { 'Upload-Length': 11 })).status).toBe(204)
      expect((await request(url)).body.toString()).toBe('hello world')
    })
  })
})
