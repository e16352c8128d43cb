import type { IncomingMessage } from 'node:http'
import type { Upload } from '@tus/utils'

/**
 * Metadata keys starting with this are the server's own records on an upload (its owner, its part in a
 * concatenation). Reserved: a client's own values for them are dropped at creation, and they are never
 * shown back (HEAD leaves them out).
 */
export const RESERVED_PREFIX = 'tusgate-'

const isReservedKey = (key: string) => key.toLowerCase().startsWith(RESERVED_PREFIX)

/** What one concern records on an upload at its creation, from the creation request (nothing: `{}`). */
export type ReservedStamp = (req: IncomingMessage) => Record<string, string>

/** An upload's metadata as clients may see it: without reserved keys; undefined when nothing is left. */
export function visibleMetadata(metadata: Upload['metadata']): Upload['metadata'] {
  if (!metadata) return undefined
  const visible = Object.fromEntries(Object.entries(metadata).filter(([key]) => !isReservedKey(key)))
  return Object.keys(visible).length > 0 ? visible : undefined
}

/**
 * Drops every reserved key of an upload being created (a client's, in any letter case) and records what
 * the stamps give. Leaves the metadata untouched when there is nothing to change.
 */
export function stampReserved(...stamps: ReservedStamp[]): (req: IncomingMessage, upload: Upload) => void {
  return (req, upload) => {
    const recorded: Record<string, string> = Object.assign({}, ...stamps.map((stamp) => stamp(req)))
    const sent = Object.keys(upload.metadata ?? {}).some(isReservedKey)
    if (!sent && Object.keys(recorded).length === 0) return
    const metadata = Object.fromEntries(Object.entries(upload.metadata ?? {}).filter(([key]) => !isReservedKey(key)))
    upload.metadata = { ...metadata, ...recorded }
  }
}
