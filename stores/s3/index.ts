import { IoRedisKvStore, type KvStore } from '@tus/utils'
import type { MetadataValue } from '@tus/s3-store'
import { closeRedis, connectRedis, createRedisClient } from '../redis/client.js'
import type { StoreModule } from '../types.js'
import { S3Datastore } from './S3Datastore.js'

/** Uploads as S3 multipart uploads, on AWS S3 or any compatible store (MinIO, Ceph, R2). */
export const s3Store: StoreModule = {
  name: 's3',
  async create(config) {
    const credentials =
      config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
        ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY }
        : undefined // the SDK's default chain: environment, profile, instance role
    // With several instances, upload info is cached in Redis: a per-process cache would go stale
    // (a length declared through one instance, an upload finished through another).
    const redis = config.REDIS_URL ? createRedisClient(config, { connectionName: 'tusgate-s3-info' }) : undefined
    if (redis) await connectRedis(redis, 5000)
    const cache: KvStore<MetadataValue> | undefined = redis && new IoRedisKvStore(redis, `${config.REDIS_KEY_PREFIX}s3-info:`)
    const datastore = new S3Datastore({
      cache,
      partSize: config.S3_PART_SIZE,
      useTags: config.S3_USE_TAGS,
      expirationPeriodInMilliseconds: config.UPLOAD_EXPIRES_AFTER,
      keyPrefix: config.S3_KEY_PREFIX,
      s3ClientConfig: {
        bucket: config.S3_BUCKET as string,
        region: config.S3_REGION,
        endpoint: config.S3_ENDPOINT,
        forcePathStyle: config.S3_FORCE_PATH_STYLE,
        credentials,
        // Checksums on every request are an AWS extension that other S3 stores refuse (radosgw: 411).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      },
    })
    return {
      datastore,
      health: () => datastore.checkBucket(),
      expiredUploadIds: () => datastore.expiredIds(),
      download: (id, range) => datastore.readRange(id, range),
      listFinished: (limit, where) => datastore.finishedUploads(limit, where),
      concatenate: (finalId, partials) => datastore.concatenate(finalId, partials),
      close: async () => {
        if (redis) await closeRedis(redis)
      },
    }
  },
}
