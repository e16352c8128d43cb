import type { DataStore } from '@tus/utils'
import type { Metrics } from '../metrics.js'
import { requestContext } from '../requestContext.js'

const TIMED = ['create', 'getUpload', 'remove', 'declareUploadLength'] as const

/**
 * Wraps a store, whatever it is: operation durations for metrics; the bytes each write stores, for the
 * request's log line and the byte counter; and the writes in progress, which shutdown waits for (the
 * response to a dropped request may never settle, the write does).
 */
export function instrumentStore(store: DataStore, metrics: Metrics): { drain(): Promise<void> } {
  const pending = new Set<Promise<number>>()
  for (const operation of TIMED) {
    const original = store[operation].bind(store) as (...args: unknown[]) => Promise<unknown>
    ;(store as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      const stop = metrics.storeDuration.startTimer({ operation })
      try {
        const result = await original(...args)
        stop({ outcome: 'ok' })
        return result
      } catch (error) {
        stop({ outcome: 'error' })
        throw error
      }
    }
  }
  const write = store.write.bind(store)
  store.write = (stream, id, offset) => {
    const stop = metrics.storeDuration.startTimer({ operation: 'write' })
    const writing = write(stream, id, offset).then(
      (end) => {
        stop({ outcome: 'ok' })
        metrics.bytesReceived.inc(end - offset)
        const context = requestContext.current()
        if (context) context.bytes += end - offset
        return end
      },
      (error) => {
        stop({ outcome: 'error' })
        throw error
      },
    )
    pending.add(writing)
    requestContext.current()?.writes?.add(writing)
    void writing.catch(() => {}).finally(() => pending.delete(writing))
    return writing
  }
  metrics.uploadsInProgress(() => pending.size)
  return {
    async drain() {
      await Promise.allSettled([...pending])
    },
  }
}
