import type { Request } from 'express'
import { ERRORS, Metadata, type Upload } from '@tus/utils'

/** A creation's Upload-Metadata, parsed; throws INVALID_METADATA (400) when it is malformed. */
export function metadataOf(req: Request): Upload['metadata'] {
  const header = req.get('upload-metadata')
  if (!header) return undefined
  try {
    return Metadata.parse(header)
  } catch {
    throw ERRORS.INVALID_METADATA
  }
}
