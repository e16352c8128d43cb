import { type Bucket, Storage, type StorageOptions } from '@google-cloud/storage'
import type { StoreBackend, StoreModule } from '../types.js'
import { GCSDatastore } from './GCSDatastore.js'

// Readiness answers within this even when GCS does not (the client retries for much longer).
const HEALTH_TIMEOUT_MS = 5_000

export interface GcsStoreSettings {
  /** Must exist. */
  bucket: string
  projectId?: string
  /** A service account key; absent: Application Default Credentials. */
  keyFile?: string
  /** Another endpoint, e.g. an emulator. */
  apiEndpoint?: string
  /** Unfinished uploads expire this long after creation; 0: never. */
  expiresAfterMs: number
}

/**
 * The client options. The client skips authentication at a custom endpoint (an emulator) unless a key
 * file is given.
 */
export function gcsStorageOptions(settings: Omit<GcsStoreSettings, 'bucket' | 'expiresAfterMs'>): StorageOptions {
  const options: StorageOptions = {}
  if (settings.projectId) options.projectId = settings.projectId
  if (settings.keyFile) options.keyFilename = settings.keyFile
  if (settings.apiEndpoint) {
    options.apiEndpoint = settings.apiEndpoint
    options.useAuthWithCustomEndpoint = Boolean(settings.keyFile)
  }
  return options
}

/** The back end over a bucket: the real one from the settings, or any object with the same methods. */
export function gcsBackend(bucket: Bucket, { expiresAfterMs }: Pick<GcsStoreSettings, 'expiresAfterMs'>): StoreBackend & { datastore: GCSDatastore } {
  const datastore = new GCSDatastore({ bucket, expirationMs: expiresAfterMs })
  return {
    datastore,
    capabilities: datastore.capabilities,
    health: () => datastore.checkBucket(HEALTH_TIMEOUT_MS),
    expiredUploadIds: (now) => datastore.expiredIds(now),
    download: async (id, range) => datastore.readRange(id, range),
    orphans: (graceMs) => datastore.orphans(graceMs),
    removeOrphan: (orphan, graceMs) => datastore.removeOrphan(orphan, graceMs),
    close: async () => {},
  }
}

/** Uploads as objects in a Google Cloud Storage bucket. */
export const gcsStore: StoreModule<GcsStoreSettings> = {
  name: 'gcs',
  async create(settings) {
    const bucket = new Storage(gcsStorageOptions(settings)).bucket(settings.bucket)
    return gcsBackend(bucket, settings)
  },
}
