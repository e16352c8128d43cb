import { pipeline } from 'node:stream/promises'
import type { Upload } from '@tus/utils'
import { create as contentDisposition } from 'content-disposition'
import type { RequestHandler } from 'express'
import parseRange from 'range-parser'
import type { StoreBackend } from '../../../stores/types.js'
import { isUploadId } from '../../../stores/uploadId.js'
import type { Config } from '../../config.js'
import { toUploadError } from '../../core/errors.js'
import type { UploadCore } from '../../core/uploads.js'
import { corsHeaders } from '../../cors.js'
import { callerOf } from '../../http/request.js'
import type { Logger } from '../../logger.js'
import { requestContext } from '../../requestContext.js'

// Types a browser may show inline; anything else (HTML, SVG, PDF...) is forced to download.
const INLINE_TYPES = new Set([
  'text/plain',
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'audio/ogg',
  'audio/webm',
  'audio/wav',
  'video/mp4',
  'video/webm',
  'video/ogg',
])
const MIME_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i

function contentHeaders(upload: Upload): Record<string, string> {
  const { filetype, filename } = upload.metadata ?? {}
  const type = filetype && MIME_TYPE.test(filetype) ? filetype.toLowerCase() : 'application/octet-stream'
  const disposition = INLINE_TYPES.has(type) ? 'inline' : 'attachment'
  return {
    'Content-Type': type,
    // content-disposition quotes and escapes the name and adds an RFC 5987 form for non-ASCII names.
    'Content-Disposition': filename ? contentDisposition(filename, { type: disposition }) : disposition,
    'X-Content-Type-Options': 'nosniff',
  }
}

/**
 * GET of a finished upload, streamed from the store by us: `@tus/server`'s GET hands a Node stream
 * to a web Response, and undici's async-iterator body then closes an already cancelled
 * ReadableStream when a client hangs up at the end of the body, an uncaught ERR_INVALID_STATE.
 */
export function download(config: Config, backend: StoreBackend, core: UploadCore, logger: Logger): RequestHandler {
  return async (req, res) => {
    res.set(corsHeaders(config, req.headers.origin))
    const id = String(req.params.id)
    const fail = (status: number, message: string) => res.status(status).type('text/plain').send(`${message}\n`)
    if (!isUploadId(id)) return fail(404, 'Upload not found')
    const context = requestContext.current()
    if (context) context.uploadId = id

    // A store that cannot answer is not an unknown upload: its fault is answered as such (503, 507).
    const upload = await backend.datastore.getUpload(id).catch((error) => {
      const { fault } = toUploadError(error).error
      if (fault && fault !== 'internal') throw error
      return undefined
    })
    if (!upload) return fail(404, 'Upload not found')
    try {
      await core.checkAccess(callerOf(req), upload, 'read')
    } catch (failure) {
      const { error, unexpected } = toUploadError(failure)
      if (unexpected) logger.error('download refused', { requestId: context?.requestId, uploadId: id, error: failure })
      return res.status(error.status).set(error.headers).type('text/plain').send(error.body)
    }
    if (upload.size === undefined || upload.offset !== upload.size) return fail(404, 'Upload is not finished')

    // setHeader, not res.set: Express would append a charset to the stored file's type.
    for (const [name, value] of Object.entries(contentHeaders(upload))) res.setHeader(name, value)
    res.set({ 'Accept-Ranges': 'bytes', 'Cache-Control': 'private, no-cache' })
    let range: { start: number; end: number } | undefined
    const header = req.headers.range
    if (header && upload.size > 0) {
      const ranges = parseRange(upload.size, header, { combine: true })
      if (ranges === -1) {
        res.set('Content-Range', `bytes */${upload.size}`)
        return fail(416, 'Range not satisfiable')
      }
      // A malformed or multi-part Range is ignored, as RFC 9110 allows: the whole upload is sent.
      if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) range = ranges[0]
    }

    const body = await backend.download(id, range)
    if (range) {
      res.status(206).set({
        'Content-Range': `bytes ${range.start}-${range.end}/${upload.size}`,
        'Content-Length': String(range.end - range.start + 1),
      })
    } else {
      res.status(200).set('Content-Length', String(upload.size))
    }
    try {
      await pipeline(body, res)
    } catch (error) {
      // A client that leaves early is normal; anything else is a store failure worth a line.
      if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        logger.error('download failed', { requestId: context?.requestId, uploadId: id, error })
      }
    }
  }
}
