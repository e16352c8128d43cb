import type { MetadataValue } from '@tus/s3-store'
import { IoRedisKvStore, type KvStore } from '@tus/utils'
import { closeRedis, connectRedis, createRedisClient } from '../redis/client.js'
import type { StoreModule } from '../types.js'
import type { S3RequestObserver } from './requestObserver.js'
import { S3Datastore } from './S3Datastore.js'

export interface S3StoreSettings {
  bucket: string
  region: string
  /** Any S3-compatible service (MinIO, Ceph, R2); absent: AWS. */
  endpoint?: string
  forcePathStyle: boolean
  /** Absent: the SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string }
  /** Bytes per part (at least 5 MiB). */
  partSize: number
  /**
   * Parts between the start of their temporary file and the end of their UploadPart, in this process,
   * across all uploads; a body waits for a free one before it spools its next part. Absent: 60, as upstream.
   */
  concurrentParts?: number
  /** Tag the info object of a finished upload, for lifecycle rules. */
  useTags: boolean
  /** Put before every object key, e.g. 'uploads/'. */
  keyPrefix: string
  /** Unfinished uploads expire this long after creation; 0: never. */
  expiresAfterMs: number
  /** Upload info cached in Redis, shared by every instance; absent: cached in this process. */
  infoCache?: { redisUrl: string; keyPrefix: string }
  /** Told of every HTTP request sent to S3 (metrics). */
  onRequest?: S3RequestObserver
}

// A failed request reaches the core, which logs it once with its cause; the SDK would print it again (for
// each broken PATCH, that a streaming request cannot be retried). Its other warnings (rare, such as
// sockets at capacity) are worth seeing, so they stay.
const REPEATED = /non-retryable streaming request/
const quiet = () => {}
const sdkLogger = {
  trace: quiet,
  debug: quiet,
  info: quiet,
  warn: (...content: unknown[]) => {
    if (!REPEATED.test(String(content[0]))) console.warn(...content)
  },
  error: quiet,
}

/** Uploads as S3 multipart uploads, on AWS S3 or any compatible store (MinIO, Ceph, R2). */
export const s3Store: StoreModule<S3StoreSettings> = {
  name: 's3',
  async create(settings) {
    // With several instances, upload info is cached in Redis: a per-process cache would go stale
    // (a length declared through one instance, an upload finished through another).
    const redis = settings.infoCache ? createRedisClient(settings.infoCache.redisUrl, { connectionName: 'tusgate-s3-info' }) : undefined
    if (redis) await connectRedis(redis, 5000)
    const cache: KvStore<MetadataValue> | undefined = redis && new IoRedisKvStore(redis, `${settings.infoCache?.keyPrefix}s3-info:`)
    const concurrentParts = settings.concurrentParts ?? 60
    const datastore = new S3Datastore({
      cache,
      partSize: settings.partSize,
      maxConcurrentPartUploads: concurrentParts,
      onRequest: settings.onRequest,
      useTags: settings.useTags,
      expirationPeriodInMilliseconds: settings.expiresAfterMs,
      keyPrefix: settings.keyPrefix,
      s3ClientConfig: {
        bucket: settings.bucket,
        region: settings.region,
        endpoint: settings.endpoint,
        forcePathStyle: settings.forcePathStyle,
        credentials: settings.credentials,
        // Checksums on every request are an AWS extension that other S3 stores refuse (radosgw: 411).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // A socket for every part in flight, plus the SDK's default pool (50) for the other requests
        // (HeadObject, ListParts...), which would otherwise queue behind the parts.
        requestHandler: { httpAgent: { maxSockets: concurrentParts + 50 }, httpsAgent: { maxSockets: concurrentParts + 50 } },
        logger: sdkLogger,
      },
    })
    return {
      datastore,
      capabilities: datastore.capabilities,
      health: () => datastore.checkBucket(),
      partSlots: datastore.partSlots,
      expiredUploadIds: (now) => datastore.expiredIds(now),
      download: (id, range) => datastore.readRange(id, range),
      listFinished: (limit, where) => datastore.finishedUploads(limit, where),
      concatenate: (finalId, partials) => datastore.concatenate(finalId, partials),
      waitingFinals: datastore.waitingFinals,
      orphans: (graceMs) => datastore.orphans(graceMs),
      removeOrphan: (orphan) => datastore.removeOrphan(orphan),
      close: async () => {
        if (redis) await closeRedis(redis)
      },
    }
  },
}
