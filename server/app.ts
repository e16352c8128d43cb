import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express'
import { lockers, stores } from '../stores/registry.js'
import type { StoreBackend } from '../stores/types.js'
import { accessLog } from './accessLog.js'
import { accessControl } from './auth/access.js'
import type { Config } from './config.js'
import { healthRoutes } from './health.js'
import { Hooks } from './hooks/index.js'
import { bodyLimits } from './limits/bodies.js'
import { uploadLimits } from './limits/index.js'
import { isResourcePressure, RETRY_AFTER_SECONDS } from './limits/resourcePressure.js'
import { ietfRouter } from './ietf/router.js'
import { Metrics, metricsRoute } from './metrics.js'
import type { Logger } from './logger.js'
import { trustsHop } from './proxyTrust.js'
import { requestContext } from './requestContext.js'
import { securityHeadersOutside } from './securityHeaders.js'
import { checksumRequests } from './tus/checksum/checksumRequests.js'
import { verifyChecksums } from './tus/checksum/verifyChecksums.js'
import { createTusServer, type TusEndpoint } from './tus/createTusServer.js'
import { CreationSlots } from './tus/creationSlots.js'
import { download } from './tus/download.js'
import { ExpirySweeper } from './tus/expirySweeper.js'
import { finalUploadHandler } from './tus/handlers/final.js'
import { headHandler } from './tus/handlers/head.js'
import { patchHandler } from './tus/handlers/patch.js'
import { postHandler } from './tus/handlers/post.js'
import { isFinalHeader } from './tus/concat.js'
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
  await verifyChecksums(store, { stagingDir: config.CHECKSUM_STAGING_DIR, logger })
  const { locker, close: closeLocker } = await (await lockers[config.LOCKER]()).create(config)
  const metrics = new Metrics()
  const hooks = await Hooks.create(config, store.datastore, logger, metrics)
  const tus = createTusServer(config, store.datastore, locker, logger, metrics, hooks)
  const sweeper = new ExpirySweeper(store, locker, logger, metrics)
  if (store.datastore.hasExtension('expiration')) sweeper.start(config.EXPIRY_SWEEP_INTERVAL)
  const limits = await uploadLimits(config, store.datastore, logger)

  const app = express()
  app.disable('x-powered-by')
  app.set('trust proxy', trustsHop(config.TRUST_PROXY))
  app.use(accessLog(logger))
  app.use(metrics.middleware())
  app.use(securityHeadersOutside(config.TUS_PATH))
  app.use(healthRoutes(store))
  if (config.METRICS) app.use(metricsRoute(config, metrics))
  const access = accessControl(config, store.datastore, logger)
  if (config.WEB_UI) app.use(webUi(config, store, access.authenticate))

  // No body parser anywhere near these routes: @tus/server streams the raw request body.
  const collection = config.TUS_PATH
  app.use(collection, access.authenticate)
  // Express routes HEAD to GET handlers; a tus HEAD must reach @tus/server instead.
  const get = download(config, store, logger)
  app.get(`${collection}/:id`, access.downloads, (req, res, next) => (req.method === 'GET' ? get(req, res, next) : next()))
  const tusRoute = [collection, `${collection}/{*splat}`]
  const head = headHandler(config, store.datastore, tus.locker, logger)
  const patch = patchHandler(config, tus, store.datastore, logger, hooks)
  // Undefined for a store that cannot concatenate: Upload-Concat is then answered with 501.
  const final = finalUploadHandler(config, tus, store, logger)
  const post = postHandler(config, tus, store.datastore, final !== undefined, logger, hooks)
  const creations = new CreationSlots(config.CREATE_SLOTS)
  metrics.creationsWaiting(() => creations.queued)
  const create = async (req: Request, res: Response) => {
    // A client that left while its creation waited gets none.
    if (req.socket.destroyed) return
    await (final && isFinalHeader(req.get('upload-concat')) ? final : post)(req, res)
  }
  // Requests of the IETF resumable-upload draft (Upload-Draft-Interop-Version) are answered before the tus guard.
  const ietf = ietfRouter(config, tus, store.datastore, access, limits.uploads, logger, hooks)
  app.all(tusRoute, bodyLimits(config), ietf, protocolGuard(config), access.uploads, limits.uploads, checksumRequests(config), (req, res, next) => {
    // With listed origins every answer depends on the Origin (ours say so in corsHeaders; @tus/server's would not).
    if (config.CORS_ORIGINS !== '*') res.vary('Origin')
    // HEAD, PATCH and POST are ours; OPTIONS and DELETE are @tus/server's.
    if (req.method === 'HEAD') return void head(req, res).catch(next)
    if (req.method === 'PATCH') return void patch(req, res).catch(next)
    if (req.method === 'POST') return void creations.run(() => create(req, res)).catch(next)
    void tus.server.handle(req, res).catch(next)
  })

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    const context = requestContext.current()
    const status = isResourcePressure(error) ? 503 : typeof error.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500
    if (status === 500) logger.error('request failed', { requestId: context?.requestId, uploadId: context?.uploadId, error })
    if (res.headersSent) return res.destroy()
    if (status === 503) res.set('Retry-After', String(RETRY_AFTER_SECONDS))
    res.status(status).type('text/plain').send(status === 500 ? 'Internal server error\n' : status === 503 ? 'The server is short of resources; retry shortly\n' : `${error.message}\n`)
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
      await hooks?.close()
      await Promise.all([store.close(), closeLocker(), limits.close()])
    },
  }
}
