import type { Request } from 'express'
import type { ExpectedChecksum } from '../core/body.js'
import { parseUploadChecksum } from '../core/checksum.js'
import { UploadError } from '../core/errors.js'

const TRAILER_MISSING = new UploadError(400, 'Invalid Upload-Checksum: the announced trailer did not arrive')
const BOTH = new UploadError(400, 'Upload-Checksum is either a header or a trailer, not both')

/** Whether the request announces Upload-Checksum as a trailer (`Trailer: Upload-Checksum`). */
const announcesTrailer = (req: Request) => (req.headers.trailer ?? '').split(',').some((name) => name.trim().toLowerCase() === 'upload-checksum')

/**
 * The checksum extension's Upload-Checksum of a PATCH or creation: a header, or a trailer read once the
 * body has ended (checksum-trailer). A malformed value or an unsupported algorithm throws a 400 before any
 * byte is read, so nothing is stored.
 */
export function checksumOf(req: Request): ExpectedChecksum | undefined {
  const header = req.get('upload-checksum')
  const trailer = announcesTrailer(req)
  if (header === undefined && !trailer) return undefined
  if (header !== undefined && trailer) throw BOTH
  if (header !== undefined) return parseUploadChecksum(header)
  return () => {
    const value = req.trailers['upload-checksum']
    if (value === undefined) throw TRAILER_MISSING
    return parseUploadChecksum(value)
  }
}
