import type { Readable } from 'node:stream'
import { DataStore, type Upload } from '@tus/utils'
import type { Metrics } from '../metrics.js'

type Operation = 'create' | 'getUpload' | 'remove' | 'declareUploadLength' | 'write'

/** A store, whatever it is, with its operation durations in metrics. */
export class InstrumentedStore extends DataStore {
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
    return this.timed('write', () => this.inner.write(stream, id, offset))
  }

  override deleteExpired(): Promise<number> {
    return this.inner.deleteExpired()
  }

  override getExpiration(): number {
    return this.inner.getExpiration()
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
