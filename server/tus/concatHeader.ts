import { isUploadId } from '../../stores/uploadId.js'
import type { NamedPartial } from '../core/uploads.js'

/**
 * The partial uploads a final upload's `Upload-Concat: final;<url> <url> ...` names, in order, or why it
 * names none acceptably. A URL may be absolute (any host: behind a proxy the client's host is not ours)
 * or relative to the endpoint, and must be `<TUS_PATH>/<id>` with an id of ours.
 */
export function partialsNamed(header: string, tusPath: string): { partials: NamedPartial[] } | { error: string } {
  const urls = header.slice('final;'.length).trim().split(/\s+/).filter(Boolean)
  if (urls.length === 0) return { error: 'Upload-Concat: final names no partial uploads' }
  const partials: NamedPartial[] = []
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
