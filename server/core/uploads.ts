import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { IncomingMessage } from 'node:http'
import { Socket } from 'node:net'
import path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { type DataStore, type Lock, type Locker, Upload } from '@tus/utils'
import { isExpired } from '../../stores/expiry.js'
import type { WaitingFinals } from '../../stores/types.js'
import { newUploadId } from '../../stores/uploadId.js'
import type { Hooks } from '../hooks/index.js'
import type { AccessMode } from '../hooks/types.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { type Feeder, type MeteredBody, meteredBodyOf } from './body.js'
import { ERRORS, toUploadError, UploadError } from './errors.js'
import { fingerprintOf, type IdempotencyKeys, scopedKey } from './idempotency.js'
import { isFinalUpload, isPartialUpload, ownerOf, partialIdsOf, stampRecords } from './records.js'
import { digestsOf, matches, type Representation } from './representation.js'
import type { AppendRequest, BodyRequest, Caller, CreateRequest, Written } from './types.js'

/** What the core can do with the store beyond the DataStore contract. */
export interface StoreAbilities {
  /** Takes back the bytes past an offset (a chunk that fails its checksum is then written in place). */
  truncate?(id: string, offset: number): Promise<void>
  /** Fills a created final upload with its finished partials' bytes. */
  concatenate?(finalId: string, partials: Upload[]): Promise<void>
  /** Where finals naming unfinished partials are recorded (concatenation-unfinished); without it a final names finished partials only. */
  waiting?: WaitingFinals
  /** The store supports uploads whose length comes later. */
  deferLength: boolean
  /** The store can remove uploads. */
  termination: boolean
  /** The field of a pre-create hook's ChangeFileInfo.Storage that places an upload on this store; absent: placing is refused. */
  placement?: 'Path' | 'Key'
  /** An upload's bytes, for verifying a Repr-Digest; without it one is refused (501). */
  read?(id: string): Promise<Readable>
}

export interface CoreSettings {
  /** MAX_SIZE; 0: none. */
  maxSize: number
  /** How long a request asked to release its lock gets to finish its body before it is cut. */
  lockDrainTimeout: number
  /** Uploads belong to their creator (AUTH_MODE=jwt): anyone else is told they do not exist. */
  isolation: boolean
  /** Where a checksummed chunk waits for its verification on a store that cannot take bytes back. */
  stagingDir: string
  /** Remove the partial uploads once a final upload is assembled. */
  removePartials: boolean
}

export interface CoreDeps {
  store: DataStore
  abilities: StoreAbilities
  locker: Locker
  hooks?: Hooks
  metrics: Metrics
  logger: Logger
  settings: CoreSettings
  /** Feeds request bodies in turns (READ_SLOTS); piped as they come without it. */
  feed?: Feeder
  /** Where creations' Idempotency-Keys are remembered; without it the key is ignored. */
  idempotency?: IdempotencyKeys
  /** Told of every upload that finishes or is removed (the index of finished uploads, UPLOAD_LIST). */
  finished?: FinishedUploads
}

export interface FinishedUploads {
  added(upload: Upload): Promise<void>
  removed(id: string): Promise<void>
}

/** An upload's lock held by a request that may write its body. */
interface WriteLock {
  /** The body being written, cut when another request asks for the lock and LOCK_DRAIN_TIMEOUT passes. */
  body?: MeteredBody
  released: boolean
  unlock(): Promise<void>
}

/** A partial upload named by a final one: its id, and the URL the client gave (for messages). */
export interface NamedPartial {
  id: string
  url: string
}

/** How many partial uploads a final one may name, and how far repeating them may multiply their bytes. */
const MAX_PARTS = 1000
const REPEAT_FACTOR = 2

/** How often a streaming body's progress is reported (BodyRequest.progress). */
const PROGRESS_INTERVAL = 1000

const complete = (upload: Upload) => upload.size !== undefined && upload.offset === upload.size

/** A final upload not assembled yet as HEAD shows it: the bytes contiguous from its start, its length once all its partials' are known. */
function progressOf(final: Upload, partials: Upload[]): Upload {
  let offset = 0
  for (const partial of partials) {
    offset += partial.offset
    if (!complete(partial)) break
  }
  const known = partials.every(({ size }) => size !== undefined)
  return new Upload({ ...final, offset, size: known ? partials.reduce((sum, { size }) => sum + (size ?? 0), 0) : undefined })
}

export function inconsistentLength(known: number, indicated: number): UploadError {
  return new UploadError(
    400,
    `The request indicates a length of ${indicated} bytes, the upload's is ${known}`,
    {},
    {
      type: 'inconsistent-upload-length',
      title: 'inconsistent length values for upload',
    },
  )
}

