import type { Upload } from '@tus/utils'
import { requestContext } from '../requestContext.js'

/**
 * The metadata key that records who created an upload (a token's `sub`). Reserved: a client's own value
 * is dropped at creation, and the key is never shown back (HEAD leaves it out).
 */
export const OWNER_KEY = 'tusgate-owner'

const isOwnerKey = (key: string) => key.toLowerCase() === OWNER_KEY

/** The principal that created an upload, or undefined for one created with authentication off. */
export function ownerOf(upload: Pick<Upload, 'metadata'>): string | undefined {
  return upload.metadata?.[OWNER_KEY] ?? undefined
}

/** An upload's metadata as clients may see it: without the owner; undefined when nothing is left. */
export function visibleMetadata(metadata: Upload['metadata']): Upload['metadata'] {
  if (!metadata) return undefined
  const visible = Object.fromEntries(Object.entries(metadata).filter(([key]) => !isOwnerKey(key)))
  return Object.keys(visible).length > 0 ? visible : undefined
}

/**
 * `@tus/server`'s onUploadCreate: drops any owner a client sent (in any letter case) and records the
 * request's principal, if any. Leaves the metadata untouched when there is nothing to change.
 */
export async function stampOwner(_req: Request, upload: Upload): Promise<{ metadata?: Upload['metadata'] }> {
  const principal = requestContext.current()?.principal
  const sent = Object.keys(upload.metadata ?? {}).some(isOwnerKey)
  if (principal === undefined && !sent) return {}
  const metadata = Object.fromEntries(Object.entries(upload.metadata ?? {}).filter(([key]) => !isOwnerKey(key)))
  if (principal !== undefined) metadata[OWNER_KEY] = principal
  return { metadata }
}
