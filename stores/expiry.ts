import type { Upload } from '@tus/utils'

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
