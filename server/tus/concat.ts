import type { Upload } from '@tus/utils'
import type { StoreBackend } from '../../stores/types.js'
import { isUploadId } from '../../stores/uploadId.js'
import type { ReservedStamp } from './reservedMetadata.js'

/**
 * The tus concatenation extension's records. An upload's `Upload-Concat`, as received at its creation
 * (`partial`, or `final;<url> <url> ...`), is kept under this reserved metadata key, so HEAD can show it
 * and PATCH can refuse a final upload on every store alike.
 */
export const CONCAT_KEY = 'tusgate-concat'

const FINAL_PREFIX = 'final;'

export const isFinalHeader = (value: string | null | undefined): value is string => value?.startsWith(FINAL_PREFIX) ?? false

/** The Upload-Concat an upload was created with, or undefined for a plain upload. */
export const concatOf = (upload: Pick<Upload, 'metadata'>): string | undefined => upload.metadata?.[CONCAT_KEY] ?? undefined

export const isPartialUpload = (upload: Pick<Upload, 'metadata'>) => concatOf(upload) === 'partial'
export const isFinalUpload = (upload: Pick<Upload, 'metadata'>) => isFinalHeader(concatOf(upload))

/** The answer to a PATCH of a final upload, which is assembled from its partial uploads, never written to. */
export const FINAL_UPLOAD_PATCH = { status_code: 403, body: 'A final upload cannot be patched: upload to its partial uploads\n' }

/** The ids of the partial uploads a final upload was assembled from, in order; undefined for any other upload. */
export function partialIdsOf(upload: Pick<Upload, 'metadata'>): string[] | undefined {
  const concat = concatOf(upload)
  if (!isFinalHeader(concat)) return undefined
  // Recorded only once its URLs were checked (final.ts): each path ends in an id of ours.
  return concat.slice(FINAL_PREFIX.length).trim().split(/\s+/).map((url) => new URL(url, 'http://endpoint/').pathname.split('/').pop() as string)
}

/** Records a creation's Upload-Concat (only a valid one: `@tus/server` answers 400 for any other). */
export const concatStamp: ReservedStamp = (req): Record<string, string> => {
  const header = req.headers['upload-concat']
  const value = typeof header === 'string' ? header.trim() : undefined
  return value === 'partial' || isFinalHeader(value) ? { [CONCAT_KEY]: value } : {}
}

/**
 * The partial uploads a final upload's `Upload-Concat: final;<url> <url> ...` names, in order (repeats
 * kept), or why it names none acceptably. A URL may be absolute (any host: behind a proxy the client's
 * host is not ours) or relative to the endpoint, and must be `<TUS_PATH>/<id>` with an id of ours.
 */
export function partialsNamed(header: string, tusPath: string): { partials: Array<{ id: string; url: string }> } | { error: string } {
  const urls = header.slice(FINAL_PREFIX.length).trim().split(/\s+/).filter(Boolean)
  if (urls.length === 0) return { error: 'Upload-Concat: final names no partial uploads' }
  const partials: Array<{ id: string; url: string }> = []
  for (const url of urls) {
    let path: string
    try {
      path = new URL(url, `http://endpoint${tusPath}/`).pathname
    } catch {
      return { error: `Upload-Concat names an invalid URL: ${url}` }
    }
    const id = path.slice(tusPath.length + 1)
    if (!path.startsWith(`${tusPath}/`) || !isUploadId(id)) return { error: `Partial upload not found: ${url}` }
    partials.push({ id, url })
  }
  return { partials }
}

/**
 * Turns concatenation on for a store that can assemble uploads: `concatenation` in Tus-Extension, and
 * `@tus/server`'s POST taking `Upload-Concat: partial` (it looks for the misspelt extension name
 * 'concatentation', so it would answer 501 otherwise). Final uploads never reach it (final.ts).
 * False for a store that cannot.
 */
export function enableConcatenation(store: StoreBackend): boolean {
  if (!store.concatenate) return false
  const { datastore } = store
  datastore.extensions = [...datastore.extensions, 'concatenation']
  const hasExtension = datastore.hasExtension.bind(datastore)
  datastore.hasExtension = (extension) => hasExtension(extension === 'concatentation' ? 'concatenation' : extension)
  return true
}
