import { createReadStream } from 'node:fs'
import { lstat, open, readdir, rm, stat, symlink } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { FileStore } from '@tus/file-store'
import { ERRORS, Upload } from '@tus/utils'
import { capabilities, dataStoreExtensions } from '../capabilities.js'
import { asStoreError, fileErrorKind, StoreError } from '../errors.js'
import { isExpired } from '../expiry.js'
import { finishedAmong } from '../listing.js'
import { requestedPlace } from '../placement.js'
import type { ByteRange, Orphan, StoreCapabilities } from '../types.js'
import { isUploadId } from '../uploadId.js'
import { AtomicFileKvStore } from './AtomicFileKvStore.js'
import { createPlacedFile, placeSegments, removeData } from './placedFile.js'
import { writeBody } from './writeBody.js'

/** How many uploads the listing reads at once (each is an info file read and a stat). */
const LIST_BATCH = 64
const TEMP_INFO = '.json.tmp'

/** Where the file store keeps an upload, as hook payloads describe it: its bytes (`path`) and its info. */
export type FileStorage = NonNullable<Upload['storage']> & { infoPath: string }

export interface FileStoreSettings {
  /**
   * The folder holding every upload: `<id>` (its bytes, or a link to the file at the Path a pre-create
   * hook chose, relative to the folder) and `<id>.json` (its info, the chosen Path included).
   */
  directory: string
  /** Bytes are flushed to disk before their offset is acknowledged. */
  fsync: boolean
  /** Unfinished uploads expire this long after creation; 0: never. */
  expiresAfterMs: number
  /** Folders others keep in or near `directory` (absolute): no upload is placed in them. */
  kept?: string[]
}

/**
 * `@tus/file-store` with what a crash-safe service needs: creation that never replaces an upload and
 * leaves nothing behind when it fails, an atomic info file, bytes flushed to disk before their offset
 * is acknowledged, ranged reads, a list of expired uploads that spares finished ones (the upstream sweep
 * compares against the offset recorded at creation, so it would remove them too), a list of finished
 * uploads, and the leftovers of a crash between two steps.
 */
// @ts-expect-error upstream declares checkOrCreateDirectory private; it is replaced below on purpose.
export class FileDatastore extends FileStore {
  private readonly fsync: boolean
  private readonly kept: string[]
  declare configstore: AtomicFileKvStore
  readonly capabilities: StoreCapabilities

  constructor({ directory, expiresAfterMs, fsync, kept = [] }: FileStoreSettings) {
    super({ directory, configstore: new AtomicFileKvStore(directory), expirationPeriodInMilliseconds: expiresAfterMs })
    this.fsync = fsync
    // Only those inside the folder can be in a Path's way.
    this.kept = kept.filter((folder) => folder.startsWith(`${path.resolve(directory)}${path.sep}`))
    this.capabilities = capabilities({
      creationDeferLength: true,
      termination: true,
      expiresAfterMs,
      concatenation: true,
      concatenationUnfinished: true,
      truncate: true,
      listing: true,
      placement: 'Path',
    })
    this.extensions = dataStoreExtensions(this.capabilities)
  }
  // Upstream creates the folder from its constructor without waiting and throws from the callback (an
  // uncaught exception, which ends the process) when that fails, e.g. when the folder is removed
  // meanwhile. The store module creates it, awaited, before constructing the store.
  protected checkOrCreateDirectory(): void {}

  pathOf(id: string): string {
    if (!isUploadId(id)) throw ERRORS.FILE_NOT_FOUND
    return `${this.directory}/${id}`
  }

  /**
   * The data file, then the info file, each created only if absent: an id that is taken fails with a
   * StoreError 'exists' and the upload holding it stays as it was. A failure after the data file
   * removes it again, so a refused creation leaves nothing. An upload placed by a hook (its Path) has its
   * file created first, only if absent, then `<id>` as a link to it: every later step, and a crash's
   * leftover link, finds the file through the link, which only ever leads to a file its creation made.
   */
  override async create(upload: Upload): Promise<Upload> {
    const data = this.pathOf(upload.id)
    const place = requestedPlace(upload)
    const segments = place === undefined ? undefined : placeSegments(place, path.resolve(this.directory), this.kept)
    let placed: string | undefined
    try {
      if (segments) {
        placed = await createPlacedFile(this.directory, segments)
        await symlink(segments.join('/'), data)
        upload.storage = { type: 'file', path: segments.join('/') }
      } else {
        await (await open(data, 'wx')).close()
      }
    } catch (error) {
      if (placed) await rm(placed, { force: true })
      throw this.creationError(error, upload.id)
    }
    try {
      await this.configstore.create(upload.id, upload)
    } catch (error) {
      await removeData(this.directory, data)
      throw this.creationError(error, upload.id)
    }
    upload.storage = this.storageOf(upload.id, segments?.join('/'))
    return upload
  }

