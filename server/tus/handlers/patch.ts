import { grantOf } from '../../auth/access.js'
import { ERRORS } from '../../core/errors.js'
import { callerOf, hasBody, integerHeader } from '../../http/request.js'
import { checksumOf } from '../checksumHeader.js'
import { idOf, type TusDeps, type TusHandler } from '../deps.js'
import { answerWritten, replyError, setTusHeaders } from '../reply.js'

/**
 * PATCH: the body goes on at Upload-Offset (409 with the upload's offset when it is not there), an
 * Upload-Length declares a deferred length, Upload-Checksum is verified. A chunked body longer than the
 * upload is stored up to its length and answered 413 (the upload is then finished, with its hooks).
 */
export function patchHandler({ config, core, logger }: TusDeps): TusHandler {
  return async (req, res) => {
    setTusHeaders(config, req, res)
    try {
      const offset = integerHeader(req.get('upload-offset'))
      const length = integerHeader(req.get('upload-length'))
      if (offset === undefined) throw ERRORS.offsetRequired
      if (Number.isNaN(offset) || Number.isNaN(length)) throw ERRORS.badOffsetOrLength
      const contentLength = integerHeader(req.get('content-length'))
      const written = await core.append(callerOf(req, grantOf(req)?.maxSize), idOf(req, config), {
        offset,
        length,
        present: hasBody(req),
        contentLength: Number.isNaN(contentLength) ? undefined : contentLength,
        checksum: checksumOf(req),
      })
      const offsetHeader = { 'Upload-Offset': String(written.upload.offset) }
      if (written.overflowed && !written.failure) return replyError(config, logger, req, res, ERRORS.bodyTooLarge.with(offsetHeader))
      answerWritten(config, logger, req, res, written, core.expiration, { status: 204, headers: () => offsetHeader })
    } catch (error) {
      replyError(config, logger, req, res, error)
    }
  }
}