export function offsetMismatch(expected: number, provided: number): UploadError {
  return new UploadError(
    409,
    `Upload-Offset ${provided} does not match the upload's offset ${expected}`,
    { 'Upload-Offset': String(expected) },
    {
      type: 'mismatching-upload-offset',
      title: 'offset from request does not match offset of resource',
      'expected-offset': expected,
      'provided-offset': provided,
    },
  )
}

/**
 * The upload operations, whatever the protocol: create, append, settle (read), terminate, concatenate.
 * Each applies, in one place, the lock order (the id's lock before the store is touched), the limits,
 * expiry, the checksum, ownership, hooks and metrics. The tus and IETF handlers translate their wire
 * format onto these and their results back.
 */
export class UploadCore {
  private readonly pending = new Set<Promise<unknown>>()
  private startup?: Promise<void>

  constructor(private readonly deps: CoreDeps) {}

  /** Prepares what the core needs on disk (the checksum staging folder). */
  async start(): Promise<void> {
    if (!this.deps.abilities.truncate) await mkdir(this.deps.settings.stagingDir, { recursive: true })
    // A final whose last partial finished just before a stop or a crash is assembled now, not at its next HEAD.
    this.startup = this.completeAllWaiting()
  }

  /** Resolves once no body write is in progress, nor the start's look at waiting finals (shutdown waits for them). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending, this.startup])
  }

  get writesInProgress(): number {
    return this.pending.size
  }

  get abilities(): StoreAbilities {
    return this.deps.abilities
  }

  get maxSize(): number {
    return this.deps.settings.maxSize
  }

  get expiration(): number {
    return this.deps.store.getExpiration()
  }

  /** The upload if the caller may see it: unknown, expired and (with isolation) someone else's alike answer 404/410. */
  async visible(caller: Caller, id: string): Promise<Upload> {
    const upload = await this.deps.store.getUpload(id)
    if (this.deps.settings.isolation && ownerOf(upload) !== caller.record.principal) throw ERRORS.notFound
    return upload
  }

  /**
   * An upload as its last writer left it, or `gone` once expired. Taking the lock asks a stale request
   * that still holds it to let go, so a resuming client sees its final offset.
   */
  async settle(caller: Caller, id: string): Promise<Upload> {
    await this.access(caller, id, 'read')
    const lock = await this.lock(caller, id, () => {})
    const upload = await this.deps.store.getUpload(id).finally(() => lock.unlock())
    if (isExpired(upload, this.expiration)) throw ERRORS.gone
    // A final upload waiting for its partials: as far as they are, or assembled now if they all finished.
    if (isFinalUpload(upload) && !complete(upload) && this.deps.abilities.waiting) return this.settleFinal(caller, upload)
    return upload
  }

  /** Creates an upload, and writes its first bytes when the request carries them. */
  async create(caller: Caller, request: CreateRequest): Promise<Written> {
    const { abilities, settings } = this.deps
    const { size, body } = request
    if (size === undefined && !abilities.deferLength) throw ERRORS.noDeferLength
    if (size !== undefined && settings.maxSize > 0 && size > settings.maxSize) throw ERRORS.tooLarge
    const upload = new Upload({ id: newUploadId(), size, offset: 0, metadata: request.metadata })
    // A body that cannot fit is refused before the upload exists (a chunked one is cut where it stops fitting).
    if (body?.contentLength !== undefined && body.contentLength > this.roomFor(upload)) throw ERRORS.bodyTooLarge
    const fingerprint = fingerprintOf({ kind: 'create', size, metadata: request.metadata, concat: request.concat })
    return this.once(caller, request.idempotencyKey, fingerprint, (stored) => this.createNew(caller, upload, request, stored))
  }

  private async createNew(caller: Caller, upload: Upload, request: CreateRequest, stored: (id: string) => void): Promise<Written> {
    const { body } = request
    const headers = await this.prepare(caller, upload, request.concat)

    const lock = await this.writeLock(caller, upload.id)
    let written: Written
    try {
      await this.deps.store.create(upload) // create-if-absent on every store: a taken id is 'exists', answered 409
      stored(upload.id)
      this.created(caller, upload)
      request.onCreated?.(upload)
      written = body?.present ? await this.writeBody(caller, lock, upload, body, true) : { upload, finished: complete(upload), overflowed: false, headers: {} }
      if (body?.representation && complete(upload)) written.digests = await this.representation(caller, upload, body.representation)
    } finally {
      await lock.unlock()
    }
    return this.finish(caller, { ...written, finished: complete(upload), headers })
  }

