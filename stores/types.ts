import type { Readable } from 'node:stream'
import type { DataStore, Locker, Upload } from '@tus/utils'

/** An inclusive byte range of an upload, as in HTTP's Range header. */
export interface ByteRange {
  start: number
  end: number
}

/**
 * What a store supports, stated once by the store; the host derives what it advertises from it
 * (Tus-Extension, the IETF draft's limits) and which optional methods of StoreBackend it may call.
 */
export interface StoreCapabilities {
  /** Creation without a length, declared later (creation-defer-length). */
  readonly creationDeferLength: boolean
  /** An upload can be removed by its client (termination). */
  readonly termination: boolean
  /** Unfinished uploads expire this long after creation (expiration); 0: never. */
  readonly expiresAfterMs: number
  /** Final uploads are assembled from finished partial ones (concatenation): `concatenate` exists. */
  readonly concatenation: boolean
  /** A final upload may name partial ones still uploading (concatenation-unfinished): `waitingFinals` exists. */
  readonly concatenationUnfinished: boolean
  /** Bytes past an offset can be taken back: `truncate` exists, so a checksummed chunk can be written in place. */
  readonly truncate: boolean
  /** Finished uploads can be listed: `listFinished` exists. */
  readonly listing: boolean
  /** The largest upload the store can hold, in bytes; 0: no limit of its own. */
  readonly maxSize: number
  /** The most bytes of upload info (its metadata and ~350 bytes more) the store can keep; 0: no limit of its own. */
  readonly maxInfoSize: number
  /**
   * A pre-create hook may choose where the bytes go: the field of `ChangeFileInfo.Storage` the store reads
   * (the file store's `Path`, S3's `Key`), handed to `create` as a requested place (stores/placement.ts).
   * false: the store puts every upload where it always does.
   */
  readonly placement: false | 'Path' | 'Key'
}

/**
 * Something a creation or a write left behind when it stopped between two steps (a crash, a failure
 * it could not undo): no upload refers to it. `key` names it within the store, `id` the upload it was for.
 */
export interface Orphan {
  id: string
  key: string
  kind: 'data-without-info' | 'temporary-info' | 'multipart-upload' | 'incomplete-part' | 'patch-object'
}

/**
 * Which final uploads wait for a partial upload (concatenation-unfinished), kept in the store so that
 * every instance, and this one after a restart, finds them: one entry per pair, so that two finals
 * naming one partial never race over a shared record.
 */
export interface WaitingFinals {
  add(partialId: string, finalId: string): Promise<void>
  /** The finals recorded as waiting for `partialId`; none for an unknown one. */
  finalsOf(partialId: string): Promise<string[]>
  /** Drops one entry; one already gone is no error. */
  remove(partialId: string, finalId: string): Promise<void>
  /** Every partial some final waits for (looked at once when the service starts). */
  partials(): Promise<string[]>
}

/** What a storage back end gives the host. */
export interface StoreBackend {
  datastore: DataStore
  capabilities: StoreCapabilities
  /**
   * An upload's offset read from the store itself, at once (the file store: its file's size). Optional:
   * where several processes share the uploads, a cache of upload info then keeps all but the offset.
   */
  offsetOf?(id: string): number
  /** Resolves when the store can take writes; rejects with the reason otherwise. */
  health(): Promise<void>
  /** S3: parts holding one of the slots for parts at once, and parts waiting for one (for /metrics). */
  partSlots?: { readonly inFlight: number; readonly waiting: number }
  /** Unfinished uploads whose expiry has passed by `now` (default: now), for the sweep (which rechecks each under its lock). */
  expiredUploadIds(now?: number): Promise<string[]>
  /** The bytes of an upload, whole or a range of it. */
  download(id: string, range?: ByteRange): Promise<Readable>
  /**
   * Finished uploads (offset === size), newest first by creation date, at most `limit` of them, only
   * those `where` accepts when it is given. Present when `capabilities.listing`.
   */
  listFinished?(limit: number, where?: (upload: Upload) => boolean): Promise<Upload[]>
  /**
   * Fills the upload `finalId` (created empty, with the partials' total as its length) with the bytes of
   * the finished `partials`, in order, and leaves it finished. Present when `capabilities.concatenation`.
   */
  concatenate?(finalId: string, partials: Upload[]): Promise<void>
  /** Where final uploads naming unfinished partials are recorded. Present when `capabilities.concatenationUnfinished`. */
  waitingFinals?: WaitingFinals
  /**
   * Takes back the bytes an upload holds past `offset` (its offset is `offset` again), so a chunk that
   * fails its checksum can be written in place and discarded. Present when `capabilities.truncate`.
   */
  truncate?(id: string, offset: number): Promise<void>
  /**
   * Leftovers older than `graceMs` (see Orphan), for the sweep. Absent on a store where a creation or
   * a write is one atomic request, so nothing can be left behind.
   */
  orphans?(graceMs: number): Promise<Orphan[]>
  /**
   * Removes one leftover if it still is one (the sweep holds its upload's lock); false when it is not
   * (an upload now refers to it, or it is gone).
   */
  removeOrphan?(orphan: Orphan, graceMs: number): Promise<boolean>
  close(): Promise<void>
}

/** A storage back end, built from its own settings. */
export interface StoreModule<Settings> {
  name: string
  create(settings: Settings): Promise<StoreBackend>
}

export interface LockerBackend {
  locker: Locker
  close(): Promise<void>
}

export interface LockerModule<Settings> {
  name: string
  create(settings: Settings): Promise<LockerBackend>
}
