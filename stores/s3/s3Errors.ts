import { connectionErrorKind, type StoreErrorKind } from '../errors.js'

type S3Error = Error & { $metadata?: { httpStatusCode?: number }; Code?: string }

const THROTTLED = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'RequestTimeout',
  'InternalError',
])
// radosgw's answer once a user or bucket quota is used up.
const OUT_OF_SPACE = new Set(['QuotaExceeded', 'UserQuotaExceeded', 'BucketQuotaExceeded'])

/** The StoreError kind of an S3 client error, if it has one: a quota is 'no-space'; 5xx, 429, throttling, no connection 'unavailable'. */
export function s3ErrorKind(error: unknown): StoreErrorKind | undefined {
  const { name, Code, $metadata } = (error ?? {}) as S3Error
  const code = Code ?? name
  if (OUT_OF_SPACE.has(code)) return 'no-space'
  const status = $metadata?.httpStatusCode
  if (THROTTLED.has(code) || (status !== undefined && (status >= 500 || status === 429))) return 'unavailable'
  return connectionErrorKind(error)
}

/** A missing object or multipart upload (HEAD answers a bare 404, GET NoSuchKey). */
export function isS3NotFound(error: unknown): boolean {
  const { name, $metadata } = (error ?? {}) as S3Error
  return name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchUpload' || $metadata?.httpStatusCode === 404
}

/** Listing the parts of a multipart upload that was completed (AWS answers NoSuchUpload, some others NoSuchKey). */
export function isCompleted(error: unknown): boolean {
  const { name, Code } = (error ?? {}) as S3Error
  return [name, Code].some((code) => code === 'NoSuchUpload' || code === 'NoSuchKey')
}
