import type { IncomingMessage, ServerResponse } from 'node:http'
import { EVENTS, Server } from '@tus/server'
import type { DataStore, Locker, Upload } from '@tus/utils'
import type { Config } from '../config.js'
import { allowedOrigin, EXTRA_EXPOSED_HEADERS } from '../cors.js'
import { IETF_FIELDS } from '../ietf/versions.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { ownerStamp } from '../auth/owner.js'
import type { Hooks, ResponseChanges } from '../hooks/index.js'
import { requestContext } from '../requestContext.js'
import { mapTusError } from './errors.js'
import { concatStamp } from './concat.js'
import { instrumentLocker } from './instrumentLocker.js'
import { instrumentStore } from './instrumentStore.js'
import { stampReserved } from './reservedMetadata.js'
import { uploadIdOf } from './uploadUrl.js'
import { nodeOf } from './webRequest.js'

/** What happens around every creation and finish, whoever handles the request. */
export interface UploadLifecycle {
  /**
   * Before an upload is stored: the creator's principal and the Upload-Concat go into reserved metadata
   * keys (a client's own values for them are dropped), so that pre-create sees a partial or final upload;
   * pre-create may then refuse (it throws), or change the id and metadata, and the keys are stamped again
   * so no hook can set or drop them.
   */
  prepare(req: IncomingMessage, res: ServerResponse | undefined, upload: Upload): Promise<void>
  /** Once stored: counted, logged, post-create sent. */
  created(req: IncomingMessage, upload: Upload): void
  /** Its last byte stored: pre-finish, whose answer may change the response (post-finish queued). */
  finishing(req: IncomingMessage, upload: Upload): Promise<ResponseChanges>
  /** Once finished and answered: counted and logged. */
  finished(upload: Upload): void
}

export interface TusEndpoint {
  server: Server
  lifecycle: UploadLifecycle
  /** The locker as the tus handlers use it (instrumented). */
  locker: Locker
  /** Resolves when no write to the store is in progress. */
  drain(): Promise<void>
}

/**
 * The tus endpoint: the creation lifecycle our handlers share (post.ts, final.ts, patch.ts, the IETF
 * draft's), and `@tus/server` for what is left to it (OPTIONS and DELETE, with terminations logged,
 * counted and hooked).
 */
export function createTusServer(
  config: Config,
  datastore: DataStore,
  storeLocker: Locker,
  logger: Logger,
  metrics: Metrics,
  hooks?: Hooks,
): TusEndpoint {
  // The upload a DELETE removes, read before it is gone, and its post-terminate being queued.
  const terminating = new WeakMap<Request, Upload>()
  const queued = new WeakMap<Request, Promise<void>>()
  const writes = instrumentStore(datastore, metrics)
  const locker = instrumentLocker(storeLocker, metrics)
  const ids = (upload: Upload) => ({ requestId: requestContext.current()?.requestId, uploadId: upload.id })
  const stamp = stampReserved(ownerStamp, concatStamp)
  const lifecycle: UploadLifecycle = {
    async prepare(req, res, upload) {
      stamp(req, upload)
      if (!hooks) return
      await hooks.preCreate(req, res, upload)
      stamp(req, upload)
    },
    created(req, upload) {
      metrics.uploadsCreated.inc()
      logger.info('upload created', { ...ids(upload), size: upload.size })
      hooks?.postCreate(req, upload)
    },
    finishing: async (req, upload) => hooks?.finishing(req, upload),
    finished(upload) {
      metrics.uploadsFinished.inc()
      logger.info('upload finished', { ...ids(upload), size: upload.size })
    },
  }
  const server = new Server({
    path: config.TUS_PATH,
    datastore,
    locker,
    lockDrainTimeout: config.LOCK_DRAIN_TIMEOUT,
    maxSize: config.MAX_SIZE,
    respectForwardedHeaders: false, // Location is uploadUrl's
    // A function, not the list: given a list, @tus/server answers an origin not on it with the list's first.
    allowedOrigins: config.CORS_ORIGINS === '*' ? undefined : (origin) => allowedOrigin(config, origin) !== undefined,
    allowedCredentials: config.CORS_CREDENTIALS,
    exposedHeaders: EXTRA_EXPOSED_HEADERS,
    allowedHeaders: ['X-Request-Id', 'Upload-Checksum', ...IETF_FIELDS],
    getFileIdFromRequest: (req) => uploadIdOf(req),
    onIncomingRequest: async (req, id) => {
      if (req.method !== 'DELETE' || !hooks?.watchesTermination) return
      // An unknown upload: @tus/server answers its 404.
      const upload = await datastore.getUpload(id).catch(() => undefined)
      if (!upload) return
      await hooks.preTerminate(nodeOf(req).req, nodeOf(req).res, upload)
      terminating.set(req, upload)
    },
    onResponseError: mapTusError(logger),
  })

  server.on(EVENTS.POST_TERMINATE, (req, _res, id) => {
    metrics.uploadsTerminated.inc()
    logger.info('upload terminated', { requestId: requestContext.current()?.requestId, uploadId: id })
    const upload = terminating.get(req)
    if (upload && hooks) queued.set(req, hooks.terminated(nodeOf(req).req, upload))
  })
  // post-terminate is on disk before the client hears that the upload is gone, so a crash right after
  // cannot lose it: the DELETE's response waits for what its POST_TERMINATE event queued.
  const deletion = server.handlers.DELETE
  const sendDeletion = deletion.send.bind(deletion)
  deletion.send = async (req, context, headers) => {
    const response = await sendDeletion(req, context, headers)
    await queued.get(req)
    return response
  }
  return { server, lifecycle, locker, drain: writes.drain }
}
