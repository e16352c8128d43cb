import cluster from 'node:cluster'
import { timingSafeEqual } from 'node:crypto'
import type { Server } from 'node:http'
import { type RequestHandler, Router } from 'express'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { S3Request } from '../stores/s3/requestObserver.js'
import { clusterMetricsText } from './clusterMetrics.js'
import type { Config } from './config.js'
import type { Fault } from './core/errors.js'
import { requestContext } from './requestContext.js'

const PREFIX = 'tusgate_'
const FAULTS: Fault[] = ['no-space', 'unavailable', 'busy', 'internal']
const SECONDS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** Every Prometheus metric of one tusgate process, under the `tusgate_` prefix. */
export class Metrics {
  readonly registry = new Registry()
  private readonly registers = [this.registry]

  readonly requests = new Counter({
    name: `${PREFIX}http_requests_total`,
    help: 'HTTP requests by method and status',
    labelNames: ['method', 'status'],
    registers: this.registers,
  })
  readonly requestDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'HTTP request duration by method',
    labelNames: ['method'],
    buckets: SECONDS,
    registers: this.registers,
  })
  readonly bytesReceived = new Counter({
    name: `${PREFIX}bytes_received_total`,
    help: 'Upload bytes accepted by the store',
    registers: this.registers,
  })
  readonly uploadsCreated = this.counter('uploads_created_total', 'Uploads created')
  readonly uploadsFinished = this.counter('uploads_finished_total', 'Uploads finished')
  readonly uploadsTerminated = this.counter('uploads_terminated_total', 'Uploads terminated by their client')
  readonly uploadsExpired = this.counter('uploads_expired_total', 'Unfinished uploads removed by the expiry sweep')
  readonly orphansRemoved = this.counter('orphans_removed_total', 'Leftovers of creations or terminations cut between two steps, removed by the sweep')
  readonly uploadErrors = new Counter({
    name: `${PREFIX}upload_errors_total`,
    help: 'Requests answered for a fault of ours, by cause: no-space (507), unavailable (a back end gone or throttling, 503), busy (resource pressure, 503), internal (500)',
    labelNames: ['cause'],
    registers: this.registers,
  })
  readonly lockWait = new Histogram({
    name: `${PREFIX}lock_wait_seconds`,
    help: 'Time to acquire an upload lock',
    buckets: SECONDS,
    registers: this.registers,
  })
  readonly lockTimeouts = this.counter('lock_timeouts_total', 'Lock acquisitions that timed out or failed')
  readonly storeDuration = new Histogram({
    name: `${PREFIX}store_operation_duration_seconds`,
    help: 'Store operation duration by operation and outcome',
    labelNames: ['operation', 'outcome'],
    buckets: SECONDS,
    registers: this.registers,
  })

  readonly s3Requests = new Counter({
    name: `${PREFIX}s3_requests_total`,
    help: 'HTTP requests sent to S3, by operation (UploadPart, HeadObject...); each attempt of a retried command counts',
    labelNames: ['operation'],
    registers: this.registers,
  })
  readonly s3RequestErrors = new Counter({
    name: `${PREFIX}s3_request_errors_total`,
    help: 'S3 requests that failed, by operation and HTTP status (none: no answer); a 404 to HeadObject is also how the store asks whether an object exists',
    labelNames: ['operation', 'status'],
    registers: this.registers,
  })
  readonly s3RequestDuration = new Histogram({
    name: `${PREFIX}s3_request_duration_seconds`,
    help: 'S3 request duration by operation, from sending to the answer (an UploadPart includes sending its part)',
    labelNames: ['operation'],
    buckets: SECONDS,
    registers: this.registers,
  })

  /** What the S3 store reports of each request it sends, counted. */
  readonly observeS3Request = ({ operation, seconds, failure }: S3Request): void => {
    this.s3Requests.inc({ operation })
    this.s3RequestDuration.observe({ operation }, seconds)
    if (failure) this.s3RequestErrors.inc({ operation, status: String(failure.status) })
  }

  readonly hookInvocations = new Counter({
    name: `${PREFIX}hook_invocations_total`,
    help: 'Hook calls by type and outcome (ok, error); each delivery attempt of post-finish and post-terminate counts',
    labelNames: ['type', 'outcome'],
    registers: this.registers,
  })
  readonly hookDeadLetters = new Counter({
    name: `${PREFIX}hook_dead_letters_total`,
    help: 'post-finish and post-terminate hooks given up after HOOKS_MAX_ATTEMPTS (or that could not be queued)',
    labelNames: ['type'],
    registers: this.registers,
  })

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX })
    // Every cause from the start, so a rate over them is defined before the first fault.
    for (const cause of FAULTS) this.uploadErrors.inc({ cause }, 0)
  }

  /** Uploads with a write in progress, read from `count` at each scrape. */
  uploadsInProgress(count: () => number): void {
    this.gauge('uploads_in_progress', 'Uploads with a PATCH or creation-with-upload writing to the store', count)
  }

  /** S3 parts holding one of S3_CONCURRENT_PARTS and waiting for one, read at each scrape. */
  s3PartSlots(slots: { readonly inFlight: number; readonly waiting: number }): void {
    this.gauge('s3_parts_in_flight', 'S3 parts spooled or uploading, each holding one of S3_CONCURRENT_PARTS', () => slots.inFlight)
    this.gauge('s3_parts_waiting', 'S3 parts ready to go, waiting for one of S3_CONCURRENT_PARTS', () => slots.waiting)
  }

  /** Creations waiting for one of CREATE_SLOTS, read at each scrape. */
  creationsWaiting(count: () => number): void {
    this.gauge('creations_waiting', 'Creations (POST) waiting for a free creation slot (CREATE_SLOTS)', count)
  }

  private gauge(name: string, help: string, count: () => number): void {
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers: this.registers,
      collect() {
        this.set(count())
      },
    })
  }

  /** post-finish and post-terminate hooks waiting in the outbox, read at each scrape. */
  hookOutboxPending(count: () => Promise<number>): void {
    new Gauge({
      name: `${PREFIX}hook_outbox_pending`,
      help: 'Hooks waiting in the outbox for delivery',
      registers: this.registers,
      async collect() {
        this.set(await count().catch(() => 0))
      },
    })
  }

  /** Open client connections of the HTTP server. */
  openConnections(servers: Server[]): void {
    new Gauge({
      name: `${PREFIX}open_connections`,
      help: 'Open client connections',
      registers: this.registers,
      async collect() {
        const counts = servers.map((server) => new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n ?? 0))))
        this.set((await Promise.all(counts)).reduce((sum, n) => sum + n, 0))
      },
    })
  }

  /** Counts every request when it ends (status 499 when the client hung up first), and the fault its answer reported. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const stop = this.requestDuration.startTimer({ method: req.method })
      const record = requestContext.current()
      res.once('close', () => {
        stop()
        this.requests.inc({ method: req.method, status: res.writableFinished ? res.statusCode : 499 })
        if (record?.fault) this.uploadErrors.inc({ cause: record.fault })
      })
      next()
    }
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name: `${PREFIX}${name}`, help, registers: this.registers })
  }
}

/** GET /metrics in Prometheus text format, behind a bearer token when METRICS_TOKEN is set. */
export function metricsRoute(config: Pick<Config, 'METRICS_TOKEN'>, metrics: Metrics): Router {
  const router = Router()
  const expected = config.METRICS_TOKEN ? Buffer.from(`Bearer ${config.METRICS_TOKEN}`) : undefined
  router.get('/metrics', async (req, res) => {
    if (expected) {
      const given = Buffer.from(req.headers.authorization ?? '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        res.status(401).set('WWW-Authenticate', 'Bearer').type('text/plain').send('Unauthorized\n')
        return
      }
    }
    // A worker answers for the whole instance: every worker's metrics, summed by the primary.
    const text = cluster.isWorker ? await clusterMetricsText().catch(() => undefined) : await metrics.registry.metrics()
    if (text === undefined) return void res.status(503).set('Retry-After', '1').type('text/plain').send('Metrics of the other workers unavailable\n')
    res.type(metrics.registry.contentType).send(text)
  })
  return router
}
