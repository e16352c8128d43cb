import type { Request } from 'express'
import { fileTypeFromBuffer, supportedMimeTypes } from 'file-type'
import { essence, typeAllowed } from './fileTypes.js'

/** How many leading bytes file-type needs to tell the types it knows apart. */
export const SNIFF_BYTES = 4100

/**
 * Reads up to `size` bytes of a request body (fewer when the body is shorter) and puts them back, so the
 * next reader sees the whole body. Undefined when the client went away first (what it sent is dropped).
 */
export function peekBody(req: Request, size = SNIFF_BYTES): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let length = 0
    const finish = (gone: boolean) => {
      req.off('readable', onReadable)
      req.off('close', onClose)
      req.off('error', onClose)
      if (gone) return resolve(undefined)
      const head = Buffer.concat(chunks)
      // In the same tick as the last read: the stream has not emitted 'end', so the bytes can go back.
      if (head.length > 0) req.unshift(head)
      resolve(head)
    }
    const onReadable = () => {
      // Only what is buffered is read: a read() on an empty, ended stream would end it for good.
      while (length < size && req.readableLength > 0) {
        const chunk = req.read(Math.min(size - length, req.readableLength)) as Buffer | null
        if (chunk === null) break
        chunks.push(chunk)
        length += chunk.length
      }
      // `complete`: the whole body has arrived, so nothing more will come.
      if (length >= size || (req.complete && req.readableLength === 0)) finish(false)
    }
    const onClose = () => finish(!req.complete)
    req.on('readable', onReadable)
    req.once('close', onClose)
    req.once('error', onClose)
  })
}

// Declaring these says nothing about the content: only the allowlist applies.
const UNSPECIFIC = new Set(['application/octet-stream', 'binary/octet-stream'])

/**
 * Whether the first bytes of an upload fit its declared `filetype`, as a short message for a 415, or
 * undefined when they do. A type file-type recognizes must be allowed (when `allowed` is given) and of
 * the declared top-level type (`image/jpeg` content for a declared `image/png` passes, since browsers
 * and file-type name some types differently); under `application/` it must be the declared type itself,
 * as that top-level type covers everything from PDFs to executables. Content file-type does not
 * recognize (text, CSV, JSON, SVG...) passes unless the declared type is one it would have recognized.
 */
export async function contentProblem(head: Buffer, filetype: string, allowed?: readonly string[]): Promise<string | undefined> {
  const declared = essence(filetype)
  const detected = (await fileTypeFromBuffer(head))?.mime
  if (detected === undefined) {
    return supportedMimeTypes.has(declared) ? `The content is not ${declared}` : undefined
  }
  if (allowed && !typeAllowed(detected, allowed)) return `The content is ${detected}, which is not allowed here`
  if (UNSPECIFIC.has(declared)) return undefined
  const [major] = declared.split('/')
  const sameKind = major === 'application' ? detected === declared : detected.split('/')[0] === major
  return sameKind ? undefined : `The content is ${detected}, not ${declared}`
}
