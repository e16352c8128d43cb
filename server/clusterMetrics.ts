import type { Worker } from 'node:cluster'
import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client'

// /metrics of an instance with several workers (WORKERS > 1): a scrape lands on one worker, which asks
// the primary; the primary gathers every worker's registry over the cluster's IPC channel (prom-client's
// AggregatorRegistry) and answers the sum. One worker's own counters alone would jump between scrapes.

/** How long a worker waits for the primary's answer (prom-client gives up on a silent worker after 5 s). */
const ANSWER_TIMEOUT_MS = 6_000

/** Worker -> primary. */
type Ask = { tusgateMetrics: 'ask'; key: number }
/** Primary -> worker. */
type Answer = { tusgateMetrics: 'answer'; key: number; text?: string; error?: string }

const isAsk = (m: unknown): m is Ask => typeof m === 'object' && m !== null && (m as Ask).tusgateMetrics === 'ask'
const isAnswer = (m: unknown): m is Answer => typeof m === 'object' && m !== null && (m as Answer).tusgateMetrics === 'answer'

/** In the primary: answers a worker's ask with every worker's metrics, summed. */
export function serveClusterMetrics(worker: Worker, aggregator: AggregatorRegistry<PrometheusContentType>): void {
  worker.on('message', (message: unknown) => {
    if (!isAsk(message)) return
    const reply = (answer: Answer) => {
      if (worker.isConnected()) worker.send(answer)
    }
    aggregator.clusterMetrics().then(
      (text) => reply({ tusgateMetrics: 'answer', key: message.key, text }),
      (error: Error) => reply({ tusgateMetrics: 'answer', key: message.key, error: error.message }),
    )
  })
}

/** In a worker: `registry` is what this worker gives when the primary gathers. */
export function shareWorkerMetrics(registry: Registry): void {
  AggregatorRegistry.setRegistries(registry)
  // Constructing one makes prom-client answer the primary's requests in this worker.
  new AggregatorRegistry<PrometheusContentType>()
}

let nextKey = 0

/** In a worker: the metrics of every worker, summed by the primary. */
export function clusterMetricsText(): Promise<string> {
  const key = nextKey++
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown) => {
      if (!isAnswer(message) || message.key !== key) return
      done()
      if (message.text !== undefined) resolve(message.text)
      else reject(new Error(message.error ?? 'no metrics'))
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error('the primary did not answer'))
    }, ANSWER_TIMEOUT_MS)
    const done = () => {
      clearTimeout(timer)
      process.off('message', onMessage)
    }
    process.on('message', onMessage)
    process.send?.({ tusgateMetrics: 'ask', key } satisfies Ask)
  })
}
