import { ERRORS, type Upload } from '@tus/utils'
import type { Request } from 'express'
import { parseMetadata } from '../../stores/metadata.js'

/** A creation's Upload-Metadata, parsed; throws INVALID_METADATA (400) when it is malformed. */
export function metadataOf(req: Request): Upload['metadata'] {
  const header = req.get('upload-metadata')
  if (!header) return undefined
  const metadata = parseMetadata(header)
  if (!metadata) throw ERRORS.INVALID_METADATA
  return metadata
}
