import { Router } from 'express'
import type { StoreBackend } from '../stores/types.js'

/** /healthz: the process answers. /readyz: the store takes writes, else 503 with the reason. */
export function healthRoutes(backend: StoreBackend): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  router.get('/readyz', async (_req, res) => {
    try {
      await backend.health()
      res.json({ status: 'ready' })
    } catch (error) {
      res.status(503).json({ status: 'unavailable', reason: (error as Error).message })
    }
  })
  return router
}