  /** Writes a body at the upload's offset; declares the upload's length when the request gives it. */
  async append(caller: Caller, id: string, request: AppendRequest): Promise<Written> {
    await this.access(caller, id, 'write')
    const lock = await this.writeLock(caller, id)
    let written: Written
    let wasComplete: boolean
    try {
      const upload = await this.deps.store.getUpload(id)
      if (isExpired(upload, this.expiration)) throw ERRORS.gone
      if (isFinalUpload(upload)) throw ERRORS.finalNotWritable
      wasComplete = complete(upload)
      if (upload.offset !== request.offset) throw offsetMismatch(upload.offset, request.offset)
      request.check?.(upload, wasComplete)
      if (request.length !== undefined) await this.declareLength(upload, request.length)
      written = await this.writeBody(caller, lock, upload, request, false)
      if (request.representation && !wasComplete && complete(upload)) written.digests = await this.representation(caller, upload, request.representation)
    } finally {
      await lock.unlock()
    }
    // Only the request that delivers the last byte finishes an upload (a repeated empty one does not).
    const answer = await this.finish(caller, { ...written, finished: !wasComplete && complete(written.upload) })
    if (answer.finished && isPartialUpload(answer.upload)) await this.completeWaiting(caller, id)
    return answer
  }

  /** Removes an upload: pre-terminate may refuse; post-terminate is queued before the caller answers. Resolves with pre-terminate's headers. */
  async terminate(caller: Caller, id: string): Promise<Record<string, string>> {
    const { store, hooks, metrics, logger, abilities } = this.deps
    if (!abilities.termination) throw ERRORS.noTermination
    const accessed = await this.access(caller, id, 'write')
    const upload = accessed ?? (hooks?.watchesTermination ? await store.getUpload(id) : undefined)
    const headers = upload && hooks ? await hooks.preTerminate(caller.req, upload) : {}
    const lock = await this.lock(caller, id, () => {})
    try {
      await store.remove(id)
      await this.unlist(id)
    } finally {
      await lock.unlock()
    }
    metrics.uploadsTerminated.inc()
    logger.info('upload terminated', { requestId: caller.record.requestId, uploadId: id })
    if (upload && hooks) await hooks.terminated(caller.req, upload)
    // A final waiting for it can never be assembled now.
    await this.completeWaiting(caller, id)
    return headers
  }

  /**
   * Creates a final upload of concatenation from finished partial uploads of the caller's, in order, and
   * assembles it. Each partial is checked before any lock is taken (someone else's answers as an unknown
   * one, and is never locked), then again under the locks of all of them and of the final upload.
   */
  async concatenate(caller: Caller, named: NamedPartial[], metadata: Upload['metadata'], concat: string, idempotencyKey?: string): Promise<Written> {
    if (!this.deps.abilities.concatenate) throw ERRORS.noConcatenation
    if (named.length > MAX_PARTS) throw new UploadError(400, `Upload-Concat names more than ${MAX_PARTS} partial uploads`)
    const fingerprint = fingerprintOf({ kind: 'final', metadata, concat: named.map(({ id }) => id) })
    return this.once(caller, idempotencyKey, fingerprint, (stored) => this.assemble(caller, named, metadata, concat, stored))
  }

  private async assemble(caller: Caller, named: NamedPartial[], metadata: Upload['metadata'], concat: string, stored: (id: string) => void): Promise<Written> {
    const { store, abilities, settings, logger } = this.deps
    if (!abilities.concatenate) throw ERRORS.noConcatenation
    const distinct = [...new Map(named.map((partial) => [partial.id, partial])).values()]
    const found = new Map<string, Upload>()
    for (const partial of distinct) {
      const upload = await this.partial(caller, partial, abilities.waiting !== undefined)
      await this.checkAccess(caller, upload, 'write')
      found.set(partial.id, upload)
    }
    if (![...found.values()].every(complete)) return this.createWaiting(caller, named, found, metadata, concat, stored)

    const ids = distinct.map(({ id }) => id)
    const partialLocks = await this.lockAll(caller, ids)
    try {
      const checked = new Map<string, Upload>()
      for (const partial of distinct) checked.set(partial.id, await this.partial(caller, partial))
      const partials = named.map(({ id }) => checked.get(id) as Upload)
      const size = this.finalSize(partials, caller.maxSize)

      const upload = new Upload({ id: newUploadId(), size, offset: 0, metadata })
      const headers = await this.prepare(caller, upload, concat)
      const finalLock = await this.lock(caller, upload.id, () => {})
      try {
        await this.deps.store.create(upload) // create-if-absent on every store: a taken id is 'exists', answered 409
        this.created(caller, upload)
        try {
          await abilities.concatenate(upload.id, partials)
        } catch (error) {
          // Nothing half-assembled is left behind.
          await store
            .remove(upload.id)
            .catch((e) => logger.warn('cannot remove a failed final upload', { requestId: caller.record.requestId, uploadId: upload.id, error: e }))
          throw error
        }
        upload.offset = size
        stored(upload.id)
        if (settings.removePartials) await this.removePartials(caller, ids)
      } finally {
        await finalLock.unlock()
      }
      return await this.finish(caller, { upload, finished: true, overflowed: false, headers })
    } finally {
      await Promise.allSettled(partialLocks.map((lock) => lock.unlock()))
    }
  }

