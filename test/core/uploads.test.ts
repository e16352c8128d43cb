import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { PassThrough } from 'node:stream'
import type { Lock, Locker } from '@tus/utils'
import winston from 'winston'
import { toUploadError } from '../../server/core/errors.js'
import { ownerOf } from '../../server/core/records.js'
import type { Caller } from '../../server/core/types.js'
import { type CoreSettings, UploadCore } from '../../server/core/uploads.js'
import { createLogger } from '../../server/logger.js'
import { Metrics } from '../../server/metrics.js'
import { MemoryLocker } from '../../stores/lockers/memory.js'
import { MemoryStore } from '../helpers/memoryStore.js'

const logger = createLogger({ LOG_LEVEL: 'error', LOG_FORMAT: 'json' }, new winston.transports.Stream({ stream: new PassThrough() }))

/** A request whose body is `chunks`; `whole: false` ends it as a client that went away would. */
function callerWith(chunks: Buffer[] = [], { whole = true, principal }: { whole?: boolean; principal?: string } = {}): Caller {
  const req = new PassThrough() as unknown as IncomingMessage & PassThrough
  Object.assign(req, { headers: {}, complete: false, method: 'PATCH', url: '/files/x', socket: { remoteAddress: '127.0.0.1', remotePort: 1 } })
  req.once('end', () => {
    if (whole) (req as { complete: boolean }).complete = true
  })
  setImmediate(() => {
    for (const chunk of chunks) req.write(chunk)
    req.end()
  })
  return { req, record: { requestId: 'test', bytes: 0, principal } }
}

/** A locker that records which ids were locked. */
class RecordingLocker implements Locker {
  readonly locked: string[] = []
  private readonly inner = new MemoryLocker(1000)
  newLock(id: string): Lock {
    const lock = this.inner.newLock(id)
    return {
      lock: (signal, release) => {
        this.locked.push(id)
        return lock.lock(signal, release)
      },
      unlock: () => lock.unlock(),
    }
  }
}

function setup({ truncate = true, settings = {} as Partial<CoreSettings>, expirationMs = 0 } = {}) {
  const store = new MemoryStore(expirationMs)
  const locker = new RecordingLocker()
  const core = new UploadCore({
    store,
    abilities: {
      truncate: truncate ? (id, offset) => store.truncate(id, offset) : undefined,
      concatenate: (id, partials) => store.concatenate(id, partials),
      deferLength: true,
      termination: true,
    },
    locker,
    metrics: new Metrics(),
    logger,
    settings: { maxSize: 0, lockDrainTimeout: 100, isolation: false, stagingDir: tmpdir(), removePartials: false, ...settings },
  })
  return { store, core, locker }
}

const statusOf = async (promise: Promise<unknown>) =>
  promise.then(
    () => 'ok',
    (error: unknown) => toUploadError(error).error.status,
  )

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('base64')

describe('UploadCore.append', () => {
  test.each([
    ['the offset the upload has', { size: 10, stored: 'abc', offset: 3, body: 'def' }, 'ok', 'abcdef'],
    ['another offset: 409, nothing written', { size: 10, stored: 'abc', offset: 2, body: 'def' }, 409, 'abc'],
    ['a Content-Length past the length: 413 before any byte', { size: 4, stored: 'abc', offset: 3, body: 'de', contentLength: 2 }, 413, 'abc'],
    ['a length that disagrees with the upload: 400', { size: 10, stored: '', offset: 0, body: 'a', length: 9 }, 400, ''],
    ['a deferred length below the offset: 400', { size: undefined, stored: 'abc', offset: 3, body: '', length: 2 }, 400, 'abc'],
    ['a deferred length declared with the last bytes', { size: undefined, stored: 'ab', offset: 2, body: 'c', length: 3 }, 'ok', 'abc'],
  ])(
    '%s',
    async (_name, {
      size,
      stored,
      offset,
      body,
      contentLength,
      length,
    }: { size?: number; stored: string; offset: number; body: string; contentLength?: number; length?: number }, status, after) => {
      const { store, core } = setup()
      const { upload } = await core.create(callerWith(), { size })
      if (stored) await store.write(PassThrough.from([Buffer.from(stored)]), upload.id, 0)
      const result = await statusOf(core.append(callerWith([Buffer.from(body)]), upload.id, { offset, length, present: body.length > 0, contentLength }))
      expect(result).toBe(status)
      expect(store.uploads.get(upload.id)?.bytes.toString()).toBe(after)
    },
  )

  test('a chunked body past the length stores what fits, says it overflowed, and finishes the upload once', async () => {
    const { store, core } = setup()
    const { upload } = await core.create(callerWith(), { size: 10 })
    const written = await core.append(callerWith([Buffer.from('0123456'), Buffer.from('789AB')]), upload.id, { offset: 0, present: true })
    expect(written).toMatchObject({ overflowed: true, finished: true })
    expect(written.upload.offset).toBe(10)
    expect(store.uploads.get(upload.id)?.bytes.toString()).toBe('0123456789')
    const again = await core.append(callerWith(), upload.id, { offset: 10, present: false })
    expect(again.finished).toBe(false)
  })

  test('a body cut short keeps what arrived and leaves the upload unfinished', async () => {
    const { store, core } = setup()
    const { upload } = await core.create(callerWith(), { size: 10 })
    const written = await core.append(callerWith([Buffer.from('abcd')], { whole: false }), upload.id, { offset: 0, present: true })
    expect(written).toMatchObject({ finished: false, overflowed: false })
    expect(store.uploads.get(upload.id)?.bytes.toString()).toBe('abcd')
  })

  test.each([true, false])('a checksum mismatch (truncate: %s) answers 460 and the offset stays', async (truncate) => {
    const { store, core } = setup({ truncate })
    const { upload } = await core.create(callerWith(), { size: 10 })
    const checksum = { algorithm: 'sha256' as const, digest: Buffer.from(sha256(Buffer.from('right')), 'base64') }
    expect(await statusOf(core.append(callerWith([Buffer.from('wrong')]), upload.id, { offset: 0, present: true, checksum }))).toBe(460)
    expect(store.uploads.get(upload.id)?.bytes.length).toBe(0)
    expect(await statusOf(core.append(callerWith([Buffer.from('right')]), upload.id, { offset: 0, present: true, checksum }))).toBe('ok')
    expect(store.uploads.get(upload.id)?.bytes.toString()).toBe('right')
  })

  test('completes: an upload without a length gets the offset reached as its length', async () => {
    const { core } = setup()
    const { upload } = await core.create(callerWith(), {})
    const written = await core.append(callerWith([Buffer.from('xyz')]), upload.id, { offset: 0, present: true, completes: true })
    expect(written).toMatchObject({ finished: true })
    expect(written.upload.size).toBe(3)
  })

  test('an expired upload answers 410', async () => {
    const { store, core } = setup({ expirationMs: 1 })
    const { upload } = await core.create(callerWith(), { size: 5 })
    const entry = store.uploads.get(upload.id)
    if (entry) entry.upload.creation_date = new Date(Date.now() - 1000).toISOString()
    expect(await statusOf(core.append(callerWith([Buffer.from('a')]), upload.id, { offset: 0, present: true }))).toBe(410)
  })
})

