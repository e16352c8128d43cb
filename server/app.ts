import express, { type ErrorRequestHandler, type Express } from 'express'
import { lockers, stores } from '../stores/registry.js'
import type { StoreBackend } from '../stores/types.js'
import { accessLog } from './accessLog.js'
import { accessControl } from './auth/access.js'
import type { Config } from './config.js'
import { healthRoutes } from './health.js'
import { ietfRouter } from './ietf/router.js'
import { Metrics, metricsRoute } from './metrics.js'
import type { Logger } from './logger.js'
import { requestContext } from './requestContext.js'
import { createTusServer, type TusEndpoint } from './tus/createTusServer.js'
import { download } from './tus/download.js'
import { ExpirySweeper } from './tus/expirySweeper.js'
import { patchHandler } from './tus/handlers/patch.js'
import { protocolGuard } from './tus/protocolGuard.js'
import { webUi } from './web/index.js'

export interface App {
  app: Express
  tus: TusEndpoint
  store: StoreBackend
  sweeper: ExpirySweeper
  metrics: Metrics
  /** Resolves when no tus request is writing to the store. */
  drain(): Promise<void>
  close(): Promise<void>
}

/** The Express app: health, downloads and the tus endpoint, over the store and locker the config names. */
export async function createApp(config: Config, logger: Logger): Promise<App> {
  const store = await (await stores[config.STORE]()).create(config)
  const { locker, close: closeLocker } = await (await lockers[config.LOCKER]()).create(config)
  const metrics = new Metrics()
  const tus = createTusServer(config, store.datastore, locker, logger, metrics)
  const sweeper = new ExpirySweeper(store, locker, logger, metrics)
  if (store.datastore.hasExtension('expiration')) sweeper.start(config.EXPIRY_SWEEP_INTERVAL)

  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', config.TRUST_PROXY)
  app.use(accessLog(logger))
  app.use(metrics.middleware())
  app.use(healthRoutes(store))
  if (config.METRICS) app.use(metricsRoute(config, metrics))
  if (config.WEB_UI) app.use(webUi(config, store))

  // No body parser anywhere near these routes: @tus/server streams the raw request body.
  const collection = config.TUS_PATH
  const access = accessControl(config, store.datastore, logger)
  app.use(collection, access.authenticate)
  // Express routes HEAD to GET handlers; a tus HEAD must reach @tus/server instead.
  const get = download(config, store, logger)
  app.get(`${collection}/:id`, access.downloads, (req, res, next) => (req.method === 'GET' ? get(req, res, next) : next()))
  const tusRoute = [collection, `${collection}/{*splat}`]
  const patch = patchHandler(config, tus.server, store.datastore, tus.locker, logger)
  // Requests of the IETF resumable-upload draft (Upload-Draft-Interop-Version) are answered before the tus guard.
  const ietf = ietfRouter(config, tus, store.datastore, access, logger)
  app.all(tusRoute, ietf, protocolGuard(config), access.uploads, (req, res, next) => {
    // PATCH is ours (the upload hot path); the other methods are @tus/server's.
    if (req.method === 'PATCH') return void patch(req, res).catch(next)
    void tus.server.handle(req, res).catch(next)
  })

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    const context = requestContext.current()
    const status = typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500
    if (status === 500) logger.error('request failed', { requestId: context?.requestId, uploadId: context?.uploadId, error })
    if (res.headersSent) return res.destroy()
    res.status(status).type('text/plain').send(status === 500 ? 'Internal server error\n' : `${error.message}\n`)
  }
  app.use(onError)

  return {
    app,
    tus,
    store,
    sweeper,
    metrics,
    drain: tus.drain,
    async close() {
      await sweeper.stop()
      await Promise.all([store.close(), closeLocker()])
    },
  }
}
