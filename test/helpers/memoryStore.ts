import type { Readable } from 'node:stream'
import { DataStore, ERRORS, Upload } from '@tus/utils'

/**
 * A DataStore in memory, for the core's unit tier only: the real stores have their own contract suites
 * against real back ends. Writes keep what arrived even when the stream ends early, as the file store does.
 */
export class MemoryStore extends DataStore {
  readonly uploads = new Map<string, { upload: Upload; bytes: Buffer }>()

  constructor(readonly expirationMs = 0) {
    super()
    this.extensions = ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', ...(expirationMs > 0 ? ['expiration'] : [])]
  }

  override async create(upload: Upload): Promise<Upload> {
    if (this.uploads.has(upload.id)) throw Object.assign(new Error('exists'), { kind: 'exists' })
    const stored = new Upload({ ...upload, offset: 0, creation_date: upload.creation_date ?? new Date().toISOString() })
    this.uploads.set(upload.id, { upload: stored, bytes: Buffer.alloc(0) })
    return stored
  }

  override async getUpload(id: string): Promise<Upload> {
    const entry = this.uploads.get(id)
    if (!entry) throw ERRORS.FILE_NOT_FOUND
    return new Upload({ ...entry.upload, offset: entry.bytes.length, metadata: entry.upload.metadata && { ...entry.upload.metadata } })
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const entry = this.uploads.get(id)
    if (!entry) throw ERRORS.FILE_NOT_FOUND
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    entry.bytes = Buffer.concat([entry.bytes.subarray(0, offset), ...chunks])
    return entry.bytes.length
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    const entry = this.uploads.get(id)
    if (!entry) throw ERRORS.FILE_NOT_FOUND
    entry.upload.size = length
  }

  override async remove(id: string): Promise<void> {
    if (!this.uploads.delete(id)) throw ERRORS.FILE_NOT_FOUND
  }

  override getExpiration(): number {
    return this.expirationMs
  }

  async truncate(id: string, offset: number): Promise<void> {
    const entry = this.uploads.get(id)
    if (entry) entry.bytes = entry.bytes.subarray(0, offset)
  }

  async concatenate(finalId: string, partials: Upload[]): Promise<void> {
    const entry = this.uploads.get(finalId)
    if (!entry) throw ERRORS.FILE_NOT_FOUND
    entry.bytes = Buffer.concat(partials.map(({ id }) => this.uploads.get(id)?.bytes ?? Buffer.alloc(0)))
  }
}
