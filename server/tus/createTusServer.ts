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

/** Counts the bytes each request stores, for its log line, whatever the store. */
function countStoredBytes(store: DataStore): void {
  const write = store.write.bind(store)
  store.write = async (stream, id, offset) => {
    const end = await write(stream, id, offset)
    const context = requestContext.current()
    if (context) context.bytes += end - offset
    return end
  }
}

/** `@tus/server` set up as tusgate serves it: our ids, our HEAD, and events logged. */
export function createTusServer(config: Config, datastore: DataStore, locker: Locker, logger: Logger): Server {
  countStoredBytes(datastore)
  const server = new Server({
    path: config.TUS_PATH,
    datastore,
    locker,
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
  return server
}
