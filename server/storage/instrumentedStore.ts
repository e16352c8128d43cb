import type { Readable } from 'node:stream'
import { DataStore, type Upload } from '@tus/utils'
import type { Metrics } from '../metrics.js'

type Operation = 'create' | 'getUpload' | 'remove' | 'declareUploadLength' | 'write'

/**
 * A store, whatever it is, with its operation durations in metrics, and the writes in progress, which
 * shutdown waits for (the response to a dropped request may never settle, the write does).
 */
export class InstrumentedStore extends DataStore {
  private readonly writes = new Set<Promise<number>>()

  constructor(
    /** The store this one wraps. */
    readonly inner: DataStore,
    private readonly metrics: Metrics,
  ) {
    super()
    // A transparent wrapper: what the store implements, it does.
    this.extensions = inner.extensions
  }

  override create(upload: Upload): Promise<Upload> {
    return this.timed('create', () => this.inner.create(upload))
  }

  override getUpload(id: string): Promise<Upload> {
    return this.timed('getUpload', () => this.inner.getUpload(id))
  }

  override remove(id: string): Promise<void> {
    return this.timed('remove', () => this.inner.remove(id))
  }

  override declareUploadLength(id: string, length: number): Promise<void> {
    return this.timed('declareUploadLength', () => this.inner.declareUploadLength(id, length))
  }

  override write(stream: Readable, id: string, offset: number): Promise<number> {
    const writing = this.timed('write', () => this.inner.write(stream, id, offset))
    this.writes.add(writing)
    void writing.catch(() => {}).finally(() => this.writes.delete(writing))
    return writing
  }

  override deleteExpired(): Promise<number> {
    return this.inner.deleteExpired()
  }

  override getExpiration(): number {
    return this.inner.getExpiration()
  }

  /** Resolves when no write is in progress. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.writes])
  }

  private async timed<T>(operation: Operation, run: () => Promise<T>): Promise<T> {
    const stop = this.metrics.storeDuration.startTimer({ operation })
    try {
      const result = await run()
      stop({ outcome: 'ok' })
      return result
    } catch (error) {
      stop({ outcome: 'error' })
      throw error
    }
  }
}
