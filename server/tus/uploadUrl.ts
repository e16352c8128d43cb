import { isUploadId } from '../../stores/uploadId.js'

/** The upload id at the end of a request's URL, if it is one of ours. */
export function uploadIdOf(req: { url: string }): string | undefined {
  const path = new URL(req.url, 'http://x').pathname
  const id = path.slice(path.lastIndexOf('/') + 1)
  return isUploadId(id) ? id : undefined
}
