import { ALLOWED_METHODS, HEADERS, MAX_AGE, TUS_VERSION } from '@tus/utils'
import { CHECKSUM_ALGORITHMS } from '../../core/checksum.js'
import { IETF_FIELDS } from '../../http/fields.js'
import type { TusDeps, TusHandler } from '../deps.js'
import { setTusHeaders } from '../reply.js'

const ALLOWED_HEADERS = [...HEADERS, 'X-Request-Id', 'Upload-Checksum', 'Idempotency-Key', ...IETF_FIELDS].join(', ')

/** OPTIONS: 200 with what the server supports (version, extensions, max size, checksum algorithms), and a CORS preflight's answer. */
export function optionsHandler({ config, extensions }: TusDeps): TusHandler {
  return async (req, res) => {
    setTusHeaders(config, req, res)
    res.set({
      'Tus-Version': TUS_VERSION.join(','),
      'Tus-Extension': extensions.join(','),
      'Access-Control-Allow-Methods': ALLOWED_METHODS,
      'Access-Control-Allow-Headers': ALLOWED_HEADERS,
      'Access-Control-Max-Age': String(MAX_AGE),
    })
    if (extensions.includes('checksum')) res.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
    if (config.MAX_SIZE > 0) res.set('Tus-Max-Size', String(config.MAX_SIZE))
    res.status(200).setHeader('Content-Length', '0')
    res.end()
  }
}