  /** A final upload's length, the sum of its partials' (known), within the limits: repeats, MAX_SIZE, the token's `maxSize`. */
  private finalSize(partials: Upload[], maxSize?: number): number {
    const size = partials.reduce((sum, { size }) => sum + (size ?? 0), 0)
    const uploaded = [...new Map(partials.map(({ id, size }) => [id, size ?? 0])).values()].reduce((sum, size) => sum + size, 0)
    // Repeats may not turn a few bytes uploaded into many written.
    if (size > REPEAT_FACTOR * uploaded)
      throw new UploadError(413, `A final upload may be at most ${REPEAT_FACTOR} times the bytes of the partial uploads it names`)
    if (this.deps.settings.maxSize > 0 && size > this.deps.settings.maxSize) throw ERRORS.tooLarge
    if (maxSize !== undefined && size > maxSize) throw new UploadError(413, `This token allows uploads of at most ${maxSize} bytes`)
    return size
  }

  /**
   * concatenation-unfinished: a final upload naming partials still uploading. It is created empty (its
   * length once every partial's is known) and recorded as waiting for each of its partials; the request
   * that finishes the last of them assembles it, or a HEAD of it does. Its partials are not locked:
   * that would cut the bodies being written to them.
   */
  private async createWaiting(
    caller: Caller,
    named: NamedPartial[],
    found: Map<string, Upload>,
    metadata: Upload['metadata'],
    concat: string,
    stored: (id: string) => void,
  ): Promise<Written> {
    const waiting = this.deps.abilities.waiting as WaitingFinals
    const partials = named.map(({ id }) => found.get(id) as Upload)
    const known = partials.every(({ size }) => size !== undefined)
    const upload = new Upload({ id: newUploadId(), size: known ? this.finalSize(partials, caller.maxSize) : undefined, offset: 0, metadata })
    const headers = await this.prepare(caller, upload, concat)
    const finalLock = await this.lock(caller, upload.id, () => {})
    try {
      await this.deps.store.create(upload) // create-if-absent, as every creation
      try {
        for (const id of found.keys()) await waiting.add(id, upload.id)
      } catch (error) {
        await this.deps.store.remove(upload.id).catch(() => undefined)
        await this.unlinkFinal(upload.id, [...found.keys()])
        throw error
      }
      this.created(caller, upload)
      stored(upload.id)
    } finally {
      await finalLock.unlock()
    }
    // A partial that finished before this final was recorded did not find it: it is completed here.
    const { upload: now, assembled } = await this.completeFinal(caller, upload)
    return this.finish(caller, { upload: now, finished: assembled, overflowed: false, headers })
  }

  /**
   * The finals waiting for a partial upload that has just finished or been removed: each is assembled
   * once all its partials finished, or fails once one is gone. A final's failure is logged, never the
   * partial's request's.
   */
  private async completeWaiting(caller: Caller, partialId: string): Promise<void> {
    const { logger, abilities } = this.deps
    if (!abilities.waiting) return
    const waiting = abilities.waiting
    let finalIds: string[]
    try {
      finalIds = await waiting.finalsOf(partialId)
    } catch (error) {
      logger.error('cannot read the finals waiting for a partial upload', { requestId: caller.record.requestId, uploadId: partialId, error })
      return
    }
    for (const finalId of finalIds) {
      try {
        const final = await this.uploadOrNone(finalId)
        // One assembled, removed or expired (the sweep removes it) waits no more.
        if (!final || complete(final) || isExpired(final, this.expiration)) await waiting.remove(partialId, finalId)
        else await this.settleFinal(caller, final)
      } catch (error) {
        // A final that failed (410: a partial gone, 413: too large) was logged as such; any other is tried again by its next HEAD.
        const { status } = toUploadError(error).error
        if (status !== 410 && status !== 413) logger.warn('cannot complete a final upload', { requestId: caller.record.requestId, uploadId: finalId, error })
      }
    }
  }

  /** Every final waiting for a partial, assembled if its partials all finished: at start, in the background, for no request. */
  private async completeAllWaiting(): Promise<void> {
    const { abilities, logger } = this.deps
    if (!abilities.waiting) return
    const caller: Caller = { req: new IncomingMessage(new Socket()), record: { requestId: 'start', bytes: 0 } }
    try {
      for (const id of await abilities.waiting.partials()) await this.completeWaiting(caller, id)
    } catch (error) {
      logger.error('cannot look at the finals waiting for partial uploads', { error })
    }
  }

