import { Readable } from 'node:stream'
import { buffer, text } from 'node:stream/consumers'
import { Upload } from '@tus/utils'
import { StoreError } from '../../stores/errors.js'
import type { StoreBackend } from '../../stores/types.js'
import { newUploadId } from '../../stores/uploadId.js'
import { sha256 } from './http.js'

export interface ContractSubject {
  backend: StoreBackend
  /** Removes what the subject made (bucket, container, folder). */
  cleanup(): Promise<void>
}

/**
 * The behaviour every store back end owes the host, run against each one (test/stores/<store>.contract.test.ts):
 * capabilities that match its methods, exclusive creation, write, offset, deferred length, remove,
 * expire, download. `make(expirationMs)` builds a fresh backend.
 */
export function storeContract(name: string, make: (expirationMs: number) => Promise<ContractSubject>) {
  describe(`store contract: ${name}`, () => {
    let subject: ContractSubject
    beforeAll(async () => {
      subject = await make(0)
    })
    afterAll(() => subject?.cleanup())

    const create = async (size?: number) => {
      const upload = new Upload({ id: newUploadId(), size, offset: 0, metadata: { filename: 'a.txt' } })
      await subject.backend.datastore.create(upload)
      return upload.id
    }

    test('the store is healthy', async () => {
      await expect(subject.backend.health()).resolves.toBeUndefined()
    })

    test('its capabilities match its methods and its DataStore extensions', () => {
      const { backend } = subject
      const { capabilities } = backend
      expect(typeof backend.truncate === 'function').toBe(capabilities.truncate)
      expect(typeof backend.concatenate === 'function').toBe(capabilities.concatenation)
      expect(backend.waitingFinals !== undefined).toBe(capabilities.concatenationUnfinished)
      expect(typeof backend.listFinished === 'function').toBe(capabilities.listing)
      expect(typeof backend.orphans === 'function').toBe(typeof backend.removeOrphan === 'function')
      expect(capabilities.expiresAfterMs).toBe(0)
      expect(backend.datastore.hasExtension('expiration')).toBe(false)
      expect(backend.datastore.hasExtension('creation-defer-length')).toBe(capabilities.creationDeferLength)
      expect(backend.datastore.hasExtension('termination')).toBe(capabilities.termination)
    })

    for (const finished of [true, false]) {
      test(`creating an id that is taken (${finished ? 'finished' : 'unfinished'}) fails with 'exists'; the upload keeps its bytes and info`, async () => {
        const { datastore } = subject.backend
        const bytes = Buffer.from(finished ? 'first upload' : 'first')
        const size = finished ? bytes.length : 100
        const id = newUploadId()
        await datastore.create(new Upload({ id, size, offset: 0, metadata: { filename: 'first.txt' } }))
        await datastore.write(Readable.from([bytes]), id, 0)
        const before = await datastore.getUpload(id)

        const second = datastore.create(new Upload({ id, size: 3, offset: 0, metadata: { filename: 'second.txt' } }))
        await expect(second).rejects.toBeInstanceOf(StoreError)
        await expect(second).rejects.toMatchObject({ kind: 'exists' })

        const after = await datastore.getUpload(id)
        expect(after).toMatchObject({ id, size, offset: bytes.length, metadata: { filename: 'first.txt' }, creation_date: before.creation_date })
        if (finished) expect(sha256(await buffer(await subject.backend.download(id)))).toBe(sha256(bytes))
        else {
          // The upload goes on from where it was.
          const rest = Buffer.alloc(size - bytes.length, 7)
          expect(await datastore.write(Readable.from([rest]), id, bytes.length)).toBe(size)
          expect(sha256(await buffer(await subject.backend.download(id)))).toBe(sha256(Buffer.concat([bytes, rest])))
        }
      })
    }

    test('create gives offset 0, the size and the metadata', async () => {
      const id = await create(10)
      const upload = await subject.backend.datastore.getUpload(id)
      expect(upload).toMatchObject({ id, offset: 0, size: 10, metadata: { filename: 'a.txt' } })
    })

    test('writes append at the offset; the finished upload downloads whole and by range', async () => {
      const first = 'aaa'
      const id = await create(first.length + 4)
      const { datastore } = subject.backend
      expect(await datastore.write(Readable.from([Buffer.from(first)]), id, 0)).toBe(first.length)
      expect((await datastore.getUpload(id)).offset).toBe(first.length)
      expect(await datastore.write(Readable.from([Buffer.from('bcde')]), id, first.length)).toBe(first.length + 4)
      const upload = await datastore.getUpload(id)
      expect(upload.offset).toBe(upload.size)
      expect(await text(await subject.backend.download(id))).toBe(`${first}bcde`)
      const range = { start: first.length, end: first.length + 2 }
      expect(await text(await subject.backend.download(id, range))).toBe('bcd')
    })

    test('a deferred length is declared later', async () => {
      const id = await create(undefined)
      const { datastore } = subject.backend
      expect((await datastore.getUpload(id)).sizeIsDeferred).toBe(true)
      await datastore.declareUploadLength(id, 4)
      expect(await datastore.write(Readable.from([Buffer.from('wxyz')]), id, 0)).toBe(4)
      const upload = await datastore.getUpload(id)
      expect(upload).toMatchObject({ size: 4, offset: 4 })
    })

    test('finals waiting for partials: one entry per pair, listed by partial, removed alone; none is an upload', async () => {
      const { waitingFinals, datastore } = subject.backend
      if (!waitingFinals) return
      const [a, b, final1, final2] = [newUploadId(), newUploadId(), newUploadId(), newUploadId()]
      expect(await waitingFinals.finalsOf(a)).toEqual([])
      await Promise.all([waitingFinals.add(a, final1), waitingFinals.add(a, final2), waitingFinals.add(b, final1)])
      expect((await waitingFinals.finalsOf(a)).sort()).toEqual([final1, final2].sort())
      expect(await waitingFinals.finalsOf(b)).toEqual([final1])
      await waitingFinals.remove(a, final1)
      await waitingFinals.remove(a, final1)
      expect(await waitingFinals.finalsOf(a)).toEqual([final2])
      expect(await waitingFinals.finalsOf(b)).toEqual([final1])
      expect(await waitingFinals.partials()).toEqual(expect.arrayContaining([a, b]))
      await expect(datastore.getUpload(a)).rejects.toMatchObject({ status_code: 404 })
      await expect(waitingFinals.add('../x', final1)).rejects.toMatchObject({ status_code: 404 })
      expect(await subject.backend.orphans?.(0)).not.toEqual(expect.arrayContaining([expect.objectContaining({ id: a })]))
    })

    test('remove makes the upload unknown', async () => {
      const id = await create(5)
      await subject.backend.datastore.remove(id)
      await expect(subject.backend.datastore.getUpload(id)).rejects.toMatchObject({ status_code: 404 })
    })

    test('remove works on a finished upload too', async () => {
      const id = await create(2)
      await subject.backend.datastore.write(Readable.from([Buffer.from('ok')]), id, 0)
      await subject.backend.datastore.remove(id)
      await expect(subject.backend.datastore.getUpload(id)).rejects.toMatchObject({ status_code: 404 })
    })

    test('an unknown id is a 404, not a crash', async () => {
      await expect(subject.backend.datastore.getUpload(newUploadId())).rejects.toMatchObject({ status_code: 404 })
    })

    test('expiry lists unfinished uploads past their time, never finished ones', async () => {
      const expiring = await make(1000)
      try {
        const { datastore } = expiring.backend
        const make1 = async (size: number) => {
          const upload = new Upload({ id: newUploadId(), size, offset: 0 })
          await datastore.create(upload)
          return upload.id
        }
        const before = Date.now()
        const unfinished = await make1(10)
        const finished = await make1(2)
        await datastore.write(Readable.from([Buffer.from('ok')]), finished, 0)
        expect(expiring.backend.capabilities.expiresAfterMs).toBe(1000)
        expect(datastore.hasExtension('expiration')).toBe(true)
        // Judged at given times, not after a sleep: a loaded machine cannot make the first one late.
        expect(await expiring.backend.expiredUploadIds(before + 500)).not.toContain(unfinished)
        const expired = await expiring.backend.expiredUploadIds(Date.now() + 1300)
        expect(expired).toContain(unfinished)
        expect(expired).not.toContain(finished)
      } finally {
        await expiring.cleanup()
      }
    })
  })
}
