import cluster, { type Worker } from 'node:cluster'
import { AggregatorRegistry, type PrometheusContentType } from 'prom-client'
import { MemoryLocker } from '../stores/lockers/memory.js'
import { serveLocks } from '../stores/lockers/primaryLocks.js'
import { serveClusterMetrics } from './clusterMetrics.js'
import { type Config, hooksConfigured } from './config.js'
import type { Logger } from './logger.js'
import { withRuntimeFlags } from './runtimeFlags.js'

// Several processes on one port (WORKERS > 1), with the cluster module; each worker is a whole tusgate
// (server/main.ts). The workers accept from the one listening socket themselves (SCHED_NONE), so the
// least busy one takes a new connection: with the primary handing connections out in turn (the default),
// each waited for a busy worker's acknowledgement, and under a thousand uploads a HEAD on a new
// connection waited seconds. What must be one for the instance lives in the primary (the memory
// locker's locks) or in the store (the offset, read from the file); what lives in one process and cannot
// be shared without Redis makes it one process.

/** Why this config needs one process, or undefined: state kept in memory per process, unless in Redis. */
function perProcessState(config: Config): string | undefined {
  if (config.REDIS_URL) return undefined
  if (config.STORE === 's3') return 'the S3 store caches upload info per process'
  if (hooksConfigured(config) && config.HOOKS_ENABLED.some((t) => t === 'post-finish' || t === 'post-terminate'))
    return 'the hooks outbox on disk has one writer'
  if (config.CREATE_RATE_LIMIT_IP || config.CREATE_RATE_LIMIT_PRINCIPAL) return 'creation rate limits count per process'
  if (config.MAX_UNFINISHED_PER_PRINCIPAL > 0) return 'MAX_UNFINISHED_PER_PRINCIPAL counts per process'
  return undefined
}

/** How many processes serve the port: WORKERS, or 1 where several would not be correct (logged). */
export function workerCount(config: Config, logger: Logger): number {
  if (config.WORKERS <= 1) return 1
  const reason = perProcessState(config)
  if (!reason) return config.WORKERS
  logger.warn('serving from one process', { WORKERS: config.WORKERS, reason: `${reason}; set REDIS_URL to share it` })
  return 1
}

/**
 * The primary: starts `count` workers (the others once the first listens), serves them the locks
 * (LOCKER=memory), replaces one that dies while serving, and on SIGTERM or SIGINT lets each shut down
 * gracefully and exits once all have. A worker that dies before it listens (a start-up failure) stops
 * the instance, as one process would.
 */
export function runPrimary(config: Config, logger: Logger, count: number): void {
  cluster.schedulingPolicy = cluster.SCHED_NONE
  cluster.setupPrimary({ execArgv: withRuntimeFlags(process.execArgv) })
  const locks = config.LOCKER === 'memory' ? new MemoryLocker(config.LOCK_TIMEOUT) : undefined
  // One per process: prom-client listens for the workers' replies once.
  const metrics = config.METRICS ? new AggregatorRegistry<PrometheusContentType>() : undefined
  const live = new Set<Worker>()
  let stopping = false
  let exitCode = 0
  const exitOnceAllGone = () => {
    if (live.size === 0) process.exit(exitCode)
  }
  const stop = (code: number) => {
    if (stopping) return
    stopping = true
    exitCode = code
    for (const worker of live) worker.process.kill('SIGTERM')
    // Each worker bounds its own shutdown by SHUTDOWN_TIMEOUT; this only guards against a stuck one.
    setTimeout(() => {
      for (const worker of live) worker.process.kill('SIGKILL')
    }, config.SHUTDOWN_TIMEOUT + 5000).unref()
    exitOnceAllGone()
  }
  const start = () => {
    const worker: Worker = cluster.fork()
    live.add(worker)
    if (locks) serveLocks(locks, worker)
    if (metrics) serveClusterMetrics(worker, metrics)
    let listening = false
    worker.once('listening', () => {
      listening = true
      onListening()
    })
    worker.once('exit', (code, signal) => {
      live.delete(worker)
      if (stopping) return exitOnceAllGone()
      if (!listening) return stop(1)
      logger.error('worker died; starting another', { pid: worker.process.pid, code, signal })
      start()
    })
  }
  // The first alone: a start-up failure (a store that cannot start, a port in use) is then told once.
  let listened = 0
  const onListening = () => {
    if (++listened === 1) for (let i = 1; i < count; i++) start()
    if (listened === count) logger.info('workers listening', { workers: count, primary: process.pid })
  }
  start()
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => stop(0))
}