  /** A waiting final as completeFinal finds it; pre-finish and post-finish go out when this call assembled it. */
  private async settleFinal(caller: Caller, final: Upload): Promise<Upload> {
    const { upload, assembled } = await this.completeFinal(caller, final)
    if (assembled) await this.finish(caller, { upload, finished: true, overflowed: false, headers: {} })
    return upload
  }

  /**
   * A final upload not assembled yet, as far as its partials are: its offset the bytes contiguous from its
   * start (the finished partials in front, then what the first unfinished one holds), its length once
   * every partial's is known. Once all of them finished it is assembled here, under the locks of its
   * partials and then its own (a creation's order), exactly once: a final found assembled under its lock
   * is left as it is; `assembled` says this call did it. A partial gone or expired fails it (410).
   */
  private async completeFinal(caller: Caller, final: Upload): Promise<{ upload: Upload; assembled: boolean }> {
    const ids = partialIdsOf(final) ?? []
    const partials = await this.partialsOf(ids)
    if (partials && !partials.every(complete)) return { upload: progressOf(final, partials), assembled: false }
    // A failure needs the final's lock alone: the partials still there may be receiving bodies.
    const partialLocks = partials ? await this.lockAll(caller, [...new Set(ids)]) : []
    try {
      const finalLock = await this.lock(caller, final.id, () => {})
      try {
        const upload = await this.deps.store.getUpload(final.id)
        if (complete(upload)) return { upload, assembled: false }
        const checked = await this.partialsOf(ids)
        if (!checked) throw await this.failFinal(caller, upload)
        if (!partials || !checked.every(complete)) return { upload: progressOf(upload, checked), assembled: false }
        await this.fillWaiting(caller, upload, checked)
        return { upload, assembled: true }
      } finally {
        await finalLock.unlock()
      }
    } finally {
      await Promise.allSettled(partialLocks.map((lock) => lock.unlock()))
    }
  }

  /** The partial uploads of `ids`, in order; undefined when one is gone or expired. */
  private async partialsOf(ids: string[]): Promise<Upload[] | undefined> {
    const read = new Map<string, Upload>()
    for (const id of new Set(ids)) {
      const upload = await this.uploadOrNone(id)
      if (!upload || isExpired(upload, this.expiration)) return undefined
      read.set(id, upload)
    }
    return ids.map((id) => read.get(id) as Upload)
  }

  /**
   * Assembles a waiting final (its lock and its partials' held): its length declared if it was not
   * known, the bytes filled. A final too large once every length is known fails. One the store could
   * not fill stays, to be tried again by the next HEAD.
   */
  private async fillWaiting(caller: Caller, upload: Upload, partials: Upload[]): Promise<void> {
    const { store, abilities, settings } = this.deps
    let size: number
    try {
      size = this.finalSize(partials)
    } catch (error) {
      throw await this.failFinal(caller, upload, toUploadError(error).error)
    }
    if (upload.size === undefined) {
      await store.declareUploadLength(upload.id, size)
      upload.size = size
    }
    await abilities.concatenate?.(upload.id, partials)
    upload.offset = size
    const ids = [...new Set(partials.map(({ id }) => id))]
    await this.unlinkFinal(upload.id, ids)
    if (settings.removePartials) await this.removePartials(caller, ids)
  }

  /**
   * Removes a final upload that can never be assembled (its lock held); post-terminate follows. Resolves
   * with what its HEAD answers: 410, or `why`.
   */
  private async failFinal(caller: Caller, final: Upload, why?: UploadError): Promise<UploadError> {
    const { store, hooks, logger } = this.deps
    await store.remove(final.id)
    await this.unlist(final.id)
    await this.unlinkFinal(final.id, partialIdsOf(final) ?? [])
    logger.info('final upload failed', { requestId: caller.record.requestId, uploadId: final.id, reason: why?.message ?? 'a partial upload is gone' })
    await hooks?.terminated(caller.req, final)
    return why ?? new UploadError(410, 'A partial upload of this final upload expired or was removed, so the final upload was removed')
  }

  /** Forgets that a final waits for its partials (assembled or removed); a failure leaves an entry that leads nowhere. */
  private async unlinkFinal(finalId: string, partialIds: string[]): Promise<void> {
    const waiting = this.deps.abilities.waiting
    if (!waiting) return
    for (const id of new Set(partialIds)) {
      await waiting.remove(id, finalId).catch((error) => this.deps.logger.warn('cannot forget a waiting final', { uploadId: finalId, partial: id, error }))
    }
  }