describe('UploadCore.create', () => {
  test.each([
    ['a length above MAX_SIZE', { size: 11 }, 413],
    ['a body larger than the length', { size: 2, body: { present: true, contentLength: 3 } }, 413],
    ['a deferred length within MAX_SIZE', {}, 'ok'],
  ])('%s', async (_name, request, status) => {
    const { store, core } = setup({ settings: { maxSize: 10 } })
    expect(await statusOf(core.create(callerWith(), request))).toBe(status)
    expect(store.uploads.size).toBe(status === 'ok' ? 1 : 0)
  })

  test('records the creator; a client cannot set the reserved keys', async () => {
    const { core } = setup()
    const { upload } = await core.create(callerWith([], { principal: 'alice' }), { size: 1, metadata: { 'tusgate-owner': 'mallory', name: 'x' } })
    expect(ownerOf(upload)).toBe('alice')
    expect(upload.metadata?.name).toBe('x')
  })
})

describe('UploadCore.concatenate', () => {
  async function partial(core: UploadCore, data: string, principal?: string): Promise<string> {
    const { upload } = await core.create(callerWith([], { principal }), { size: data.length, concat: 'partial' })
    await core.append(callerWith([Buffer.from(data)], { principal }), upload.id, { offset: 0, present: data.length > 0 })
    return upload.id
  }

  test('assembles finished partials in order, repeats allowed up to twice the bytes uploaded', async () => {
    const { store, core } = setup()
    const a = await partial(core, 'ab')
    const b = await partial(core, 'cd')
    const written = await core.concatenate(
      callerWith(),
      [a, b, a].map((id) => ({ id, url: id })),
      undefined,
      'final;x',
    )
    expect(store.uploads.get(written.upload.id)?.bytes.toString()).toBe('abcdab')
    expect(
      await statusOf(
        core.concatenate(
          callerWith(),
          [a, a, a].map((id) => ({ id, url: id })),
          undefined,
          'final;x',
        ),
      ),
    ).toBe(413)
  })

  test("someone else's partial answers as an unknown one and is never locked", async () => {
    const { core, locker } = setup({ settings: { isolation: true } })
    const bobs = await partial(core, 'secret', 'bob')
    locker.locked.length = 0
    expect(await statusOf(core.concatenate(callerWith([], { principal: 'alice' }), [{ id: bobs, url: bobs }], undefined, 'final;x'))).toBe(400)
    expect(locker.locked).not.toContain(bobs)
  })
})

describe('UploadCore.terminate', () => {
  test('removes the upload; an unknown one answers 404', async () => {
    const { store, core } = setup()
    const { upload } = await core.create(callerWith(), { size: 1 })
    expect(await statusOf(core.terminate(callerWith(), upload.id))).toBe('ok')
    expect(store.uploads.has(upload.id)).toBe(false)
    expect(await statusOf(core.terminate(callerWith(), upload.id))).toBe(404)
  })
})
