import type { Upload } from '@tus/utils'

/**
 * What the server records on an upload, in its metadata under reserved keys: its owner and its part in a
 * concatenation. A client's own values for reserved keys are dropped at creation, and they are never
 * shown back (HEAD, hooks and listings leave them out).
 */
export const RESERVED_PREFIX = 'tusgate-'
/** Who created the upload (a token's `sub`). */
export const OWNER_KEY = 'tusgate-owner'
/** The Upload-Concat it was created with: `partial`, or `final;<url> <url> ...`. */
export const CONCAT_KEY = 'tusgate-concat'

const FINAL_PREFIX = 'final;'
const isReservedKey = (key: string) => key.toLowerCase().startsWith(RESERVED_PREFIX)

type WithMetadata = Pick<Upload, 'metadata'>

export const isFinalHeader = (value: string | null | undefined): value is string => value?.startsWith(FINAL_PREFIX) ?? false

/** The principal that created an upload, or undefined for one created with authentication off. */
export const ownerOf = (upload: WithMetadata): string | undefined => upload.metadata?.[OWNER_KEY] ?? undefined

/** The Upload-Concat an upload was created with, or undefined for a plain upload. */
export const concatOf = (upload: WithMetadata): string | undefined => upload.metadata?.[CONCAT_KEY] ?? undefined
export const isPartialUpload = (upload: WithMetadata) => concatOf(upload) === 'partial'
export const isFinalUpload = (upload: WithMetadata) => isFinalHeader(concatOf(upload))

/** The ids of the partial uploads a final upload was assembled from, in order; undefined for any other upload. */
export function partialIdsOf(upload: WithMetadata): string[] | undefined {
  const concat = concatOf(upload)
  if (!isFinalHeader(concat)) return undefined
  // Recorded only once its URLs were checked: each path ends in an id of ours.
  return concat
    .slice(FINAL_PREFIX.length)
    .trim()
    .split(/\s+/)
    .map((url) => new URL(url, 'http://endpoint/').pathname.split('/').pop() as string)
}

/** An upload's metadata as clients may see it: without reserved keys; undefined when nothing is left. */
export function visibleMetadata(metadata: Upload['metadata']): Upload['metadata'] {
  if (!metadata) return undefined
  const visible = Object.fromEntries(Object.entries(metadata).filter(([key]) => !isReservedKey(key)))
  return Object.keys(visible).length > 0 ? visible : undefined
}

/** What is recorded on a new upload. */
export interface Records {
  owner?: string
  concat?: string
}

/** Drops every reserved key of an upload being created (a client's, in any letter case) and records `records`. */
export function stampRecords(upload: Upload, { owner, concat }: Records): void {
  const recorded: Record<string, string> = {}
  if (owner !== undefined) recorded[OWNER_KEY] = owner
  if (concat !== undefined) recorded[CONCAT_KEY] = concat
  const sent = Object.keys(upload.metadata ?? {}).some(isReservedKey)
  if (!sent && Object.keys(recorded).length === 0) return
  const metadata = Object.fromEntries(Object.entries(upload.metadata ?? {}).filter(([key]) => !isReservedKey(key)))
  upload.metadata = { ...metadata, ...recorded }
}