  /**
   * pre-access: whether the caller may read or write an existing upload, asked before any lock is taken
   * or byte read. Every operation on an existing upload passes here, of both protocols and downloads.
   */
  async checkAccess(caller: Caller, upload: Upload, mode: AccessMode): Promise<void> {
    await this.deps.hooks?.preAccess(caller.req, upload, mode, caller.record.principal)
  }

  /** checkAccess for an upload by its id, read only when pre-access is on; resolves with what it read. */
  private async access(caller: Caller, id: string, mode: AccessMode): Promise<Upload | undefined> {
    if (!this.deps.hooks?.enabled('pre-access')) return undefined
    const upload = await this.deps.store.getUpload(id)
    await this.checkAccess(caller, upload, mode)
    return upload
  }

  /**
   * A creation under an Idempotency-Key: the first request with the key runs; a repeat of it (same
   * principal, key and fingerprint) gets the upload it made without anything being created or any hook
   * sent, a different request 422, a repeat while the first runs 409. A first request that fails frees
   * the key unless its upload exists (a retry then resumes it).
   */
  private async once(caller: Caller, key: string | undefined, fingerprint: string, run: (stored: (id: string) => void) => Promise<Written>): Promise<Written> {
    const keys = this.deps.idempotency
    if (!keys || key === undefined) return run(() => {})
    const claim = await keys.claim(scopedKey(caller.record.principal, key), fingerprint)
    if ('replay' in claim) return this.replay(caller, claim.replay)
    const unsettled = (error: unknown) => this.deps.logger.warn('cannot settle an Idempotency-Key', { requestId: caller.record.requestId, error })
    let made: string | undefined
    try {
      const written = await run((id) => {
        made = id
      })
      await claim.done(written.upload.id).catch(unsettled)
      return written
    } catch (error) {
      const exists =
        made !== undefined &&
        (await this.deps.store.getUpload(made).then(
          () => true,
          () => false,
        ))
      await (exists ? claim.done(made as string) : claim.release()).catch(unsettled)
      throw error
    }
  }

  /** The answer to a repeated creation: the upload the first one made, as it is now. */
  private async replay(caller: Caller, id: string): Promise<Written> {
    caller.record.uploadId = id
    const upload = await this.deps.store.getUpload(id).catch(() => new Upload({ id, offset: 0 }))
    this.deps.logger.info('creation repeated', { requestId: caller.record.requestId, uploadId: id })
    return { upload, finished: false, overflowed: false, headers: {}, replayed: true }
  }

  /** A partial upload the caller may use in a final one (an `unfinished` one too); a 400 naming it otherwise (unknown, expired and foreign alike). */
  private async partial(caller: Caller, { id, url }: NamedPartial, unfinished = false): Promise<Upload> {
    const unknown = new UploadError(400, `Partial upload not found: ${url}`)
    const upload = await this.visible(caller, id).catch((error) => {
      const { error: refusal } = toUploadError(error)
      throw refusal.status === 404 ? unknown : error
    })
    if (isExpired(upload, this.expiration)) throw unknown
    if (!isPartialUpload(upload)) throw new UploadError(400, `Not a partial upload (created without Upload-Concat: partial): ${url}`)
    if (!unfinished && !complete(upload)) throw new UploadError(400, `Partial upload not finished: ${url}`)
    return upload
  }

  private async removePartials(caller: Caller, ids: string[]): Promise<void> {
    for (const id of ids) {
      try {
        await this.deps.store.remove(id)
        await this.unlist(id)
        this.deps.logger.info('partial upload removed', { requestId: caller.record.requestId, uploadId: id })
      } catch (error) {
        this.deps.logger.warn('cannot remove a partial upload', { requestId: caller.record.requestId, uploadId: id, error })
      }
    }
  }

  /** How many bytes may still be written to an upload: up to its length, else up to MAX_SIZE. */
  private roomFor(upload: Upload): number {
    if (upload.size !== undefined) return upload.size - upload.offset
    const { maxSize } = this.deps.settings
    return maxSize > 0 ? maxSize - upload.offset : Number.MAX_SAFE_INTEGER
  }

  /**
   * Before an upload is stored: the creator and its Upload-Concat go into reserved metadata (a client's
   * own values are dropped), so pre-create sees them; pre-create may refuse, or change the id and
   * metadata, or choose where its bytes go, and the records are stamped again so that no hook can set or drop them.
   */
  private async prepare(caller: Caller, upload: Upload, concat: string | undefined): Promise<Record<string, string>> {
    const records = { owner: caller.record.principal, concat }
    caller.record.uploadId = upload.id
    stampRecords(upload, records)
    const headers = (await this.deps.hooks?.preCreate(caller.req, upload, this.deps.abilities.placement)) ?? {}
    stampRecords(upload, records)
    caller.record.uploadId = upload.id
    return headers
  }

