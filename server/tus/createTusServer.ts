import { EVENTS, Server } from '@tus/server'
import type { DataStore, Locker, Upload } from '@tus/utils'
import type { Config } from '../config.js'
import { EXTRA_EXPOSED_HEADERS } from '../cors.js'
import { IETF_FIELDS } from '../ietf/versions.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { stampOwner } from '../auth/owner.js'
import { requestContext } from '../requestContext.js'
import { newUploadId } from '../../stores/uploadId.js'
import { mapTusError } from './errors.js'
import { HeadHandler } from './handlers/head.js'
import { instrumentLocker } from './instrumentLocker.js'
import { instrumentStore } from './instrumentStore.js'
import { uploadIdOf } from './uploadUrl.js'

export interface TusEndpoint {
  server: Server
  /** The locker as the tus handlers use it (instrumented). */
  locker: Locker
  /** Resolves when no write to the store is in progress. */
  drain(): Promise<void>
}

/** `@tus/server` set up as tusgate serves it: our ids, our HEAD, events logged and counted. */
export function createTusServer(config: Config, datastore: DataStore, storeLocker: Locker, logger: Logger, metrics: Metrics): TusEndpoint {
  const writes = instrumentStore(datastore, metrics)
  const locker = instrumentLocker(storeLocker, metrics)
  const server = new Server({
    path: config.TUS_PATH,
    datastore,
    locker,
    lockDrainTimeout: config.LOCK_DRAIN_TIMEOUT,
    maxSize: config.MAX_SIZE,
    respectForwardedHeaders: config.TRUST_PROXY,
    allowedOrigins: config.CORS_ORIGINS === '*' ? undefined : config.CORS_ORIGINS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    allowedHeaders: ['X-Request-Id', ...IETF_FIELDS],
    namingFunction: () => {
      const id = newUploadId()
      const context = requestContext.current()
      if (context) context.uploadId = id
      return id
    },
    getFileIdFromRequest: (req) => uploadIdOf(req),
    // The creator's principal in the upload's metadata; a client's own value for that key is dropped.
    onUploadCreate: stampOwner,
    onResponseError: mapTusError(logger),
  })
  server.handlers.HEAD = new HeadHandler(datastore, locker) as unknown as Server['handlers']['HEAD']

  const ids = (upload: Upload) => ({ requestId: requestContext.current()?.requestId, uploadId: upload.id })
  server.on(EVENTS.POST_CREATE, (_req, upload) => {
    metrics.uploadsCreated.inc()
    logger.info('upload created', { ...ids(upload), size: upload.size })
  })
  server.on(EVENTS.POST_FINISH, (_req, _res, upload) => {
    metrics.uploadsFinished.inc()
    logger.info('upload finished', { ...ids(upload), size: upload.size })
  })
  server.on(EVENTS.POST_TERMINATE, (_req, _res, id) => {
    metrics.uploadsTerminated.inc()
    logger.info('upload terminated', { requestId: requestContext.current()?.requestId, uploadId: id })
  })
  return { server, locker, drain: writes.drain }
}
