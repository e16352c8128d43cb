// Against a FAKE in-memory bucket (helpers/fakeGcs.ts): no GCS emulator runs here.
import { gcsBackend } from '../../stores/gcs/index.js'
import { asBucket, newFakeBucket } from '../helpers/fakeGcs.js'
import { storeContract } from '../helpers/storeContract.js'

storeContract('gcs (FAKE in-memory bucket)', async (expiresAfterMs) => {
  const backend = gcsBackend(asBucket(newFakeBucket()), { expiresAfterMs })
  return { backend, cleanup: () => backend.close() }
})
