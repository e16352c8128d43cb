import cluster from 'node:cluster'
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type Response } from 'express'
import type { StoreBackend } from '../stores/types.js'
import { accessLog } from './accessLog.js'
import { accessControl } from './auth/access.js'
import { shareWorkerMetrics } from './clusterMetrics.js'
import type { Config } from './config.js'
import { tusExtensions } from './core/capabilities.js'
import { UploadError } from './core/errors.js'
import { UploadCore } from './core/uploads.js'
import { healthRoutes } from './health.js'
import { Hooks } from './hooks/index.js'
import { failureAnswer } from './http/failure.js'
import { createIdempotencyKeys } from './idempotency/index.js'
import { ietfRouter } from './ietf/router.js'
import { INTEROP_HEADER } from './ietf/versions.js'
import { bodyLimits } from './limits/bodies.js'
import { uploadLimits } from './limits/index.js'
import { finishedIndexOf } from './listing/finishedIndex.js'
import type { Logger } from './logger.js'
import { Metrics, metricsRoute } from './metrics.js'
import { trustsHop } from './proxyTrust.js'
import { securityHeadersOutside } from './securityHeaders.js'
import { composeStorage } from './storage/compose.js'
import type { Sweeper } from './storage/sweeper.js'
import { download } from './tus/handlers/get.js'
import { protocolGuard } from './tus/protocolGuard.js'
import { readSlotsOf } from './tus/readSlots.js'
import { tusRouter } from './tus/router.js'
import { webUi } from './web/index.js'

export interface App {
  app: Express
  core: UploadCore
  store: StoreBackend
  sweeper: Sweeper
  metrics: Metrics
  /** Resolves when no request is writing to the store. */
  drain(): Promise<void>
  close(): Promise<void>
}

/**
 * The composition root: the store and locker the config names, the upload core over them, and the
 * Express app that serves health, metrics, the web page, downloads, and tus and the IETF draft on one endpoint.
 */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const metrics = new Metrics()
  if (config.METRICS && cluster.isWorker) shareWorkerMetrics(metrics.registry)
  const storage = await composeStorage(config, { metrics, logger })
  const { backend: store, locker, sweeper, capabilities } = storage
  const hooks = await Hooks.create(config, logger, metrics)
  const slots = readSlotsOf(config)
  const idempotency = await createIdempotencyKeys(config)
  const finished = config.UPLOAD_LIST ? finishedIndexOf(config, store) : undefined
  const core = new UploadCore({
    store: store.datastore,
    abilities: {
      truncate: store.truncate?.bind(store),
      concatenate: store.concatenate?.bind(store),
      waiting: capabilities.concatenationUnfinished ? store.waitingFinals : undefined,
      deferLength: capabilities.creationDeferLength,
      termination: capabilities.termination,
      placement: capabilities.placement || undefined,
      read: (id) => store.download(id),
    },
    locker,
    hooks,
    metrics,
    logger,
    settings: {
      maxSize: config.MAX_SIZE,
      lockDrainTimeout: config.LOCK_DRAIN_TIMEOUT,
      isolation: config.AUTH_MODE === 'jwt',
      stagingDir: config.CHECKSUM_STAGING_DIR,
      removePartials: config.CONCAT_REMOVE_PARTIALS,
    },
    feed: slots && ((req, sink) => slots.feed(req, sink)),
    idempotency,
    finished,
  })
  await core.start()
  metrics.uploadsInProgress(() => core.writesInProgress)
  const limits = await uploadLimits(config, store.datastore, logger)

  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', trustsHop(config.TRUST_PROXY))
  app.use(accessLog(logger))
  app.use(metrics.middleware())
  app.use(securityHeadersOutside(config.TUS_PATH))
  // Loaded only with Redis: a process holds (and its collector walks) only the modules it uses.
  const redisReady = config.REDIS_URL ? (await import('./redisReadiness.js')).redisReadiness(config.REDIS_URL) : undefined
  app.use(healthRoutes(store, { checks: redisReady ? [redisReady] : [] }))
  if (config.METRICS) app.use(metricsRoute(config, metrics))
  const access = await accessControl(config, store.datastore, logger)
  if (config.WEB_UI) app.use(webUi(config, store, access.authenticate, finished))

  // No body parser anywhere near these routes: the handlers stream the raw request body.
  const collection = config.TUS_PATH
  app.use(collection, access.authenticate)
  // Express routes HEAD to GET handlers; a tus HEAD goes on to the tus handlers instead, and a GET of the
  // IETF draft (offset retrieval) to its router.
  const downloads = (req: Request, _res: Response, next: NextFunction) =>
    next(req.method === 'GET' && req.headers[INTEROP_HEADER] === undefined ? undefined : 'route')
  app.get(`${collection}/:id`, downloads, access.downloads, download(config, store, core, logger))
  const tus = tusRouter({ config, core, logger, extensions: tusExtensions(capabilities) })
  metrics.creationsWaiting(() => tus.queued)
  // Requests of the IETF resumable-upload draft (Upload-Draft-Interop-Version) are answered before the tus guard.
  const ietf = ietfRouter({ config, core, access, limits: limits.uploads, logger })
  app.all([collection, `${collection}/{*splat}`], bodyLimits(config), ietf, protocolGuard(config), access.uploads, limits.uploads, (req, res, next) => {
    // With listed origins every answer depends on the Origin.
    if (config.CORS_ORIGINS !== '*') res.vary('Origin')
    tus.handle(req, res, next)
  })

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    // Express's own errors (a malformed URL) carry a 4xx; anything else is answered as the catalogue says.
    const clientError = typeof error.status === 'number' && error.status >= 400 && error.status < 500
    const refusal = clientError ? new UploadError(error.status, error.message) : failureAnswer(logger, res, error)
    if (res.headersSent) return res.destroy()
    res.status(refusal.status).set(refusal.headers).type('text/plain').send(refusal.body)
  }
  app.use(onError)

  return {
    app,
    core,
    store,
    sweeper,
    metrics,
    drain: () => core.drain(),
    async close() {
      await sweeper.stop()
      await hooks?.close()
      await Promise.all([storage.close(), limits.close(), idempotency?.close(), redisReady?.close()])
    },
  }
}
