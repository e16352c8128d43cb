import { Metadata } from '@tus/utils'
import type { Request, Response } from 'express'
import { parseMetadata } from '../../stores/metadata.js'
import { ERRORS } from '../core/errors.js'
import { reprDigestField, representationOf } from '../core/representation.js'
import { idempotencyKeyOf } from '../http/idempotencyKey.js'
import { callerOf, hasBody, integerHeader } from '../http/request.js'
import { uploadUrl } from '../http/uploadUrl.js'
import { metadataProblem } from '../limits/metadata.js'
import type { IetfDeps } from './deps.js'
import { progressReport, sendUploadResumptionSupported } from './informational.js'
import { uploadLimit } from './limits.js'
import { refuse } from './reply.js'
import { completesUpload, indicatedLength } from './requestFields.js'
import { completenessHeader, type Dialect } from './versions.js'

// Content types that label the transfer, not the representation.
const TRANSFER_TYPES = new Set(['application/partial-upload', 'application/offset+octet-stream'])

/** What a creation request asks for, read before anything is created. */
export interface Creation {
  completes: boolean
  length?: number
  metadata: Record<string, string>
}

/**
 * Reads a creation request. The upload's metadata is what tus-js-client sends (Upload-Metadata) plus the
 * representation's own fields: `filetype` from Content-Type and `filename` from Content-Disposition.
 * The request's Upload-Metadata and Upload-Length are then set to what was read, so that the steps that
 * follow (token limits, hooks) see an IETF creation in the tus words they know.
 */
export function readCreation(deps: IetfDeps, dialect: Dialect, req: Request): Creation {
  const completes = completesUpload(dialect, req)
  const length = indicatedLength(req, completes, 0)
  const { config } = deps
  if (config.MAX_SIZE > 0 && length !== undefined && length > config.MAX_SIZE) throw ERRORS.tooLarge
  if (length === undefined && !deps.core.abilities.deferLength) {
    throw refuse(400, 'This store needs the length: send Upload-Length, or Upload-Complete: ?1 with a Content-Length')
  }

  const metadata: Record<string, string> = Object.create(null)
  const header = req.get('upload-metadata')
  if (header) {
    const parsed = parseMetadata(header)
    if (!parsed) throw ERRORS.badMetadata
    for (const [key, value] of Object.entries(parsed)) if (value !== null) metadata[key] = value
  }
  const type = req.get('content-type')?.split(';')[0].trim().toLowerCase()
  if (type && !TRANSFER_TYPES.has(type)) metadata.filetype ??= type
  const filename = filenameOf(req.get('content-disposition'))
  if (filename) metadata.filename ??= filename

  const stringified = Metadata.stringify(metadata)
  if (Buffer.byteLength(stringified) > config.MAX_METADATA_SIZE) throw refuse(400, `Upload metadata is larger than ${config.MAX_METADATA_SIZE} bytes`)
  // The same key and value limits as a tus creation's Upload-Metadata.
  const problem = stringified ? metadataProblem(stringified, config) : undefined
  if (problem) throw refuse(400, problem)
  if (stringified) req.headers['upload-metadata'] = stringified
  else delete req.headers['upload-metadata']
  if (length !== undefined) req.headers['upload-length'] = String(length)
  return { completes, length, metadata }
}

/** The file name of a Content-Disposition: `filename*` (RFC 8187, UTF-8) before `filename`. */
function filenameOf(disposition: string | undefined): string | undefined {
  if (!disposition) return undefined
  const extended = /;\s*filename\*\s*=\s*UTF-8''([^;\s]+)/i.exec(disposition)
  if (extended) {
    try {
      return decodeURIComponent(extended[1])
    } catch {
      // fall back to the plain parameter
    }
  }
  const plain = /;\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(disposition)
  return plain ? (plain[1]?.replace(/\\(.)/g, '$1') ?? plain[2]) : undefined
}

/**
 * Upload creation: the upload is made as a tus creation makes it (the same core operation), announced
 * with a 104 carrying its Location as soon as it is stored, then the request's content is appended. The
 * final answer is 201 with the Location, the offset reached and whether it is complete.
 */
export async function createUpload(deps: IetfDeps, dialect: Dialect, creation: Creation, req: Request, res: Response): Promise<void> {
  const { config, core, reply } = deps
  let location = ''
  const present = hasBody(req)
  const written = await core.create(callerOf(req), {
    size: creation.length,
    metadata: creation.metadata,
    body: {
      present,
      contentLength: integerHeader(req.get('content-length')) || undefined,
      completes: creation.completes,
      progress: progressReport(config, dialect, res),
      representation: representationOf(req.get('repr-digest'), req.get('want-repr-digest')),
    },
    idempotencyKey: idempotencyKeyOf(req),
    onCreated: (upload) => {
      location = uploadUrl(config, req, upload.id)
      const limit = uploadLimit(config, dialect, core.expiration, upload)
      // Off behind a proxy that does not relay 1xx (nginx before 1.29 takes it for the final answer).
      if (config.INTERIM_RESPONSES)
        sendUploadResumptionSupported(res, { Location: location, 'Upload-Draft-Interop-Version': String(dialect.version), ...limit })
    },
  })
  const { upload } = written
  // A repeated creation (Idempotency-Key) announced nothing: the first one's upload.
  if (written.replayed) location = uploadUrl(config, req, upload.id)
  const complete = upload.size !== undefined && upload.offset === upload.size
  if (written.overflowed) throw refuse(413, "upload's size exceeded", { Location: location, 'Upload-Offset': String(upload.offset) })
  reply.written(req, res, dialect, written, 201, {
    Location: location,
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, complete),
    ...uploadLimit(config, dialect, core.expiration, upload),
    ...(written.digests ? { 'Repr-Digest': reprDigestField(written.digests) } : {}),
  })
}