  /** The upload's info and its offset (its file's size, through the link of a placed one). */
  override async getUpload(id: string): Promise<Upload> {
    const info = await this.configstore.get(id)
    if (!info) throw ERRORS.FILE_NOT_FOUND
    const stats = await stat(this.pathOf(id)).catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? ERRORS.FILE_NO_LONGER_EXISTS : error
    })
    if (!stats.isFile()) throw ERRORS.FILE_NOT_FOUND
    const { size, metadata, creation_date, storage } = info
    return new Upload({ id, size, offset: stats.size, metadata, creation_date, storage: this.storageOf(id, storage?.path) })
  }

  /** Where an upload's bytes are (`place`: the Path a hook chose, else its own file) and its info. */
  private storageOf(id: string, place: string | undefined): FileStorage {
    const file = place === undefined ? this.pathOf(id) : path.join(this.directory, place)
    return { type: 'file', path: file, infoPath: this.configstore.infoPath(id) }
  }

  private creationError(error: unknown, id: string): unknown {
    if (error instanceof StoreError) return error
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return new StoreError('exists', `upload ${id} exists`, { cause: error })
    return asStoreError(error, fileErrorKind)
  }

  /**
   * The info file first: a crash between the two leaves data without info, which the sweep removes,
   * rather than info whose data is gone.
   */
  override async remove(id: string): Promise<void> {
    try {
      await rm(this.configstore.infoPath(id))
    } catch (error) {
      throw (error as NodeJS.ErrnoException).code === 'ENOENT' ? ERRORS.FILE_NOT_FOUND : error
    }
    await removeData(this.directory, this.pathOf(id))
  }

  override async declareUploadLength(id: string, length: number): Promise<void> {
    try {
      await super.declareUploadLength(id, length)
    } catch (error) {
      throw asStoreError(error, fileErrorKind)
    }
  }

  override write(readable: Readable, id: string, offset: number): Promise<number> {
    return this.writeAt(readable, id, offset)
  }

  /** Streams the partials into the final upload's file one after another, flushed as FILE_FSYNC says. */
  async concatenate(finalId: string, partials: Upload[]): Promise<void> {
    let offset = 0
    for (const partial of partials) offset = await this.writeAt(this.readRange(partial.id), finalId, offset)
  }

  // Not `write`, which the host wraps to count the bytes clients send.
  private async writeAt(readable: Readable, id: string, offset: number): Promise<number> {
    const { bytesWritten, failed, fileError } = await writeBody(readable, this.pathOf(id), offset, this.fsync)
    if (!failed) return offset + bytesWritten
    // The disk's own failure (full, out of descriptors) says more than a write error; a client's does not.
    const kind = fileError ? fileErrorKind(fileError) : undefined
    throw kind ? new StoreError(kind, `upload ${id}: ${fileError?.message}`, { cause: fileError }) : ERRORS.FILE_WRITE_ERROR
  }

  /** Cuts the upload's file back to `offset` bytes (its offset), flushed like a write. */
  async truncate(id: string, offset: number): Promise<void> {
    const file = await open(this.pathOf(id), 'r+')
    try {
      await file.truncate(offset)
      if (this.fsync) await file.sync()
    } finally {
      await file.close()
    }
  }

  readRange(id: string, range?: ByteRange): Readable {
    return createReadStream(this.pathOf(id), range)
  }

  /** Unfinished uploads whose expiry has passed. */
  async expiredIds(now = Date.now()): Promise<string[]> {
    const expired: string[] = []
    for (const id of (await this.configstore.list?.()) ?? []) {
      const upload = await this.getUpload(id).catch(() => undefined)
      if (upload && isExpired(upload, this.getExpiration(), now)) expired.push(id)
    }
    return expired
  }

  /**
   * Finished uploads (offset === size), newest first by creation date, at most `limit`. Every upload's
   * info is read (the creation date lives there), a batch at a time; one that vanishes meanwhile is skipped.
   */
  async finishedUploads(limit: number, where?: (upload: Upload) => boolean): Promise<Upload[]> {
    const ids = ((await this.configstore.list?.()) ?? []).filter(isUploadId)
    return finishedAmong(ids, (id) => this.getUpload(id), { limit, batch: LIST_BATCH, where })
  }

  /** Data files (or links to placed ones) without an info file and temporary info files, unchanged for `graceMs`. */
  async orphans(graceMs: number): Promise<Orphan[]> {
    const names = new Set(await readdir(this.directory))
    const found: Orphan[] = []
    for (const name of names) {
      const orphan = this.orphanNamed(name, names)
      if (orphan && (await this.untouchedFor(orphan.key, graceMs))) found.push(orphan)
    }
    return found
  }

  /** Removes a leftover that still is one; false when it is not (or is gone). */
  async removeOrphan(orphan: Orphan, graceMs: number): Promise<boolean> {
    const names = new Set(await readdir(this.directory))
    if (!names.has(orphan.key) || this.orphanNamed(orphan.key, names)?.kind !== orphan.kind) return false
    if (!(await this.untouchedFor(orphan.key, graceMs))) return false
    await removeData(this.directory, path.join(this.directory, orphan.key))
    return true
  }

  private orphanNamed(name: string, names: Set<string>): Orphan | undefined {
    if (isUploadId(name) && !names.has(`${name}.json`)) return { id: name, key: name, kind: 'data-without-info' }
    const id = name.endsWith(TEMP_INFO) ? name.slice(0, -TEMP_INFO.length) : undefined
    if (id !== undefined && isUploadId(id)) return { id, key: name, kind: 'temporary-info' }
    return undefined
  }

  /** A link counts by its own age: it is made first, and its placed file may never have been. */
  private async untouchedFor(name: string, graceMs: number): Promise<boolean> {
    const stats = await lstat(path.join(this.directory, name)).catch(() => undefined)
    return (stats?.isFile() === true || stats?.isSymbolicLink() === true) && Date.now() - stats.mtimeMs >= graceMs
  }
}
