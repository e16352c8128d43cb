import type { Request } from 'express'
import { inconsistentLength } from '../core/uploads.js'
import { integerHeader } from '../http/request.js'
import { refuse } from './reply.js'
import { type Dialect, requestCompletes } from './versions.js'

/**
 * Whether a creation or append request ends the upload. The field is required, except on an append of
 * draft -01 (interop 3), where only a part that is not the last says so (`Upload-Incomplete: ?1`).
 */
export function completesUpload(dialect: Dialect, req: Request, append = false): boolean {
  const completes = requestCompletes(dialect, req.get(dialect.completeness))
  if (completes === undefined && append && dialect.version === 3) return true
  if (completes === undefined) throw refuse(400, `${dialect.completeness} header required`)
  if (completes === 'invalid') throw refuse(400, `${dialect.completeness} must be ?0 or ?1`)
  return completes
}

/** Upload-Offset of an append (a non-negative integer). */
export function requestOffset(req: Request): number {
  const offset = integerHeader(req.get('upload-offset'))
  if (offset === undefined || Number.isNaN(offset)) throw refuse(400, 'Upload-Offset header with a non-negative integer required')
  return offset
}

/**
 * The upload's length as a request at `offset` indicates it: Upload-Length, or where the request ends
 * the upload, the offset plus its Content-Length. Both present must agree. Undefined when neither is.
 */
export function indicatedLength(req: Request, completes: boolean, offset: number): number | undefined {
  const declared = integerHeader(req.get('upload-length'))
  const contentLength = integerHeader(req.get('content-length'))
  if (Number.isNaN(declared)) throw refuse(400, 'Upload-Length must be a non-negative integer')
  const implied = completes && contentLength !== undefined && !Number.isNaN(contentLength) ? offset + contentLength : undefined
  if (declared !== undefined && implied !== undefined && declared !== implied) throw inconsistentLength(declared, implied)
  return declared ?? implied
}
