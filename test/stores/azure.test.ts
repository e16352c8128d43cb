// The Azure back end against a real Azurite blob service (a child process of this test).
import net from 'node:net'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import { AzureStore } from '@tus/azure-store'
import { Upload } from '@tus/utils'
import * as tus from 'tus-js-client'
import { loadConfig, storeSettings } from '../../server/config.js'
import { Metrics } from '../../server/metrics.js'
import { composeStorage } from '../../server/storage/compose.js'
import { AzureDatastore } from '../../stores/azure/AzureDatastore.js'
import { openStore } from '../../stores/registry.js'
import { newUploadId } from '../../stores/uploadId.js'
import { AZURITE_ACCOUNT, AZURITE_KEY, type Azurite, startAzurite } from '../helpers/azurite.js'
import { expectCorruptedChunkRejected } from '../helpers/checksum.js'
import { createUpload, OFFSET_STREAM, patch, randomData, request, sha256, sha256OfDownload, TUS } from '../helpers/http.js'
import { capturedLogger, type InProcessServer, startServer } from '../helpers/servers.js'

const MiB = 1024 * 1024

let azurite: Azurite
beforeAll(async () => {
  azurite = await startAzurite()
}, 30_000)
afterAll(() => azurite?.stop())

/** tusgate's environment for a container of the test's Azurite (created by tusgate unless it exists). */
const azureEnv = (container: string, extra: Record<string, string> = {}) => ({
  STORE: 'azure',
  ...azurite.env,
  AZURE_CONTAINER: container,
  ...extra,
})

function tusUpload(data: Buffer, options: tus.UploadOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, { retryDelays: null, ...options, onError: reject, onSuccess: () => resolve(upload.url as string) })
    upload.start()
  })
}

const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string

async function headOffset(url: string): Promise<number> {
  const head = await request(url, { method: 'HEAD', headers: TUS })
  expect(head.status).toBe(200)
  return Number(head.headers['upload-offset'])
}

