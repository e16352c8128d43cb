import { Metadata, type Upload } from '@tus/utils'
import { expiresAt } from '../../../stores/expiry.js'
import { concatOf, visibleMetadata } from '../../core/records.js'
import { callerOf } from '../../http/request.js'
import { idOf, type TusDeps, type TusHandler } from '../deps.js'
import { replyError, setTusHeaders } from '../reply.js'

/** HEAD of an upload: its offset as its last writer left it, length (or deferred), metadata, concatenation and expiry. */
export function headHandler({ config, core, logger }: TusDeps): TusHandler {
  return async (req, res) => {
    setTusHeaders(config, req, res)
    let upload: Upload
    try {
      upload = await core.settle(callerOf(req), idOf(req, config))
    } catch (error) {
      return replyError(config, logger, req, res, error)
    }
    res.set('Cache-Control', 'no-store')
    // A final upload still waiting for its partials shows the bytes contiguous from its start (settle).
    res.set('Upload-Offset', String(upload.offset))
    const concat = concatOf(upload)
    if (concat) res.set('Upload-Concat', concat)
    if (upload.sizeIsDeferred) res.set('Upload-Defer-Length', '1')
    else res.set('Upload-Length', String(upload.size))
    const metadata = visibleMetadata(upload.metadata) // never the reserved keys
    if (metadata) res.set('Upload-Metadata', Metadata.stringify(metadata) ?? '')
    const expires = expiresAt(upload, core.expiration)
    if (expires) res.set('Upload-Expires', expires.toUTCString())
    res.status(200).end()
  }
}
