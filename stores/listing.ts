import type { Upload } from '@tus/utils'

/**
 * Finished uploads (offset === size) among `ids` that `where` accepts, newest first by creation date, at
 * most `limit`. Uploads are read `batch` at a time; one that vanishes meanwhile is skipped. With
 * `untilLimit` (for ids already ordered newest first) reading stops once `limit` are found.
 */
export async function finishedAmong(
  ids: string[],
  read: (id: string) => Promise<Upload>,
  { limit, batch, untilLimit = false, where = () => true }: { limit: number; batch: number; untilLimit?: boolean; where?: (upload: Upload) => boolean },
): Promise<Upload[]> {
  const finished: Upload[] = []
  for (let at = 0; at < ids.length && !(untilLimit && finished.length >= limit); at += batch) {
    const uploads = await Promise.all(ids.slice(at, at + batch).map((id) => read(id).catch(() => undefined)))
    for (const upload of uploads) if (upload && upload.size !== undefined && upload.offset === upload.size && where(upload)) finished.push(upload)
  }
  return finished.sort(newestFirst).slice(0, Math.max(0, limit))
}

/** Newest creation date first; ids break ties so the order is stable. */
function newestFirst(a: Upload, b: Upload): number {
  const [x, y] = [a.creation_date ?? '', b.creation_date ?? '']
  if (x !== y) return x < y ? 1 : -1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
