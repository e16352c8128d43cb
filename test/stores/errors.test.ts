// Store failures as the host sees them: a StoreError of a kind, from real clients where a real
// failure is cheap to make (an S3 endpoint nobody listens on), else from the fake GCS bucket.
import { Upload } from '@tus/utils'
import { StoreError } from '../../stores/errors.js'
import { gcsBackend } from '../../stores/gcs/index.js'
import { openStore } from '../../stores/registry.js'
import { newUploadId } from '../../stores/uploadId.js'
import { asBucket, FakeApiError, newFakeBucket } from '../helpers/fakeGcs.js'
import { freePort } from '../helpers/redis.js'

test('S3 that cannot be reached: creation and reads fail with unavailable, not as an unknown upload', async () => {
  const backend = await openStore({
    name: 's3',
    settings: {
      bucket: 'uploads',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${await freePort()}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      partSize: 5 * 1024 * 1024,
      useTags: false,
      keyPrefix: '',
      expiresAfterMs: 0,
    },
  })
  try {
    const id = newUploadId()
    const creating = backend.datastore.create(new Upload({ id, size: 3, offset: 0 }))
    await expect(creating).rejects.toBeInstanceOf(StoreError)
    await expect(creating).rejects.toMatchObject({ kind: 'unavailable' })
    await expect(backend.datastore.getUpload(id)).rejects.toMatchObject({ kind: 'unavailable' })
  } finally {
    await backend.close()
  }
}, 30_000)

test.each([503, 429])('GCS answering %i: creation and reads fail with unavailable', async (status) => {
  const fake = newFakeBucket()
  const backend = gcsBackend(asBucket(fake), { expiresAfterMs: 0 })
  const id = newUploadId()
  await backend.datastore.create(new Upload({ id, size: 3, offset: 0 }))
  fake.failure = new FakeApiError(status, 'try again later')
  await expect(backend.datastore.getUpload(id)).rejects.toMatchObject({ kind: 'unavailable' })
  await expect(backend.datastore.create(new Upload({ id: newUploadId(), size: 3, offset: 0 }))).rejects.toMatchObject({ kind: 'unavailable' })
  fake.failure = undefined
  expect(await backend.datastore.getUpload(id)).toMatchObject({ id, offset: 0, size: 3 })
})