describe('tusgate on Azure Blob Storage (Azurite)', () => {
  let server: InProcessServer
  let container: string
  const blob = (id: string) => azurite.client().getContainerClient(container).getAppendBlobClient(id)

  beforeAll(async () => {
    container = azurite.containerName()
    server = await startServer(azureEnv(container))
  })
  afterAll(() => server?.stop())

  test('start-up creates the missing container; OPTIONS lists exactly the extensions the store has', async () => {
    expect(await azurite.client().getContainerClient(container).exists()).toBe(true)
    const res = await request(`${server.url}/files`, { method: 'OPTIONS' })
    expect(res.status).toBe(200)
    expect((res.headers['tus-extension'] as string).split(',').sort()).toEqual(
      ['checksum', 'checksum-trailer', 'creation', 'creation-defer-length', 'creation-with-upload', 'expiration', 'termination'].sort(),
    )
  })

  test('creation: 201, HEAD shows offset 0, length, metadata; the blob holds the info as @tus/azure-store does', async () => {
    const metadata = `filename ${Buffer.from('résumé.pdf').toString('base64')},filetype ${Buffer.from('application/pdf').toString('base64')}`
    const url = await createUpload(server.url, { 'Upload-Length': 100, 'Upload-Metadata': metadata })
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.status).toBe(200)
    expect(head.headers['upload-offset']).toBe('0')
    expect(head.headers['upload-length']).toBe('100')
    expect(head.headers['upload-expires']).toBeDefined()
    expect((head.headers['upload-metadata'] as string).split(',').sort()).toEqual(metadata.split(',').sort())
    const props = await blob(idOf(url)).getProperties()
    expect(props.blobType).toBe('AppendBlob')
    expect(props.contentLength).toBe(0)
    expect(props.metadata?.tus_version).toBe('1.0.0')
    // Upstream reads what we wrote, so a container can go back to plain @tus/azure-store.
    const upstream = await new AzureStore({ client: azurite.client().getContainerClient(container) }).getUpload(idOf(url))
    expect(upstream).toMatchObject({ id: idOf(url), size: 100, offset: 0, metadata: { filename: 'résumé.pdf', filetype: 'application/pdf' } })
  })

  test('12 MiB in three 4 MiB PATCHes: HEAD follows each offset; GET matches by SHA-256; Range GETs', async () => {
    const data = randomData(12 * MiB, 3)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    for (let i = 0; i < 3; i++) {
      const res = await patch(url, i * 4 * MiB, data.subarray(i * 4 * MiB, (i + 1) * 4 * MiB))
      expect(res.status).toBe(204)
      expect(res.headers['upload-offset']).toBe(String((i + 1) * 4 * MiB))
      expect(await headOffset(url)).toBe((i + 1) * 4 * MiB)
    }
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    expect((await blob(idOf(url)).getProperties()).contentLength).toBe(data.length)

    // Across the boundary of the first two PATCHes.
    const start = 4 * MiB - 100
    const part = await request(url, { headers: { Range: `bytes=${start}-${start + 199}` } })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes ${start}-${start + 199}/${data.length}`)
    expect(part.body.equals(data.subarray(start, start + 200))).toBe(true)
    const tail = await request(url, { headers: { Range: 'bytes=-10' } })
    expect(tail.status).toBe(206)
    expect(tail.body.equals(data.subarray(data.length - 10))).toBe(true)
    const beyond = await request(url, { headers: { Range: `bytes=${data.length}-` } })
    expect(beyond.status).toBe(416)
  })

  test('creation-with-upload stores the POST body', async () => {
    const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...OFFSET_STREAM, 'Upload-Length': 11 }, body: 'hello' })
    expect(res.status).toBe(201)
    expect(res.headers['upload-offset']).toBe('5')
    const url = new URL(res.headers.location as string, server.url).toString()
    expect((await patch(url, 5, ' world')).status).toBe(204)
    expect((await request(url)).body.toString()).toBe('hello world')
  })

  test('deferred length: declared by a later PATCH, then the upload finishes', async () => {
    const url = await createUpload(server.url, { 'Upload-Defer-Length': 1 })
    const head = await request(url, { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-defer-length']).toBe('1')
    expect(head.headers['upload-length']).toBeUndefined()
    expect((await patch(url, 0, 'abc')).status).toBe(204)
    expect((await request(url)).status).toBe(404) // not finished: no size yet
    const last = await patch(url, 3, 'defg', { 'Upload-Length': 7 })
    expect(last.status).toBe(204)
    const after = await request(url, { method: 'HEAD', headers: TUS })
    expect(after.headers['upload-length']).toBe('7')
    expect(after.headers['upload-offset']).toBe('7')
    expect((await request(url)).body.toString()).toBe('abcdefg')
  })

  test('an offset mismatch answers 409 with the current Upload-Offset and changes nothing', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 10 })
    await patch(url, 0, 'abc')
    const res = await patch(url, 1, 'zzz')
    expect(res.status).toBe(409)
    expect(res.headers['upload-offset']).toBe('3')
    expect((await blob(idOf(url)).getProperties()).contentLength).toBe(3)
  })

  test('checksum: a corrupted chunk answers 460 and never reaches the blob; the retried chunk is accepted', async () => {
    const data = randomData(3 * MiB, 31)
    await expectCorruptedChunkRejected(await createUpload(server.url, { 'Upload-Length': data.length }), data, MiB, ['sha1', 'crc32'])
  })

  test('termination: DELETE removes the blob; then HEAD, PATCH and DELETE answer 404', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 10 })
    await patch(url, 0, 'abc')
    const del = await request(url, { method: 'DELETE', headers: TUS })
    expect(del.status).toBe(204)
    expect(await blob(idOf(url)).exists()).toBe(false)
    expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    expect((await patch(url, 3, 'def')).status).toBe(404)
    expect((await request(url, { method: 'DELETE', headers: TUS })).status).toBe(404)
  })

  test('an unknown upload is a 404 (upstream @tus/azure-store answers 500)', async () => {
    const url = `${server.url}/files/${newUploadId()}`
    expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    expect((await request(url)).status).toBe(404)
  })

  test('a PATCH cut midway keeps what arrived; HEAD shows it and the upload resumes from there', async () => {
    const data = randomData(16 * MiB, 5)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    expect((await patch(url, 0, data.subarray(0, MiB))).status).toBe(204)

    // A raw PATCH announcing the rest, sending 9 MiB + 123 bytes of it (one whole 8 MiB block and a
    // part of the next), then the connection goes away.
    const sent = 9 * MiB + 123
    const { port } = new URL(server.url)
    const socket = net.connect(Number(port), '127.0.0.1')
    socket.on('error', () => {})
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(
      `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nUpload-Offset: ${MiB}\r\nContent-Length: ${data.length - MiB}\r\n\r\n`,
    )
    await new Promise((resolve) => socket.write(data.subarray(MiB, MiB + sent), resolve))
    await sleep(500)
    socket.destroy()

    // HEAD waits for the cut PATCH to let go of the upload, so its offset is final.
    const kept = await headOffset(url)
    expect(kept).toBe(MiB + sent)
    expect(await headOffset(url)).toBe(kept)
    expect((await blob(idOf(url)).getProperties()).contentLength).toBe(kept)

    const rest = await patch(url, kept, data.subarray(kept))
    expect(rest.status).toBe(204)
    expect(rest.headers['upload-offset']).toBe(String(data.length))
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  })

  test('tus-js-client uploads 18 MiB in 9 MiB chunks; each PATCH is appended as 8 MiB + 1 MiB blocks', async () => {
    const data = randomData(18 * MiB, 7)
    const url = await tusUpload(data, { endpoint: `${server.url}/files`, chunkSize: 9 * MiB, metadata: { filename: 'big.bin' } })
    expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
    const props = await blob(idOf(url)).getProperties()
    expect(props.blobCommittedBlockCount).toBe(4)
    // The recorded offset follows too, for readers of the upstream layout.
    expect(JSON.parse(props.metadata?.upload as string)).toMatchObject({ offset: data.length, size: data.length })
  })

  test('bytes appended but not recorded (a crash between the two) count: the offset is the blob length', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 6 })
    await blob(idOf(url)).appendBlock(Buffer.from('abc'), 3)
    expect(await headOffset(url)).toBe(3)
    const stale = await patch(url, 0, 'abc')
    expect(stale.status).toBe(409)
    expect(stale.headers['upload-offset']).toBe('3')
    expect((await patch(url, 3, 'def')).status).toBe(204)
    expect((await request(url)).body.toString()).toBe('abcdef')
  })

  test('readiness: 200 while the container is there, 503 naming it once it is gone', async () => {
    const other = azurite.containerName()
    const gone = await startServer(azureEnv(other))
    try {
      expect((await request(`${gone.url}/readyz`)).status).toBe(200)
      await azurite.client().getContainerClient(other).delete()
      const res = await request(`${gone.url}/readyz`)
      expect(res.status).toBe(503)
      expect(JSON.parse(res.body.toString())).toEqual({ status: 'unavailable', reason: `container '${other}' does not exist` })
    } finally {
      await gone.stop()
    }
  })
})

describe('AzureDatastore writes (on Azurite)', () => {
  let container: string
  let datastore: AzureDatastore
  beforeAll(async () => {
    container = azurite.containerName()
    const client = azurite.client().getContainerClient(container)
    await client.create()
    datastore = new AzureDatastore({ container: client, expirationMs: 0, blockSize: MiB })
  })
  afterAll(() => azurite.client().getContainerClient(container).deleteIfExists())

  const create = async (size?: number) => {
    const upload = new Upload({ id: newUploadId(), size, offset: 0 })
    await datastore.create(upload)
    return upload.id
  }

  test('a body that fails midway: what arrived is appended (whole blocks and the rest), then the error is passed on', async () => {
    const data = randomData(3 * MiB + 5, 9)
    const id = await create(10 * MiB)
    const failure = new Error('client went away')
    const body = Readable.from(
      (async function* () {
        for (let at = 0; at < data.length; at += 700_000) yield data.subarray(at, at + 700_000)
        throw failure
      })(),
    )
    await expect(datastore.write(body, id, 0)).rejects.toBe(failure)
    expect((await datastore.getUpload(id)).offset).toBe(data.length)
    const props = await azurite.client().getContainerClient(container).getAppendBlobClient(id).getProperties()
    expect(props.blobCommittedBlockCount).toBe(4)
    const stored = await buffer((await datastore.readRange(id)) as Readable)
    expect(stored.equals(data)).toBe(true)
  })

  test('another writer appending first makes the stale write fail with 409, not interleave', async () => {
    const id = await create(10)
    const body = Readable.from(
      (async function* () {
        await sleep(200)
        yield Buffer.from('late')
      })(),
    )
    const writing = datastore.write(body, id, 0)
    await sleep(50)
    await azurite.client().getContainerClient(container).getAppendBlobClient(id).appendBlock(Buffer.from('first'), 5)
    await expect(writing).rejects.toMatchObject({ status_code: 409 })
    expect((await buffer((await datastore.readRange(id)) as Readable)).toString()).toBe('first')
  })

  test('ids that are not ours never reach the container', async () => {
    await expect(datastore.getUpload('../other')).rejects.toMatchObject({ status_code: 404 })
    await expect(datastore.remove('x')).rejects.toMatchObject({ status_code: 404 })
  })
})

describe('Azure configuration and failures', () => {
  test('a connection string works as well as an account name and key', async () => {
    const container = azurite.containerName()
    const backend = await openStore(
      storeSettings(
        loadConfig({
          STORE: 'azure',
          AZURE_CONTAINER: container,
          AZURE_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${azurite.endpoint};`,
        }),
      ),
    )
    try {
      await expect(backend.health()).resolves.toBeUndefined()
      expect((backend.datastore as AzureDatastore).container.url).toBe(`${azurite.endpoint}/${container}`)
    } finally {
      await azurite.client().getContainerClient(container).deleteIfExists()
    }
  })

  test('the expiry sweep removes an expired unfinished upload and spares a finished one', async () => {
    const container = azurite.containerName()
    const server = await startServer(azureEnv(container, { UPLOAD_EXPIRES_AFTER: '1s' }))
    try {
      const unfinished = await createUpload(server.url, { 'Upload-Length': 10 })
      await patch(unfinished, 0, 'abc')
      const finished = await createUpload(server.url, { 'Upload-Length': 2 })
      await patch(finished, 0, 'ok')
      await sleep(1_300)
      expect(await server.app.sweeper.sweep()).toEqual([idOf(unfinished)])
      expect(await azurite.client().getContainerClient(container).getAppendBlobClient(idOf(unfinished)).exists()).toBe(false)
      expect((await request(unfinished, { method: 'HEAD', headers: TUS })).status).toBe(404)
      expect((await request(finished)).body.toString()).toBe('ok')
    } finally {
      await server.stop()
      await azurite.client().getContainerClient(container).deleteIfExists()
    }
  })

  test('with Azurite stopped, readiness answers 503 within its 5 s bound', async () => {
    const own = await startAzurite()
    const server = await startServer({ STORE: 'azure', ...own.env, AZURE_CONTAINER: own.containerName() })
    try {
      expect((await request(`${server.url}/readyz`)).status).toBe(200)
      await own.stop()
      const started = Date.now()
      const res = await request(`${server.url}/readyz`)
      expect(res.status).toBe(503)
      expect(JSON.parse(res.body.toString()).reason).toMatch(/^container 'tusgate-[0-9a-f]+' (is not usable|did not answer)/)
      expect(Date.now() - started).toBeLessThan(7_000)
    } finally {
      await server.stop()
      await own.stop()
    }
  })

  test("start-up refuses a MAX_METADATA_SIZE that cannot fit Azure's 8 KiB of blob metadata", async () => {
    const config = loadConfig({ STORE: 'azure', ...azurite.env, AZURE_CONTAINER: azurite.containerName(), MAX_METADATA_SIZE: '8kb' })
    await expect(composeStorage(config, { metrics: new Metrics(), logger: capturedLogger().logger })).rejects.toThrow(
      /^MAX_METADATA_SIZE above 7168 bytes cannot fit/,
    )
  })

  test('start-up fails with the reason when the account refuses the credentials', async () => {
    const wrongKey = Buffer.alloc(64, 1).toString('base64')
    const config = loadConfig({ STORE: 'azure', ...azurite.env, AZURE_ACCOUNT_KEY: wrongKey, AZURE_CONTAINER: 'refused' })
    await expect(openStore(storeSettings(config))).rejects.toThrow(/^Azure container 'refused' could not be created: AuthorizationFailure$/)
  })
})