  /** The upload, or undefined for an unknown one (any other failure of the store is thrown). */
  private async uploadOrNone(id: string): Promise<Upload | undefined> {
    return this.deps.store.getUpload(id).catch((error) => {
      if (toUploadError(error).error.status === 404) return undefined
      throw error
    })
  }

  private created(caller: Caller, upload: Upload): void {
    this.deps.metrics.uploadsCreated.inc()
    this.deps.logger.info('upload created', { requestId: caller.record.requestId, uploadId: upload.id, size: upload.size })
    this.deps.hooks?.postCreate(caller.req, upload)
  }

  /** The length a request gives an upload: set once on a deferred one, never below its offset; else it must agree. */
  private async declareLength(upload: Upload, length: number): Promise<void> {
    if (upload.size !== undefined) {
      if (length !== upload.size) throw inconsistentLength(upload.size, length)
      return
    }
    if (length < upload.offset) throw inconsistentLength(upload.offset, length)
    const { maxSize } = this.deps.settings
    if (maxSize > 0 && length > maxSize) throw ERRORS.tooLarge
    await this.deps.store.declareUploadLength(upload.id, length)
    upload.size = length
  }

  /**
   * Writes a request's body at the upload's offset (at most what fits) and moves `upload.offset` on,
   * sending post-receive while it streams. A post-receive's StopUpload cuts the body; the upload is then
   * removed, as tusd does (a stopped upload cannot be resumed), and the hook's refusal thrown.
   */
  private async writeBody(caller: Caller, lock: WriteLock, upload: Upload, request: BodyRequest, creating: boolean): Promise<Written> {
    const { hooks, store, feed } = this.deps
    const { req } = caller
    const room = this.roomFor(upload)
    if (request.contentLength !== undefined && request.contentLength > room) throw ERRORS.bodyTooLarge
    let overflowed = false
    if (request.present) {
      const body = meteredBodyOf(req, room, request.checksum, feed)
      lock.body = body
      if (lock.released) body.stop()
      let stopped: UploadError | undefined
      const received = hooks?.receiving(req, upload, body, (rejection) => {
        stopped = rejection
        body.stop()
      })
      const start = upload.offset
      const progress = request.progress && this.reporting(start, body, request.progress)
      try {
        upload.offset = await this.store(caller, upload.id, start, body, request, creating)
      } catch (error) {
        throw body.failure ?? error
      } finally {
        clearInterval(progress)
        received?.()
        caller.record.bytes += upload.offset - start
        this.deps.metrics.bytesReceived.inc(upload.offset - start)
      }
      if (stopped) {
        await store.remove(upload.id)
        await hooks?.terminated(req, upload)
        throw stopped
      }
      overflowed = body.overflowed
    }
    const arrivedWhole = !request.present || (req.complete && !overflowed)
    if (request.completes && arrivedWhole) {
      if (upload.size === undefined) {
        await store.declareUploadLength(upload.id, upload.offset)
        upload.size = upload.offset
        // A store that finishes an upload when a write reaches its length (S3 completes the multipart
        // upload then) learnt the length only now: an empty write lets it finish. An empty upload has
        // nothing to finish (S3 refuses to complete a multipart upload of no parts).
        if (upload.offset > 0) await store.write(Readable.from([]), upload.id, upload.offset)
      } else if (upload.offset !== upload.size) {
        throw inconsistentLength(upload.size, upload.offset)
      }
    }
    return { upload, finished: false, overflowed, headers: {} }
  }

  /**
   * The body into the store, verified when it carries a checksum: a chunk that does not match is
   * discarded (460), so the offset stays where the request found it. A store that can take bytes back
   * is written in place and truncated on a mismatch; any other gets the chunk only once it is verified,
   * staged meanwhile in a file. A creation whose first chunk fails leaves no upload behind.
   */
  private async store(caller: Caller, id: string, offset: number, body: MeteredBody, request: BodyRequest, creating: boolean): Promise<number> {
    const { store, abilities, settings, logger } = this.deps
    const writing = (async () => {
      const { checksum } = request
      if (checksum === undefined) return store.write(body, id, offset)
      const verify = () => {
        if (!body.matches(typeof checksum === 'function' ? checksum() : checksum)) throw ERRORS.checksumMismatch
      }
      try {
        if (abilities.truncate) {
          try {
            const end = await store.write(body, id, offset)
            verify()
            return end
          } catch (error) {
            // Bytes that were not verified do not stay, whatever stopped them.
            await abilities.truncate(id, offset)
            throw error
          }
        }
        const staged = path.join(settings.stagingDir, `tusgate-${id}-${randomUUID()}`)
        try {
          await pipeline(body, createWriteStream(staged, { flags: 'wx' }))
          verify()
          return await store.write(createReadStream(staged), id, offset)
        } finally {
          await rm(staged, { force: true })
        }
      } catch (error) {
        const { error: refusal } = toUploadError(error)
        if (refusal.status === 460 || refusal.status === 400) {
          logger.info('chunk discarded', { requestId: caller.record.requestId, uploadId: id, offset, reason: refusal.message })
          // The client, which never learnt the URL of a creation, posts again.
          if (creating) await store.remove(id)
        }
        throw error
      }
    })()
    this.pending.add(writing)
    caller.record.writes?.add(writing)
    try {
      return await writing
    } finally {
      this.pending.delete(writing)
    }
  }

