import type { Request, Response } from 'express'
import { UploadError } from '../core/errors.js'
import { reprDigestField, representationOf } from '../core/representation.js'
import { callerOf, hasBody, integerHeader } from '../http/request.js'
import type { IetfDeps } from './deps.js'
import { progressReport } from './informational.js'
import { refuse } from './reply.js'
import { completesUpload, indicatedLength, requestOffset } from './requestFields.js'
import { completenessHeader, type Dialect } from './versions.js'

const PARTIAL_UPLOAD = 'application/partial-upload'
const COMPLETED = new UploadError(400, 'The upload is already complete', {}, { type: 'completed-upload', title: 'upload is already completed' })

/**
 * Upload append (PATCH): the content goes on at Upload-Offset, as a tus PATCH's does. A mismatching
 * offset answers 409 with the upload's offset; an append to a complete upload is refused, except an
 * empty one at its end, which replays the completion (its answer may have been lost).
 */
export async function appendToUpload(deps: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const { core, reply } = deps
  const type = req.get('content-type')?.split(';')[0].trim().toLowerCase()
  if (dialect.partialUploadType && type !== PARTIAL_UPLOAD) throw refuse(415, `An append requires Content-Type: ${PARTIAL_UPLOAD}`)
  const completes = completesUpload(dialect, req, true)
  const offset = requestOffset(req)
  const length = indicatedLength(req, completes, offset)
  const present = hasBody(req)
  const written = await core.append(callerOf(req), id, {
    offset,
    length,
    present,
    contentLength: integerHeader(req.get('content-length')) || undefined,
    completes,
    progress: progressReport(deps.config, dialect, res),
    representation: representationOf(req.get('repr-digest'), req.get('want-repr-digest')),
    check: (_upload, complete) => {
      if (complete && (present || !completes)) throw COMPLETED
    },
  })
  const { upload } = written
  const complete = upload.size !== undefined && upload.offset === upload.size
  if (written.overflowed) throw refuse(413, "upload's size exceeded", { 'Upload-Offset': String(upload.offset) })
  reply.written(req, res, dialect, written, dialect.appendStatus, {
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, complete),
    ...(written.digests ? { 'Repr-Digest': reprDigestField(written.digests) } : {}),
  })
}
