// A FAKE Google Cloud Storage bucket for the GCS store's tests (no emulator runs here): an in-memory
// Bucket/File with just the methods @tus/gcs-store and our GCSDatastore call, modelled on GCS's
// documented behaviour (an object appears only when its upload completes; custom metadata values are
// strings; compose keeps none of it; `ifGenerationMatch: 0` writes only where no object is). Passing
// against it says the logic is right against that model, not that real GCS behaves like it.
import { PassThrough, type Readable, Writable } from 'node:stream'
import type { Bucket } from '@google-cloud/storage'

export class FakeApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message)
  }
}

type Custom = Record<string, string>
interface StoredObject {
  data: Buffer
  custom: Custom
  generation: number
  /** When the object was last written, in ms. */
  updated: number
}

/** GCS keeps custom metadata values as strings and drops null ones. */
function toCustom(values: Record<string, unknown> | undefined): Custom {
  return Object.fromEntries(
    Object.entries(values ?? {})
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => [k, String(v)]),
  )
}

/** The FAKE bucket: objects in a Map. */
export class FakeBucket {
  readonly objects = new Map<string, StoredObject>()
  /** Whether the bucket exists (bucket.exists()). */
  present = true
  /** When set, every call fails with it (an outage). */
  failure?: Error
  /** When set, exists() never answers (a hung connection). */
  hang = false
  /** Listing page size, small to exercise paging. */
  pageSize = 1000
  private generation = 0

  constructor(readonly name: string) {}

  check(): void {
    if (this.failure) throw this.failure
    if (!this.present) throw new FakeApiError(404, `The specified bucket does not exist: ${this.name}`)
  }

  file(name: string): FakeFile {
    return new FakeFile(this, name)
  }

  async exists(): Promise<[boolean]> {
    if (this.hang) await new Promise(() => {})
    if (this.failure) throw this.failure
    return [this.present]
  }

  /** Compose: the destination gets the sources' bytes and no custom metadata. */
  async combine(sources: FakeFile[], destination: FakeFile): Promise<[FakeFile, unknown]> {
    this.check()
    const data = Buffer.concat(sources.map((source) => this.get(source.name).data))
    this.put(destination.name, data, {})
    return [destination, {}]
  }

  async getFiles(query: { maxResults?: number; pageToken?: string } = {}): Promise<[FakeFile[], { pageToken: string } | null, unknown]> {
    this.check()
    const names = [...this.objects.keys()].sort()
    const from = query.pageToken ? Number(query.pageToken) : 0
    const to = from + Math.min(query.maxResults ?? Infinity, this.pageSize)
    const files = names.slice(from, to).map((name) => {
      const file = this.file(name)
      file.metadata = this.resource(name)
      return file
    })
    return [files, to < names.length ? { pageToken: String(to) } : null, {}]
  }

  get(name: string): StoredObject {
    const object = this.objects.get(name)
    if (!object) throw new FakeApiError(404, `No such object: ${this.name}/${name}`)
    return object
  }

  put(name: string, data: Buffer, custom: Custom): void {
    this.objects.set(name, { data, custom, generation: ++this.generation, updated: Date.now() })
  }

  resource(name: string): Record<string, unknown> {
    const object = this.get(name)
    return {
      name,
      bucket: this.name,
      size: String(object.data.length),
      generation: String(object.generation),
      updated: new Date(object.updated).toISOString(),
      metadata: { ...object.custom },
    }
  }
}

/** The FAKE file: a handle on a name, as in the real client. */
export class FakeFile {
  metadata: Record<string, unknown> = {}

  constructor(
    readonly bucket: FakeBucket,
    readonly name: string,
  ) {}

  /**
   * The object is replaced when the stream finishes, never when it fails; with `ifGenerationMatch: 0`
   * the stream fails with 412 where an object exists.
   */
  createWriteStream(options: { metadata?: { metadata?: Record<string, unknown> }; preconditionOpts?: { ifGenerationMatch?: number } } = {}): Writable {
    this.bucket.check()
    const chunks: Buffer[] = []
    return new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk)
        done()
      },
      final: (done) => {
        try {
          if (options.preconditionOpts?.ifGenerationMatch === 0 && this.bucket.objects.has(this.name)) {
            throw new FakeApiError(412, `At least one of the pre-conditions you specified did not hold: ${this.bucket.name}/${this.name}`)
          }
          this.bucket.put(this.name, Buffer.concat(chunks), toCustom(options.metadata?.metadata))
          done()
        } catch (error) {
          done(error as Error)
        }
      },
    })
  }

  /** Inclusive range, as the real client's. */
  createReadStream(options: { start?: number; end?: number } = {}): Readable {
    const out = new PassThrough()
    let object: StoredObject
    try {
      this.bucket.check()
      object = this.bucket.get(this.name)
    } catch (error) {
      process.nextTick(() => out.destroy(error as Error))
      return out
    }
    const start = options.start ?? 0
    const end = options.end ?? object.data.length - 1
    out.end(object.data.subarray(start, end + 1))
    return out
  }

  /** Promise or callback, as upstream's getUpload uses the callback form. */
  getMetadata(callback?: (error: unknown, metadata?: unknown) => void): Promise<[Record<string, unknown>, unknown]> | undefined {
    const run = async (): Promise<[Record<string, unknown>, unknown]> => {
      this.bucket.check()
      this.metadata = this.bucket.resource(this.name)
      return [this.metadata, {}]
    }
    if (!callback) return run()
    run().then(
      ([metadata]) => callback(null, metadata),
      (error) => callback(error),
    )
  }

  /** Custom metadata merges: a key set to null is removed. */
  async setMetadata({ metadata }: { metadata?: Record<string, unknown> }): Promise<[Record<string, unknown>, unknown]> {
    this.bucket.check()
    const object = this.bucket.get(this.name)
    for (const [key, value] of Object.entries(metadata ?? {})) {
      if (value === null) delete object.custom[key]
      else if (value !== undefined) object.custom[key] = String(value)
    }
    object.updated = Date.now()
    return [this.bucket.resource(this.name), {}]
  }

  async delete({ ignoreNotFound = false } = {}): Promise<[unknown]> {
    this.bucket.check()
    if (!this.bucket.objects.delete(this.name) && !ignoreNotFound) throw new FakeApiError(404, `No such object: ${this.bucket.name}/${this.name}`)
    return [{}]
  }

  async exists(): Promise<[boolean]> {
    this.bucket.check()
    return [this.bucket.objects.has(this.name)]
  }
}

let bucketCount = 0
/** A fresh fake bucket of a unique name. */
export const newFakeBucket = () => new FakeBucket(`fake-bucket-${++bucketCount}`)
export const asBucket = (fake: FakeBucket) => fake as unknown as Bucket
