import { EVENTS, Server } from '@tus/server'
import type { DataStore, Locker, Upload } from '@tus/utils'
import type { Config } from '../config.js'
import { EXTRA_EXPOSED_HEADERS } from '../cors.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'
import { newUploadId } from '../../stores/uploadId.js'
import { mapTusError } from './errors.js'
import { withConflictOffset } from './handlers/conflictOffset.js'
import { HeadHandler } from './handlers/head.js'
import { uploadIdOf } from './uploadUrl.js'

/**
 * Wraps the store's writes, whatever the store: each request's log line gets the bytes it stored,
 * and shutdown can wait for writes in progress (the response to a dropped request may never settle).
 */
function trackWrites(store: DataStore): { drain(): Promise<void> } {
  const pending = new Set<Promise<number>>()
  const write = store.write.bind(store)
  store.write = (stream, id, offset) => {
    const writing = write(stream, id, offset).then((end) => {
      const context = requestContext.current()
      if (context) context.bytes += end - offset
      return end
    })
    pending.add(writing)
    void writing.catch(() => {}).finally(() => pending.delete(writing))
    return writing
  }
  return {
    async drain() {
      await Promise.allSettled([...pending])
    },
  }
}

export interface TusEndpoint {
  server: Server
  /** Resolves when no write to the store is in progress. */
  drain(): Promise<void>
}

/** `@tus/server` set up as tusgate serves it: our ids, our HEAD, and events logged. */
export function createTusServer(config: Config, datastore: DataStore, locker: Locker, logger: Logger): TusEndpoint {
  const writes = trackWrites(datastore)
  const server = new Server({
    path: config.TUS_PATH,
    datastore,
    locker,
    lockDrainTimeout: config.LOCK_DRAIN_TIMEOUT,
    maxSize: config.MAX_SIZE,
    respectForwardedHeaders: config.TRUST_PROXY,
    allowedOrigins: config.CORS_ORIGINS === '*' ? undefined : config.CORS_ORIGINS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    allowedHeaders: ['X-Request-Id'],
    namingFunction: () => {
      const id = newUploadId()
      const context = requestContext.current()
      if (context) context.uploadId = id
      return id
    },
    getFileIdFromRequest: (req) => uploadIdOf(req),
    onResponseError: mapTusError(logger),
  })
  server.handlers.HEAD = new HeadHandler(datastore, locker) as unknown as Server['handlers']['HEAD']
  server.handlers.PATCH.send = withConflictOffset(server.handlers.PATCH.send.bind(server.handlers.PATCH), datastore)

  const ids = (upload: Upload) => ({ requestId: requestContext.current()?.requestId, uploadId: upload.id })
  server.on(EVENTS.POST_CREATE, (_req, upload) => logger.info('upload created', { ...ids(upload), size: upload.size }))
  server.on(EVENTS.POST_FINISH, (_req, _res, upload) => logger.info('upload finished', { ...ids(upload), size: upload.size }))
  server.on(EVENTS.POST_TERMINATE, (_req, _res, id) =>
    logger.info('upload terminated', { requestId: requestContext.current()?.requestId, uploadId: id }),
  )
  return { server, drain: writes.drain }
}
