import type { Readable } from 'node:stream'
import type { AppendBlobClient, Metadata as BlobMetadata, ContainerClient } from '@azure/storage-blob'
import { AzureStore } from '@tus/azure-store'
import { ERRORS, type KvStore, Metadata, TUS_RESUMABLE, Upload } from '@tus/utils'
import { capabilities, dataStoreExtensions } from '../capabilities.js'
import { asStoreError, connectionErrorKind, StoreError, type StoreErrorKind } from '../errors.js'
import { expiredAmong } from '../expiry.js'
import { parseMetadata } from '../metadata.js'
import type { ByteRange, StoreCapabilities } from '../types.js'
import { isUploadId } from '../uploadId.js'

/** The upload info as `@tus/azure-store` keeps it, JSON in the blob's `upload` metadata entry. */
interface StoredUpload {
  id: string
  size?: number | null
  offset: number
  metadata?: string
  storage?: Upload['storage']
  creation_date?: string
}

/** `@tus/azure-store` caches upload info per process, never evicting unfinished uploads; the blob is the truth here. */
const noCache: KvStore<Upload> = {
  get: async () => undefined,
  set: async () => {},
  delete: async () => {},
}

type AzureError = Error & { statusCode?: number; code?: string; details?: { errorCode?: string } }

export function azureErrorCode(error: unknown): string | undefined {
  const { code, details } = error as AzureError
  return code ?? details?.errorCode
}

// The service's answers while it is overloaded or failing, besides any 5xx.
const BUSY = new Set(['ServerBusy', 'OperationTimedOut', 'InternalError', 'REQUEST_SEND_ERROR'])

/** The StoreError kind of an Azure client error, if it has one: 5xx, busy, throttled or unreachable is 'unavailable'. */
export function azureErrorKind(error: unknown): StoreErrorKind | undefined {
  const status = (error as AzureError).statusCode
  if ((status !== undefined && (status >= 500 || status === 429)) || BUSY.has(azureErrorCode(error) ?? '')) return 'unavailable'
  return connectionErrorKind(error)
}

/** A missing blob is the tus 404; a missing container (or anything else) is a store failure. */
function notFoundOr(error: unknown): unknown {
  const status = (error as AzureError).statusCode
  return status === 404 && azureErrorCode(error) !== 'ContainerNotFound' ? ERRORS.FILE_NOT_FOUND : asStoreError(error, azureErrorKind)
}

export interface AzureDatastoreOptions {
  container: ContainerClient
  expirationMs: number
  /** Bytes per appended block: the memory one PATCH holds, and 50,000 blocks make the largest blob. */
  blockSize?: number
}

export const DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024
// An append blob holds at most this many blocks.
const MAX_BLOCKS = 50_000
// A blob keeps at most 8 KiB of metadata; the upload's info (its Upload-Metadata and ~350 bytes more) must fit.
const MAX_INFO_SIZE = 7 * 1024

/**
 * `@tus/azure-store`'s layout (one append blob per upload, its info as JSON in the blob's metadata)
 * with the writes a resumable service needs. Upstream buffers a whole PATCH in memory as one block
 * (refused above 100 MiB), keeps nothing of a PATCH cut midway, has no termination or expiry, answers
 * 500 for an unknown upload and trusts an offset saved after the append. Here:
 *
 * - the offset is the blob's length, so bytes appended but not yet recorded are never appended twice;
 * - a PATCH is appended in blocks of `blockSize` as it arrives, each with an append-position
 *   condition, and what arrived before a cut is appended too, so a client resumes from there;
 * - DELETE removes the blob (termination), and expired uploads are found in one metadata listing.
 */
export class AzureDatastore extends AzureStore {
  readonly container: ContainerClient
  private readonly expirationMs: number
  private readonly blockSize: number
  readonly capabilities: StoreCapabilities

  constructor({ container, expirationMs, blockSize = DEFAULT_BLOCK_SIZE }: AzureDatastoreOptions) {
    super({ client: container, cache: noCache })
    this.container = container
    this.expirationMs = expirationMs
    this.blockSize = blockSize
    this.capabilities = capabilities({
      creationDeferLength: true,
      termination: true,
      expiresAfterMs: expirationMs,
      maxSize: MAX_BLOCKS * blockSize,
      maxInfoSize: MAX_INFO_SIZE,
    })
    this.extensions = dataStoreExtensions(this.capabilities)
  }

  override getExpiration(): number {
    return this.expirationMs
  }

  private blob(id: string): AppendBlobClient {
    if (!isUploadId(id)) throw ERRORS.FILE_NOT_FOUND
    return this.container.getAppendBlobClient(id)
  }

  private static blobMetadata(upload: Upload): BlobMetadata {
    const stored: StoredUpload = {
      id: upload.id,
      size: upload.size,
      offset: upload.offset,
      // Base64 values, as upstream: blob metadata is an HTTP header and takes ASCII only.
      metadata: Metadata.stringify(upload.metadata ?? {}),
      storage: upload.storage,
      creation_date: upload.creation_date,
    }
    return { tus_version: TUS_RESUMABLE, upload: JSON.stringify(stored) }
  }

