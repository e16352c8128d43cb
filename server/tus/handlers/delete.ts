import { callerOf } from '../../http/request.js'
import { idOf, type TusDeps, type TusHandler } from '../deps.js'
import { replyError, setTusHeaders } from '../reply.js'

/** DELETE (termination): the upload is removed under its lock; an append in flight keeps what arrived within LOCK_DRAIN_TIMEOUT. */
export function deleteHandler({ config, core, logger }: TusDeps): TusHandler {
  return async (req, res) => {
    setTusHeaders(config, req, res)
    try {
      const headers = await core.terminate(callerOf(req), idOf(req, config))
      res.status(204).set(headers).end()
    } catch (error) {
      replyError(config, logger, req, res, error)
    }
  }
}
