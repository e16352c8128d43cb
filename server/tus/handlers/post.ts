import type { Request } from 'express'
import { grantOf } from '../../auth/access.js'
import { ERRORS, UploadError } from '../../core/errors.js'
import { isFinalHeader } from '../../core/records.js'
import type { CreateRequest, Written } from '../../core/types.js'
import { idempotencyKeyOf } from '../../http/idempotencyKey.js'
import { callerOf, hasBody, integerHeader } from '../../http/request.js'
import { uploadUrl } from '../../http/uploadUrl.js'
import { checksumOf } from '../checksumHeader.js'
import { partialsNamed } from '../concatHeader.js'
import type { TusDeps, TusHandler } from '../deps.js'
import { metadataOf } from '../metadataHeader.js'
import { answerWritten, replyError, setTusHeaders } from '../reply.js'

// creation-with-upload: the protocol guard let a body through only with this type.
const withUpload = (req: Request) => req.headers['content-type']?.trim() === 'application/offset+octet-stream'

/** The upload a plain or partial creation asks for; throws why it is refused. Nothing is stored either way. */
function requested(req: Request, concatenation: boolean): CreateRequest {
  const concat = req.get('upload-concat')
  if (concat !== undefined) {
    if (!concatenation) throw ERRORS.noConcatenation
    if (concat.trim() !== 'partial') throw ERRORS.badConcat
  }
  const length = integerHeader(req.get('upload-length'))
  const deferred = req.get('upload-defer-length')
  if ((length === undefined) === (deferred === undefined)) throw ERRORS.lengthRequired
  if (Number.isNaN(length) || (deferred !== undefined && deferred !== '1')) throw ERRORS.badLength
  const contentLength = integerHeader(req.get('content-length'))
  return {
    size: length,
    metadata: metadataOf(req),
    concat: concat === undefined ? undefined : 'partial',
    body: withUpload(req)
      ? { present: hasBody(req), contentLength: Number.isNaN(contentLength) ? undefined : contentLength, checksum: checksumOf(req) }
      : undefined,
    idempotencyKey: idempotencyKeyOf(req),
  }
}

/**
 * POST to the collection: creation, creation-with-upload, creation-defer-length, and concatenation's
 * partial and final uploads. The 201 carries the Location, the offset reached when a body came, and the
 * Upload-Concat of a partial or final upload.
 */
export function postHandler({ config, core, logger }: TusDeps): TusHandler {
  const concatenation = core.abilities.concatenate !== undefined
  return async (req, res) => {
    setTusHeaders(config, req, res)
    const concat = req.get('upload-concat')?.trim()
    const caller = callerOf(req, grantOf(req)?.maxSize)
    let written: Written
    try {
      if (isFinalHeader(concat)) {
        if (!concatenation) throw ERRORS.noConcatenation
        if (hasBody(req)) throw new UploadError(400, 'A final upload takes no body: its bytes come from its partial uploads')
        if (req.get('upload-length') !== undefined || req.get('upload-defer-length') !== undefined) {
          throw new UploadError(400, 'A final upload takes no Upload-Length: its length is the sum of its partial uploads')
        }
        const named = partialsNamed(concat, config.TUS_PATH)
        if ('error' in named) throw new UploadError(400, named.error)
        written = await core.concatenate(caller, named.partials, metadataOf(req), concat, idempotencyKeyOf(req))
      } else {
        written = await core.create(caller, requested(req, concatenation))
      }
    } catch (error) {
      return replyError(config, logger, req, res, error)
    }
    const url = uploadUrl(config, req, written.upload.id)
    const wrote = withUpload(req)
    if (written.overflowed && !written.failure)
      return replyError(config, logger, req, res, ERRORS.bodyTooLarge.with({ Location: url, 'Upload-Offset': String(written.upload.offset) }))
    answerWritten(config, logger, req, res, written, core.expiration, {
      status: 201,
      headers: (status) => ({
        ...(wrote ? { 'Upload-Offset': String(written.upload.offset) } : {}),
        ...(concat === 'partial' || isFinalHeader(concat) ? { 'Upload-Concat': concat } : {}),
        ...(status === 201 || (status >= 300 && status < 400) ? { Location: url } : {}),
      }),
    })
  }
}
