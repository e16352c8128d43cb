import type { Readable } from 'node:stream'
import type { DataStore, Locker, Upload } from '@tus/utils'
import type { Config } from '../server/config.js'

/** An inclusive byte range of an upload, as in HTTP's Range header. */
export interface ByteRange {
  start: number
  end: number
}

/** What a storage back end gives the host; the tus extensions it supports are `datastore.extensions`. */
export interface StoreBackend {
  datastore: DataStore
  /** Resolves when the store can take writes; rejects with the reason otherwise. */
  health(): Promise<void>
  /** Unfinished uploads whose expiry has passed, for the sweep (which rechecks each under its lock). */
  expiredUploadIds(): Promise<string[]>
  /** The bytes of an upload, whole or a range of it. */
  download(id: string, range?: ByteRange): Promise<Readable>
  /**
   * Finished uploads (offset === size), newest first by creation date, at most `limit` of them, only
   * those `where` accepts when it is given. Optional: a store without it has no listing (the web page's
   * list answers 501).
   */
  listFinished?(limit: number, where?: (upload: Upload) => boolean): Promise<Upload[]>
  /**
   * Fills the upload `finalId` (created empty, with the partials' total as its length) with the bytes of
   * the finished `partials`, in order, and leaves it finished. Optional: a store without it has no
   * concatenation extension.
   */
  concatenate?(finalId: string, partials: Upload[]): Promise<void>
  /**
   * Takes back the bytes an upload holds past `offset` (its offset is `offset` again), so a chunk that
   * fails its checksum can be written in place and discarded. Optional: a store without it (one that
   * cannot take bytes back) gets a checksummed chunk only once it is verified, staged on disk meanwhile.
   */
  truncate?(id: string, offset: number): Promise<void>
  close(): Promise<void>
}

export interface StoreModule {
  name: string
  create(config: Config): Promise<StoreBackend>
}

export interface LockerBackend {
  locker: Locker
  close(): Promise<void>
}

export interface LockerModule {
  name: string
  create(config: Config): Promise<LockerBackend>
}
