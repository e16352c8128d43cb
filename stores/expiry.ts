import type { Upload } from '@tus/utils'
import { isUploadId } from './uploadId.js'

/** When an unfinished upload expires, or undefined if it never does (finished, no date, or expiry off). */
export function expiresAt(upload: Upload, expirationMs: number): Date | undefined {
  if (expirationMs <= 0 || !upload.creation_date) return undefined
  if (upload.size !== undefined && upload.offset === upload.size) return undefined
  return new Date(new Date(upload.creation_date).getTime() + expirationMs)
}

export function isExpired(upload: Upload, expirationMs: number, now = Date.now()): boolean {
  const at = expiresAt(upload, expirationMs)
  return at !== undefined && now > at.getTime()
}

/** The tus extensions of a store with creation and termination, plus expiration while it is on. */
export function extensionsWithExpiry(expirationMs: number): string[] {
  const extensions = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination']
  return expirationMs > 0 ? [...extensions, 'expiration'] : extensions
}

/**
 * The ids of the expired uploads among listed objects, each named `name` and read by `uploadOf`
 * (which throws for an object that is not an upload of ours: it is skipped).
 */
export async function expiredAmong<T extends { name: string }>(
  objects: AsyncIterable<T>,
  uploadOf: (object: T) => Upload,
  expirationMs: number,
  now = Date.now(),
): Promise<string[]> {
  const expired: string[] = []
  for await (const object of objects) {
    if (!isUploadId(object.name)) continue
    let upload: Upload
    try {
      upload = uploadOf(object)
    } catch {
      continue
    }
    if (isExpired(upload, expirationMs, now)) expired.push(object.name)
  }
  return expired
}
