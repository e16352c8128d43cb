import { type Bucket, Storage, type StorageOptions } from '@google-cloud/storage'
import type { Config } from '../../server/config.js'
import type { StoreBackend, StoreModule } from '../types.js'
import { GCSDatastore } from './GCSDatastore.js'

// Readiness answers within this even when GCS does not (the client retries for much longer).
const HEALTH_TIMEOUT_MS = 5_000

/**
 * The client options from GCS_PROJECT_ID, GCS_KEY_FILE (else Application Default Credentials) and
 * GCS_API_ENDPOINT. The client skips authentication at a custom endpoint (an emulator) unless a key
 * file is given.
 */
export function gcsStorageOptions(config: Config): StorageOptions {
  const options: StorageOptions = {}
  if (config.GCS_PROJECT_ID) options.projectId = config.GCS_PROJECT_ID
  if (config.GCS_KEY_FILE) options.keyFilename = config.GCS_KEY_FILE
  if (config.GCS_API_ENDPOINT) {
    options.apiEndpoint = config.GCS_API_ENDPOINT
    options.useAuthWithCustomEndpoint = Boolean(config.GCS_KEY_FILE)
  }
  return options
}

/** The back end over a bucket: the real one from the config, or any object with the same methods. */
export function gcsBackend(bucket: Bucket, config: Pick<Config, 'UPLOAD_EXPIRES_AFTER'>): StoreBackend & { datastore: GCSDatastore } {
  const datastore = new GCSDatastore({ bucket, expirationMs: config.UPLOAD_EXPIRES_AFTER })
  return {
    datastore,
    health: () => datastore.checkBucket(HEALTH_TIMEOUT_MS),
    expiredUploadIds: () => datastore.expiredIds(),
    download: async (id, range) => datastore.readRange(id, range),
    close: async () => {},
  }
}

/** Uploads as objects in a Google Cloud Storage bucket (GCS_BUCKET, which must exist). */
export const gcsStore: StoreModule = {
  name: 'gcs',
  async create(config) {
    const bucket = new Storage(gcsStorageOptions(config)).bucket(config.GCS_BUCKET as string)
    return gcsBackend(bucket, config)
  },
}
