import { Readable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import { Upload } from '@tus/utils'
import { newUploadId } from '../../stores/uploadId.js'
import type { StoreBackend } from '../../stores/types.js'

export interface ContractSubject {
  backend: StoreBackend
  /** Removes what the subject made (bucket, container, folder). */
  cleanup(): Promise<void>
}

/**
 * The behaviour every store back end owes the host, run against each one: create, write, offset,
 * deferred length, remove, expire, download. `make(expirationMs)` builds a fresh backend.
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
        const unfinished = await make1(10)
        const finished = await make1(2)
        await datastore.write(Readable.from([Buffer.from('ok')]), finished, 0)
        expect(datastore.hasExtension('expiration')).toBe(true)
        expect(await expiring.backend.expiredUploadIds()).not.toContain(unfinished)
        await sleep(1300)
        const expired = await expiring.backend.expiredUploadIds()
        expect(expired).toContain(unfinished)
        expect(expired).not.toContain(finished)
      } finally {
        await expiring.cleanup()
      }
    })
  })
}
