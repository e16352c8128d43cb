import { createReadStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { Part } from '@aws-sdk/client-s3'
import { type MetadataValue, type Options, S3Store } from '@tus/s3-store'
import { ERRORS, Upload } from '@tus/utils'
import { capabilities, dataStoreExtensions } from '../capabilities.js'
import { asStoreError, StoreError } from '../errors.js'
import { isExpired } from '../expiry.js'
import { finishedAmong } from '../listing.js'
import { requestedPlace } from '../placement.js'
import type { ByteRange, Orphan, StoreCapabilities, WaitingFinals } from '../types.js'
import { isUploadId } from '../uploadId.js'
import { type PlannedPart, planParts, type Segment } from './concatPlan.js'
import { useKeyPrefix } from './keyPrefix.js'
import { PartSlots } from './partSlots.js'
import { consecutiveParts, incompleteCounts, STARTS_AT, sizeOf, writeParts } from './partWriter.js'
import { PlacedKeys } from './placedKeys.js'
import { observeRequests, type S3RequestObserver } from './requestObserver.js'
import { isCompleted, isS3NotFound, s3ErrorKind } from './s3Errors.js'

/** How many uploads the listing reads at once (each is an info read, often cached, and a ListParts). */
const LIST_BATCH = 16
/** How many parts of a concatenation are copied or sent at once. */
const CONCAT_PARALLEL = 4

const PART = '.part'
const INFO = '.info'

/**
 * `@tus/s3-store` with a key prefix, creation that never replaces an upload, ranged reads, a bucket
 * check, the lists of expired and finished uploads, and the leftovers of a creation or termination
 * that stopped between two requests. Failures of the service itself become StoreErrors.
 */
export class S3Datastore extends S3Store {
  private readonly bucketName: string
  private readonly keyPrefix: string
  private readonly placed: PlacedKeys
  readonly capabilities: StoreCapabilities
  /** The parts spooled or uploading at once (S3_CONCURRENT_PARTS), and those waiting for a slot. */
  readonly partSlots: PartSlots

  constructor(options: Options & { keyPrefix: string; onRequest?: S3RequestObserver }) {
    super(options)
    this.bucketName = options.s3ClientConfig.bucket
    this.keyPrefix = options.keyPrefix
    this.partSlots = new PartSlots(options.maxConcurrentPartUploads ?? 60)
    this.placed = new PlacedKeys(options.keyPrefix)
    useKeyPrefix(this.client, options.keyPrefix, (key) => this.placed.placedKeyOf(key))
    if (options.onRequest) observeRequests(this.client, options.onRequest)
    this.capabilities = capabilities({
      creationDeferLength: true,
      termination: true,
      expiresAfterMs: this.getExpiration(),
      concatenation: true,
      concatenationUnfinished: true,
      listing: true,
      maxSize: this.maxUploadSize,
      placement: 'Key',
    })
    this.extensions = dataStoreExtensions(this.capabilities)
  }

  /**
   * Refused with a StoreError 'exists' when the upload's info object exists (the host holds the id's
   * lock, so none appears meanwhile), or when the Key a hook chose holds an object or a multipart upload
   * (checked, not reserved: two creations racing for one Key can both pass). A multipart upload begun
   * by a creation that then failed is aborted.
   */
  override async create(upload: Upload): Promise<Upload> {
    const place = requestedPlace(upload)
    const key = place === undefined ? undefined : this.placed.check(place)
    if (await this.infoExists(upload.id)) throw new StoreError('exists', `upload ${upload.id} exists`)
    if (key !== undefined) {
      if ((await this.objectExists(key)) || (await this.multipartUploadsOn(key)).length > 0) {
        throw new StoreError('place-taken', `storage Key '${key}' is taken`)
      }
      this.placed.set(upload.id, key)
    }
    try {
      return await super.create(upload)
    } catch (error) {
      await this.abortMultipartUploads(upload.id).catch(() => undefined) // else the sweep finds it
      this.placed.forget(upload.id)
      throw asStoreError(error, s3ErrorKind)
    }
  }

  /** Upstream's, learning the Key of a placed upload from its info (`storage.path`). */
  protected override async getMetadata(id: string): Promise<MetadataValue> {
    const metadata = await super.getMetadata(id)
    this.placed.learn(id, metadata.file.storage?.path)
    return metadata
  }

  /**
   * Upstream reports any failure to read the info as not found, an unreachable service too. The offset is
   * where the parts end without a gap, plus the incomplete part if it continues them (see STARTS_AT).
   */
  override async getUpload(id: string): Promise<Upload> {
    let metadata: MetadataValue
    try {
      metadata = await this.getMetadata(id)
    } catch (error) {
      throw isS3NotFound(error) ? ERRORS.FILE_NOT_FOUND : asStoreError(error, s3ErrorKind)
    }
    const { file } = metadata
    try {
      const { partsSize, incomplete } = await this.progress(id)
      return new Upload({ ...file, offset: partsSize + (incomplete?.size ?? 0) })
    } catch (error) {
      // The multipart upload is gone while its info is there: it was completed.
      if (isCompleted(error)) return new Upload({ ...file, offset: file.size ?? 0 })
      throw asStoreError(error, s3ErrorKind)
    }
  }

  /**
   * Upstream deletes the incomplete part before uploading its bytes again with the new ones, so a write that
   * fails in between loses acknowledged bytes. Here it stays until they are stored (writeParts).
   */
  override async write(readable: Readable, id: string, _offset: number): Promise<number> {
    try {
      return await this.writeFrom(readable, id)
    } catch (error) {
      throw asStoreError(error, s3ErrorKind)
    }
  }

  private async writeFrom(source: Readable, id: string): Promise<number> {
    const metadata = await this.getMetadata(id)
    const { parts, partsSize, incomplete } = await this.progress(id)
    const head = incomplete && (await this.downloadIncompletePart(id))
    const offset = await writeParts(
      source,
      {
        offset: partsSize,
        nextPart: parts.length + 1,
        incomplete: head ? { size: head.size, read: () => head.createReader({ cleanUpOnEnd: true }) } : undefined,
        size: metadata.file.size,
        chunkSize: this.calcOptimalPartSize(metadata.file.size),
        minPartSize: this.minPartSize,
      },
      {
        permit: () => this.partSlots.acquire(),
        uploadPart: (partNumber, path) => this.uploadPart(metadata, createReadStream(path), partNumber),
        putIncomplete: async (path, startsAt) => {
          await this.client.putObject({
            Bucket: this.bucketName,
            Key: this.partKey(id, true),
            Body: createReadStream(path),
            Tagging: this.useCompleteTag('false'),
            Metadata: { [STARTS_AT]: String(startsAt) },
          })
        },
        dropIncomplete: () => this.deleteIncompletePart(id).catch(() => undefined),
      },
    ).finally(() => head && rm(head.path, { force: true }))
    if (offset === metadata.file.size) {
      await this.finishMultipartUpload(metadata, consecutiveParts(await this.retrieveParts(id)))
      await this.completeMetadata(metadata.file)
      await this.clearCache(id)
    }
    return offset
  }

  /** The parts without a gap, their size, and the incomplete part if it continues them. */
  private async progress(id: string): Promise<{ parts: Part[]; partsSize: number; incomplete?: { size: number } }> {
    const parts = consecutiveParts(await this.retrieveParts(id))
    const partsSize = sizeOf(parts)
    try {
      const { ContentLength, Metadata } = await this.client.headObject({ Bucket: this.bucketName, Key: this.partKey(id, true) })
      const counts = ContentLength !== undefined && ContentLength > 0 && incompleteCounts(partsSize, Metadata?.[STARTS_AT])
      return { parts, partsSize, incomplete: counts ? { size: ContentLength } : undefined }
    } catch (error) {
      if (isS3NotFound(error)) return { parts, partsSize }
      throw error
    }
  }

  private infoExists(id: string): Promise<boolean> {
    return this.objectExists(this.infoKey(id))
  }

  private async objectExists(key: string): Promise<boolean> {
    try {
      await this.client.headObject({ Bucket: this.bucketName, Key: key })
      return true
    } catch (error) {
      if (isS3NotFound(error)) return false
      throw asStoreError(error, s3ErrorKind)
    }
  }

  /** The ids (UploadId) of the multipart uploads in progress on exactly `key`. */
  private async multipartUploadsOn(key: string): Promise<string[]> {
    const { Uploads } = await this.client.listMultipartUploads({ Bucket: this.bucketName, Prefix: key })
    return (Uploads ?? []).filter((upload) => upload.Key === key && upload.UploadId).map(({ UploadId }) => UploadId as string)
  }

  private async abortMultipartUploads(id: string): Promise<void> {
    const key = this.placed.keyOf(id)
    for (const UploadId of await this.multipartUploadsOn(key)) await this.client.abortMultipartUpload({ Bucket: this.bucketName, Key: key, UploadId })
  }

  /**
   * Upstream records the length in S3 but only mutates its cached copy in place, which a shared
   * (Redis) cache never sees: the upload would never complete. Dropping the cached copy fixes that.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    try {
      await super.declareUploadLength(id, length)
    } catch (error) {
      throw asStoreError(error, s3ErrorKind)
    }
    await this.clearCache(id)
  }

  /**
   * Upstream reports a finished upload as not found when terminated (its multipart upload is gone,
   * so aborting it fails) and leaves the object behind, and leaves an unfinished upload's incomplete
   * part behind; both are removed here.
   */
  override async remove(id: string): Promise<void> {
    try {
      await super.remove(id)
    } catch (error) {
      if (error !== ERRORS.FILE_NOT_FOUND) throw asStoreError(error, s3ErrorKind)
      await this.getUpload(id) // still FILE_NOT_FOUND for an upload that really is unknown
    }
    await this.client.deleteObjects({
      Bucket: this.bucketName,
      Delete: { Objects: [{ Key: id }, { Key: this.infoKey(id) }, { Key: this.partKey(id, true) }] },
    })
    await this.clearCache(id)
    this.placed.forget(id)
  }

  async checkBucket(): Promise<void> {
    try {
      await this.client.headBucket({ Bucket: this.bucketName })
    } catch (error) {
      // HeadBucket errors have no body, so the SDK's message is often just 'UnknownError'.
      const { name, $metadata } = error as Error & { $metadata?: { httpStatusCode?: number } }
      throw new Error(`bucket '${this.bucketName}' is not usable: ${name} (HTTP ${$metadata?.httpStatusCode ?? 'none'})`)
    }
  }

  async readRange(id: string, range?: ByteRange): Promise<Readable> {
    try {
      const { Body } = await this.client.getObject({
        Bucket: this.bucketName,
        Key: id,
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      })
      return Body as Readable
    } catch (error) {
      // An empty upload has no object: no part was ever written, so its multipart upload was never completed.
      if ((error as Error).name === 'NoSuchKey' && (await this.getUpload(id)).size === 0) return Readable.from([])
      throw error
    }
  }

  /**
   * Fills the final upload's multipart upload from the finished partials' objects (planParts: server-side
   * UploadPartCopy where a part is large enough, else bytes read and sent, at most CONCAT_PARALLEL parts
   * of at most 5 MiB in memory at once) and completes it.
   */
  async concatenate(finalId: string, partials: Upload[]): Promise<void> {
    const metadata = await this.getMetadata(finalId)
    const plan = planParts(partials.map(({ id, size }) => ({ id, size: size ?? 0 })))
    const etags: Array<string | undefined> = new Array(plan.length)
    let next = 0
    const worker = async () => {
      while (next < plan.length) {
        const index = next++
        etags[index] = await this.fillPart(finalId, metadata['upload-id'] as string, index + 1, plan[index])
      }
    }
    await Promise.all(Array.from({ length: Math.min(CONCAT_PARALLEL, plan.length) }, worker))
    await this.finishMultipartUpload(
      metadata,
      etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })),
    )
    await this.completeMetadata(metadata.file)
    await this.clearCache(finalId)
  }

  /**
   * Which finals wait for which partials (concatenation-unfinished): one empty object
   * `<partial id>.waiting/<final id>` per pair, listed by its partial's prefix. No upload id has a '.',
   * so these keys never name an upload's object, info or part.
   */
  readonly waitingFinals: WaitingFinals = {
    add: async (partialId, finalId) => {
      await this.client.putObject({ Bucket: this.bucketName, Key: waitingKey(partialId, finalId), Body: Buffer.alloc(0), ContentLength: 0 })
    },
    finalsOf: async (partialId) => {
      const prefix = waitingKey(partialId, '')
      return (await this.keysUnder(prefix)).map((key) => key.slice(prefix.length))
    },
    // Every object is listed: the entries have no common prefix of their own.
    partials: async () => [...new Set((await this.keysUnder('')).filter((key) => key.includes(WAITING)).map((key) => key.split('.')[0]))].filter(isUploadId),
    remove: async (partialId, finalId) => {
      await this.client.deleteObject({ Bucket: this.bucketName, Key: waitingKey(partialId, finalId) })
    },
  }

  /** The keys (without the key prefix) of the objects whose key starts with `prefix`. */
  private async keysUnder(prefix: string): Promise<string[]> {
    const keys: string[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.client.listObjectsV2({ Bucket: this.bucketName, Prefix: prefix, ContinuationToken })
      for (const { Key } of page.Contents ?? []) if (Key?.startsWith(prefix)) keys.push(Key)
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (ContinuationToken)
    return keys
  }

  private async fillPart(finalId: string, UploadId: string, PartNumber: number, part: PlannedPart): Promise<string | undefined> {
    const target = { Bucket: this.bucketName, Key: finalId, UploadId, PartNumber }
    if ('copy' in part) {
      const { id, start, end } = part.copy
      const { CopyPartResult } = await this.client.uploadPartCopy({
        ...target,
        // The key prefix middleware rewrites Key, not CopySource.
        CopySource: encodeURI(`${this.bucketName}/${this.keyPrefix}${this.placed.keyOf(id)}`),
        CopySourceRange: `bytes=${start}-${end - 1}`,
      })
      return CopyPartResult?.ETag
    }
    const body = Buffer.allocUnsafe(part.size)
    let at = 0
    for (const segment of part.send) at = await this.readInto(body, at, segment)
    const { ETag } = await this.client.uploadPart({ ...target, Body: body, ContentLength: body.length })
    return ETag
  }

  private async readInto(buffer: Buffer, at: number, { id, start, end }: Segment): Promise<number> {
    for await (const chunk of await this.readRange(id, { start, end: end - 1 })) at += (chunk as Buffer).copy(buffer, at)
    return at
  }

  /**
   * Unfinished uploads (open multipart uploads) whose expiry has passed, judged by their info. A multipart
   * upload on a key that is no upload id may be a placed upload's: when this process does not know it
   * yet (after a restart), every upload's info is read once to learn the placed keys.
   */
  async expiredIds(now = Date.now()): Promise<string[]> {
    const keys = new Set<string>()
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    do {
      const page = await this.client.listMultipartUploads({ Bucket: this.bucketName, KeyMarker, UploadIdMarker })
      for (const { Key } of page.Uploads ?? []) if (Key) keys.add(Key)
      ;({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : {})
    } while (KeyMarker)
    const idAt = (key: string) => (isUploadId(key) ? key : this.placed.idAt(key))
    if ([...keys].some((key) => idAt(key) === undefined)) await this.learnPlacedKeys()
    const expired: string[] = []
    for (const key of keys) {
      const id = idAt(key)
      const upload = id === undefined ? undefined : await this.getUpload(id).catch(() => undefined)
      if (id && upload && isExpired(upload, this.getExpiration(), now)) expired.push(id)
    }
    return expired
  }

  /** Reads the info of every upload whose key this process does not know yet. */
  private async learnPlacedKeys(): Promise<void> {
    for (const { id } of await this.infoObjects()) {
      if (this.placed.keyOf(id) === id) await this.getMetadata(id).catch(() => undefined)
    }
  }

  /** Every upload's info object: its id and when it was last written. */
  private async infoObjects(): Promise<Array<{ id: string; modified: number }>> {
    const infos: Array<{ id: string; modified: number }> = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.client.listObjectsV2({ Bucket: this.bucketName, ContinuationToken })
      for (const { Key, LastModified } of page.Contents ?? []) {
        const id = Key?.endsWith(INFO) ? Key.slice(0, -INFO.length) : undefined
        if (id && isUploadId(id)) infos.push({ id, modified: LastModified?.getTime() ?? 0 })
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (ContinuationToken)
    return infos
  }

  /**
   * Finished uploads (offset === size), newest first by creation date, at most `limit`. The candidates are
   * the `<id>.info` objects, read with getUpload newest first by their last-modified time (written at
   * creation, and again at completion when tags are on) until `limit` finished ones are found, so with
   * more finished uploads than `limit` the cut is by that time.
   */
  async finishedUploads(limit: number, where?: (upload: Upload) => boolean): Promise<Upload[]> {
    const infos = await this.infoObjects()
    infos.sort((a, b) => b.modified - a.modified)
    const ids = infos.map(({ id }) => id)
    return finishedAmong(ids, (id) => this.getUpload(id), { limit, batch: LIST_BATCH, untilLimit: true, where })
  }

  /**
   * Multipart uploads and incomplete-part objects of an id without an info object, begun or last
   * changed at least `graceMs` ago: what a creation or termination cut between two requests leaves.
   */
  async orphans(graceMs: number): Promise<Orphan[]> {
    const old = (date?: Date) => date !== undefined && Date.now() - date.getTime() >= graceMs
    const infos = new Set<string>()
    const parts: Orphan[] = []
    let ContinuationToken: string | undefined
    do {
      const page = await this.client.listObjectsV2({ Bucket: this.bucketName, ContinuationToken })
      for (const { Key, LastModified } of page.Contents ?? []) {
        if (Key?.endsWith(INFO)) infos.add(Key.slice(0, -INFO.length))
        const id = Key?.endsWith(PART) ? Key.slice(0, -PART.length) : undefined
        if (Key && id && isUploadId(id) && old(LastModified)) parts.push({ id, key: Key, kind: 'incomplete-part' })
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
    } while (ContinuationToken)
    const found = parts.filter(({ id }) => !infos.has(id))
    let KeyMarker: string | undefined
    let UploadIdMarker: string | undefined
    do {
      const page = await this.client.listMultipartUploads({ Bucket: this.bucketName, KeyMarker, UploadIdMarker })
      for (const { Key, UploadId, Initiated } of page.Uploads ?? []) {
        if (Key && UploadId && isUploadId(Key) && old(Initiated) && !infos.has(Key)) found.push({ id: Key, key: UploadId, kind: 'multipart-upload' })
      }
      ;({ NextKeyMarker: KeyMarker, NextUploadIdMarker: UploadIdMarker } = page.IsTruncated ? page : {})
    } while (KeyMarker)
    return found
  }

  /** Removes a leftover if its upload still has no info object; false otherwise. */
  async removeOrphan(orphan: Orphan): Promise<boolean> {
    if (await this.infoExists(orphan.id)) return false
    if (orphan.kind === 'multipart-upload') {
      await this.client.abortMultipartUpload({ Bucket: this.bucketName, Key: orphan.id, UploadId: orphan.key })
    } else if (orphan.kind === 'incomplete-part') {
      await this.client.deleteObject({ Bucket: this.bucketName, Key: this.partKey(orphan.id, true) })
    } else {
      return false
    }
    return true
  }
}

const WAITING = '.waiting/'

/** The key recording that final `finalId` waits for partial `partialId`; with '' the prefix of all of the partial's. */
function waitingKey(partialId: string, finalId: string): string {
  if (!isUploadId(partialId) || (finalId !== '' && !isUploadId(finalId))) throw ERRORS.FILE_NOT_FOUND
  return `${partialId}${WAITING}${finalId}`
}
