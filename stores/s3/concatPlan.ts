/** Bytes [start, end) of the object of upload `id`. */
export interface Segment {
  id: string
  start: number
  end: number
}

/** One part of the final multipart upload: a server-side copy of one segment, or segments read and sent. */
export type PlannedPart = { copy: Segment } | { send: Segment[]; size: number }

const MiB = 1024 * 1024
/** S3's smallest part (all but the last) and largest part copy. */
export const MIN_PART = 5 * MiB
export const MAX_COPY = 5 * 1024 * MiB

/**
 * The parts that concatenate `sources` (finished uploads, in order) into one multipart upload. A source
 * of MIN_PART bytes or more is copied server-side (UploadPartCopy, in pieces of at most MAX_COPY);
 * smaller ones, and the bytes needed to bring a part up to MIN_PART, are read and sent as parts of
 * exactly MIN_PART bytes, so that every part but the last is large enough. Empty sources add nothing.
 */
export function planParts(sources: Array<{ id: string; size: number }>, minPart = MIN_PART, maxCopy = MAX_COPY): PlannedPart[] {
  const parts: PlannedPart[] = []
  let pending: Segment[] = []
  let pendingSize = 0
  for (const { id, size } of sources) {
    let at = 0
    while (at < size) {
      const left = size - at
      if (pendingSize === 0 && left >= minPart) {
        const end = at + Math.min(left, maxCopy)
        parts.push({ copy: { id, start: at, end } })
        at = end
        continue
      }
      const end = at + Math.min(left, minPart - pendingSize)
      pending.push({ id, start: at, end })
      pendingSize += end - at
      at = end
      if (pendingSize === minPart) {
        parts.push({ send: pending, size: pendingSize })
        pending = []
        pendingSize = 0
      }
    }
  }
  if (pendingSize > 0) parts.push({ send: pending, size: pendingSize })
  return parts
}
