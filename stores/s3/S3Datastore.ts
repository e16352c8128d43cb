import type { Readable } from 'node:stream'
import { S3Store, type Options } from '@tus/s3-store'
import { extensionsWithExpiry, isExpired } from '../expiry.js'
import type { ByteRange } from '../types.js'
import { isUploadId } from '../uploadId.js'
import { useKeyPrefix } from './keyPrefix.js'

/** `@tus/s3-store` with a key prefix, ranged reads, a bucket check, and the list of expired uploads. */
export class S3Datastore extends S3Store {
  private readonly bucketName: string

  constructor(options: Options & { keyPrefix: string }) {
    super(options)
    this.bucketName = options.s3ClientConfig.bucket
    useKeyPrefix(this.client, options.keyPrefix)
    this.extensions = extensionsWithExpiry(this.getExpiration())
  }

  /**
   * Upstream records the length in S3 but only mutates its cached copy in place, which a shared
   * (Redis) cache never sees: the upload would never complete. Dropping the cached copy fixes that.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    await super.declareUploadLength(id, length)
    await this.clearCache(id)
  }

  async checkBucket(): Promise<void> {
    try {
      await this.client.headBucket({ Bucket: this.bucketName })
    } catch (error) {
      // HeadBucket errors have no body, so the SDK's message is often just 'UnknownError'.
      const { name, $metadata } = error as Error & { $metadata?: { httpStatusCode?: number } }
      throw new Error(`bucket '${this.bucketName}' is not usable: ${name} (HTTP ${$metadata?.httpStatusCode ?? 'none'})`)
    }
  }

  async readRange(id: string, range?: ByteRange): Promise<Readable> {
    const { Body } = await this.client.getObject({
      Bucket: this.bucketName,
      Key: id,
      Range: range ? `bytes=${range.start}-${range.end}` : undefined,
    })
    return Body as Readable
  }

  /** Unfinished uploads (open multipart uploads) whose expiry has passed, judged by their info. */
  async expiredIds(now = Date.now()): Promise<string[]> {
    const expired: string[] = []
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    do {
      const page = await this.client.listMultipartUploads({ Bucket: this.bucketName, KeyMarker, UploadIdMarker })
      for (const { Key } of page.Uploads ?? []) {
        if (!Key || !isUploadId(Key)) continue
        const upload = await this.getUpload(Key).catch(() => undefined)
        if (upload && isExpired(upload, this.getExpiration(), now)) expired.push(Key)
      }
      ;({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : {})
    } while (KeyMarker)
    return expired
  }
}
