import type { EventEmitter } from 'node:events'
import type { Request, Response } from 'express'
import { EVENTS } from '@tus/server'
import { ERRORS } from '@tus/utils'
import { webRequestOf } from '../tus/webRequest.js'
import type { IetfDeps } from './deps.js'
import type { Dialect } from './versions.js'

/**
 * Upload cancellation (DELETE): removes the upload and answers 204. Taking the lock asks an append in
 * flight to let go first (it keeps what arrived within LOCK_DRAIN_TIMEOUT, then its body is cut).
 */
export async function cancelUpload(deps: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const { server, store, locker } = deps
  // pre-terminate (it may refuse) and post-terminate hooks, as for a tus DELETE.
  const web = webRequestOf(req, res)
  await server.options.onIncomingRequest?.(web, id)
  const gone = new AbortController()
  const onClose = () => gone.abort(ERRORS.ABORTED)
  req.once('close', onClose)
  const lock = locker.newLock(id)
  try {
    await lock.lock(gone.signal, () => {})
  } finally {
    req.off('close', onClose)
  }
  try {
    await store.remove(id)
  } finally {
    await lock.unlock()
  }
  res.status(204).set(deps.reply.common(req, dialect)).end()
  ;(server as EventEmitter).emit(EVENTS.POST_TERMINATE, web, res, id)
}
