import { Router } from 'express'
import type { StoreBackend } from '../stores/types.js'

/** How long /readyz waits for the store's check: a back end that does not answer is not ready either. */
const READY_TIMEOUT_MS = 5_000

/** Something besides the store that requests depend on (Redis): ready only while it answers. */
export interface ReadinessCheck {
  /** Resolves when it answers; rejects with the reason. */
  check(): Promise<void>
  close(): Promise<void>
}

/** Resolves as `check` does, or rejects once `ms` pass without an answer. */
async function within(check: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    await Promise.race([check, late])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * /healthz: the process answers. /readyz: the store takes writes and every other dependency answers (checked
 * afresh for every call but those that arrive while a check runs, so it is ready again by itself once the
 * fault is gone), else 503 with the reason.
 */
export function healthRoutes(
  backend: StoreBackend,
  { checks = [], readyTimeoutMs = READY_TIMEOUT_MS }: { checks?: ReadinessCheck[]; readyTimeoutMs?: number } = {},
): Router {
  const router = Router()
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })
  // Probes that arrive while a check runs share its answer: a storm of them checks once.
  let running: Promise<void> | undefined
  const check = () => {
    running ??= within(
      Promise.all([backend.health(), ...checks.map((dependency) => dependency.check())]).then(() => undefined),
      readyTimeoutMs,
    ).finally(() => {
      running = undefined
    })
    return running
  }
  router.get('/readyz', async (_req, res) => {
    try {
      await check()
      res.json({ status: 'ready' })
    } catch (error) {
      res
        .status(503)
        .set('Retry-After', '5')
        .json({ status: 'unavailable', reason: (error as Error).message })
    }
  })
  return router
}