  /** The upload a blob holds: its info from the metadata, its offset from the blob's length. */
  private static uploadOf(id: string, metadata: BlobMetadata | undefined, length: number | undefined): Upload {
    if (!metadata?.upload) throw ERRORS.FILE_NOT_FOUND
    const stored = JSON.parse(metadata.upload) as StoredUpload
    return new Upload({
      id,
      size: stored.size ?? undefined,
      offset: length ?? 0,
      metadata: stored.metadata ? parseMetadata(stored.metadata) : undefined,
      storage: stored.storage,
      creation_date: stored.creation_date,
    })
  }

  private async load(id: string): Promise<{ blob: AppendBlobClient; upload: Upload }> {
    const blob = this.blob(id)
    try {
      const { metadata, contentLength } = await blob.getProperties()
      return { blob, upload: AzureDatastore.uploadOf(id, metadata, contentLength) }
    } catch (error) {
      throw notFoundOr(error)
    }
  }

  /**
   * One request: the blob and its info appear together, or not at all, and only where no blob is
   * (else a StoreError 'exists', the blob unchanged).
   */
  override async create(upload: Upload): Promise<Upload> {
    upload.storage = { type: 'AzureBlobStore', path: upload.id, bucket: this.container.containerName }
    try {
      await this.blob(upload.id).create({ metadata: AzureDatastore.blobMetadata(upload), conditions: { ifNoneMatch: '*' } })
    } catch (error) {
      if (azureErrorCode(error) === 'BlobAlreadyExists') throw new StoreError('exists', `upload ${upload.id} exists`, { cause: error })
      throw asStoreError(error, azureErrorKind)
    }
    return upload
  }

  override async getUpload(id: string): Promise<Upload> {
    return (await this.load(id)).upload
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    const { blob, upload } = await this.load(id)
    upload.size = length
    await blob.setMetadata(AzureDatastore.blobMetadata(upload)).catch((error) => {
      throw notFoundOr(error)
    })
  }

  override async remove(id: string): Promise<void> {
    try {
      await this.blob(id).delete()
    } catch (error) {
      throw notFoundOr(error)
    }
  }

  override async write(stream: Readable, id: string, offset: number): Promise<number> {
    const { blob, upload } = await this.load(id)
    if (upload.offset !== offset) throw ERRORS.INVALID_OFFSET
    let position = offset
    let pending: Buffer[] = []
    let pendingBytes = 0
    const append = async () => {
      if (pendingBytes === 0) return
      const block = Buffer.concat(pending, pendingBytes)
      pending = []
      pendingBytes = 0
      try {
        // The condition makes a second writer (another instance, a stale request) fail instead of interleaving.
        await blob.appendBlock(block, block.length, { conditions: { appendPosition: position } })
      } catch (error) {
        throw azureErrorCode(error) === 'AppendPositionConditionNotMet' ? ERRORS.INVALID_OFFSET : notFoundOr(error)
      }
      position += block.length
    }

    let storeFailed = false
    let streamError: unknown
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let rest = chunk
        while (rest.length > 0) {
          const take = Math.min(this.blockSize - pendingBytes, rest.length)
          pending.push(rest.subarray(0, take))
          pendingBytes += take
          rest = rest.subarray(take)
          if (pendingBytes === this.blockSize) {
            storeFailed = true
            // The body ends with the store's failure: leaving the loop would end it with a bare AbortError,
            // which would pass for the cause.
            await append().catch((error) => {
              stream.destroy(error)
              throw error
            })
            storeFailed = false
          }
        }
      }
    } catch (error) {
      if (storeFailed) throw error
      streamError = error
    }
    // Whatever arrived is kept, also from a request cut midway: the client resumes after it.
    await append()
    if (position !== offset) {
      upload.offset = position
      // The recorded offset is for upstream readers only; ours trust the blob's length.
      await blob.setMetadata(AzureDatastore.blobMetadata(upload))
    }
    if (streamError) throw streamError
    return position
  }

  async readRange(id: string, range?: ByteRange): Promise<Readable> {
    try {
      const response = await this.blob(id).download(range?.start ?? 0, range ? range.end - range.start + 1 : undefined)
      if (!response.readableStreamBody) throw new Error(`blob '${id}' has no body`)
      return response.readableStreamBody as Readable
    } catch (error) {
      throw notFoundOr(error)
    }
  }

  /** Unfinished uploads whose expiry has passed: one listing of the container, with each blob's metadata. */
  expiredIds(now = Date.now()): Promise<string[]> {
    const blobs = this.container.listBlobsFlat({ includeMetadata: true })
    return expiredAmong(blobs, (blob) => AzureDatastore.uploadOf(blob.name, blob.metadata, blob.properties.contentLength), this.expirationMs, now)
  }

  /** Resolves when the container answers; rejects with the reason otherwise. */
  async checkContainer(timeoutMs: number): Promise<void> {
    const name = this.container.containerName
    try {
      await this.container.getProperties({ abortSignal: AbortSignal.timeout(timeoutMs) })
    } catch (error) {
      const code = azureErrorCode(error)
      if (code === 'ContainerNotFound') throw new Error(`container '${name}' does not exist`)
      if ((error as Error).name === 'AbortError') throw new Error(`container '${name}' did not answer within ${timeoutMs} ms`)
      const status = (error as AzureError).statusCode
      throw new Error(`container '${name}' is not usable: ${code ?? (error as Error).message} (HTTP ${status ?? 'none'})`)
    }
  }
}
