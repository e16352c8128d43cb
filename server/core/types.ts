import type { IncomingMessage } from 'node:http'
import type { Upload } from '@tus/utils'
import type { ExpectedChecksum } from './body.js'
import type { Fault, UploadError } from './errors.js'
import type { ReprAlgorithm, Representation } from './representation.js'

/** What one request records of itself for its log line: its ids, its principal, the bytes it stored. */
export interface RequestRecord {
  requestId: string
  uploadId?: string
  /** Who made the request (a verified token's `sub`), when authentication is on. */
  principal?: string
  /** Body bytes the store accepted during this request. */
  bytes: number
  /** Its store writes in progress: the log line waits for them (a client that hangs up closes the response first). */
  writes?: Set<Promise<unknown>>
  /** The fault of ours its answer reported, if any (counted in metrics when the request ends). */
  fault?: Fault
}

/** Who asks for an operation: the request (its body, and what hooks report of it) and its record. */
export interface Caller {
  req: IncomingMessage
  record: RequestRecord
  /** The largest upload the caller's token allows, when it says. */
  maxSize?: number
}

/** A body to write at an upload's offset, and what the request says of it. */
export interface BodyRequest {
  /** The request carries a body (a length above 0, or chunked). */
  present: boolean
  /** Content-Length, when given. */
  contentLength?: number
  /** What it must hash to (the checksum extension). */
  checksum?: ExpectedChecksum
  /**
   * The request ends the upload (the IETF draft's Upload-Complete): once its body arrived whole, an upload
   * without a length gets the offset reached as its length, and one with a length must have reached it.
   */
  completes?: boolean
  /** Repr-Digest and Want-Repr-Digest: verified and computed over the whole upload when this request completes it. */
  representation?: Representation
  /** Told the offset reached, about every second while the body streams and the offset moves (the IETF draft's progress 104s). */
  progress?(offset: number): void
}

/** An append: a body at `offset`, maybe with the upload's length. */
export interface AppendRequest extends BodyRequest {
  offset: number
  /** The length the request declares (Upload-Length) or implies. */
  length?: number
  /** A protocol's own refusals for the upload as found, before anything is written. */
  check?(upload: Upload, complete: boolean): void
}

/** A creation: the upload asked for, and maybe its first bytes. */
export interface CreateRequest {
  /** undefined: deferred. */
  size?: number
  metadata?: Upload['metadata']
  /** `partial` for a partial upload of concatenation. */
  concat?: 'partial'
  body?: BodyRequest
  /** Called once the upload is stored, before its body is read (the IETF draft's 104 goes out here). */
  onCreated?(upload: Upload): void
  /** The request's Idempotency-Key: a repeat answers with the upload the first made. */
  idempotencyKey?: string
}

/** What a write did, for the answer. */
export interface Written {
  upload: Upload
  /** This request delivered the upload's last byte (pre-finish ran, post-finish is queued). */
  finished: boolean
  /** pre-finish's changes to the answer: status, headers, body. */
  changes?: { StatusCode?: number | null; Header?: Record<string, string> | null; Body?: string | null }
  /** pre-finish failed: the answer is this error, though the upload is finished. */
  failure?: UploadError
  /** A chunked body carried more than the upload could take: what fit was stored, the rest refused. */
  overflowed: boolean
  /** Headers a hook asked for on the answer (pre-create). */
  headers: Record<string, string>
  /** The whole upload's digests, when this request completed it and asked (Repr-Digest, Want-Repr-Digest). */
  digests?: Map<ReprAlgorithm, Buffer>
  /** A repeated creation (same Idempotency-Key): nothing was created or written; `upload` is the first one's. */
  replayed?: boolean
}