  /**
   * The digests of an upload the request has just completed, read back from the store. One that differs
   * from the request's Repr-Digest fails the upload: it is removed (post-terminate follows) and never
   * finished, and the request is refused.
   */
  private async representation(caller: Caller, upload: Upload, representation: Representation): Promise<Written['digests']> {
    const { abilities, store, hooks, logger } = this.deps
    if (!abilities.read) throw new UploadError(501, 'This store cannot verify Repr-Digest')
    const digests = await digestsOf(await abilities.read(upload.id), representation)
    if (matches(representation, digests)) return digests
    logger.info('upload failed its Repr-Digest', { requestId: caller.record.requestId, uploadId: upload.id })
    await store.remove(upload.id)
    await hooks?.terminated(caller.req, upload)
    throw ERRORS.reprDigestMismatch
  }

  /** Tells `progress` the offset a body has reached, every PROGRESS_INTERVAL while it moves; clear the interval it returns. */
  private reporting(start: number, body: MeteredBody, progress: (offset: number) => void): NodeJS.Timeout {
    let reported = start
    return setInterval(() => {
      const offset = start + body.passed
      if (offset === reported) return
      reported = offset
      progress(offset)
    }, PROGRESS_INTERVAL)
  }

  /** pre-finish (its answer may change the response; a failure answers 500 though the upload is finished), counted and logged. */
  private async finish(caller: Caller, written: Written): Promise<Written> {
    if (!written.finished) return written
    const { hooks, metrics, logger } = this.deps
    const { upload } = written
    try {
      written.changes = await hooks?.finishing(caller.req, upload)
    } catch (error) {
      written.failure = toUploadError(error).error
      logger.error('pre-finish failed', { requestId: caller.record.requestId, uploadId: upload.id, error })
    }
    metrics.uploadsFinished.inc()
    logger.info('upload finished', { requestId: caller.record.requestId, uploadId: upload.id, size: upload.size })
    // The upload is finished whatever the index says: a failure to record it is logged, not answered.
    await this.deps.finished?.added(upload).catch((error) => logger.error('cannot index a finished upload', { uploadId: upload.id, error }))
    return written
  }

  private async unlist(id: string): Promise<void> {
    await this.deps.finished?.removed(id).catch((error) => this.deps.logger.error('cannot unindex a removed upload', { uploadId: id, error }))
  }

  /** Takes an upload's lock (rejects when the client goes away while waiting, or on the lock's timeout). */
  private async lock(caller: Caller, id: string, requestRelease: () => void): Promise<Lock> {
    const waiting = new AbortController()
    const onGone = () => waiting.abort()
    caller.req.once('close', onGone)
    const lock = this.deps.locker.newLock(id)
    try {
      await lock.lock(waiting.signal, requestRelease)
    } finally {
      caller.req.off('close', onGone)
    }
    return lock
  }

  /** Locks every upload of `ids` in sorted order (two requests never wait on each other), or none. */
  private async lockAll(caller: Caller, ids: string[]): Promise<Lock[]> {
    const locks: Lock[] = []
    try {
      for (const id of [...ids].sort()) locks.push(await this.lock(caller, id, () => {}))
    } catch (error) {
      await Promise.allSettled(locks.map((lock) => lock.unlock()))
      throw error
    }
    return locks
  }

  /**
   * The lock for a request that will write its body. When another request (a resuming client) asks for
   * it, what arrives within LOCK_DRAIN_TIMEOUT is kept and the body is cut there.
   */
  private async writeLock(caller: Caller, id: string): Promise<WriteLock> {
    let timer: NodeJS.Timeout | undefined
    const held: WriteLock = {
      released: false,
      unlock: async () => {
        clearTimeout(timer)
        await lock.unlock().catch((error) => this.deps.logger.warn('unlock failed', { uploadId: id, error }))
      },
    }
    const lock = await this.lock(caller, id, () => {
      timer ??= setTimeout(() => {
        held.released = true
        held.body?.stop()
      }, this.deps.settings.lockDrainTimeout)
    })
    return held
  }
}
