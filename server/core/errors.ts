import { ERRORS as STORE_ERRORS } from '@tus/utils'

/** An RFC 9457 problem type of the IETF draft, for answers that have one. */
export interface Problem {
  type: 'mismatching-upload-offset' | 'inconsistent-upload-length' | 'completed-upload'
  title: string
  [member: string]: string | number
}

/**
 * The one error of the upload layer: what the client is told (status, short text, headers, the draft's
 * problem where one applies). Handlers of both protocols answer it as it says; anything that is not
 * one is turned into one by `toUploadError`.
 */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly problem?: Problem,
    /** The body exactly as someone else chose it (a hook's), instead of the message and a newline. */
    readonly exactBody?: string,
  ) {
    super(message.trim())
  }

  /** The text body of the answer. */
  get body(): string {
    return this.exactBody ?? `${this.message}\n`
  }

  /** The same refusal with more headers (an offset, a Retry-After). */
  with(headers: Record<string, string>): UploadError {
    return new UploadError(this.status, this.message, { ...this.headers, ...headers }, this.problem, this.exactBody)
  }
}

const error = (status: number, message: string, headers?: Record<string, string>) => new UploadError(status, message, headers)

/** Every refusal of the upload layer, in one place. */
export const ERRORS = {
  notFound: error(404, 'The file for this url was not found'),
  gone: error(410, 'The file for this url no longer exists'),
  offsetRequired: error(400, 'Upload-Offset header required'),
  badOffsetOrLength: error(400, 'Invalid Upload-Offset or Upload-Length'),
  offsetMismatch: error(409, 'Upload-Offset conflict'),
  lengthRequired: error(400, 'Upload-Length or Upload-Defer-Length header required'),
  badLength: error(400, 'Invalid Upload-Length (a whole number of bytes) or Upload-Defer-Length (1)'),
  lengthNotDeclarable: error(400, 'Upload-Length can be set once, on an upload created with Upload-Defer-Length, and not below its offset'),
  badMetadata: error(400, 'Invalid Upload-Metadata: comma-separated "key base64value" pairs with unique keys'),
  badConcat: error(400, 'Invalid Upload-Concat: partial, or final;<url> <url> ...'),
  tooLarge: error(413, 'Maximum size exceeded'),
  bodyTooLarge: error(413, "upload's size exceeded"),
  finalNotWritable: error(403, 'A final upload cannot be patched: upload to its partial uploads'),
  checksumMismatch: error(460, 'Checksum mismatch'),
  locked: error(423, 'The upload is locked by another request; retry shortly'),
  idTaken: error(409, 'An upload with this id exists already'),
  noConcatenation: error(501, 'Concatenation extension is not supported by this store'),
  noDeferLength: error(501, 'creation-defer-length extension is not supported by this store'),
  noTermination: error(501, 'termination extension is not supported by this store'),
  noSpace: error(507, 'Insufficient storage: the store is full; retry later', { 'Retry-After': '60' }),
  unavailable: error(503, 'The store cannot be reached right now; retry shortly', { 'Retry-After': '5' }),
  busy: error(503, 'The server is short of resources; retry shortly', { 'Retry-After': '5' }),
  internal: error(500, 'Internal server error'),
  badIdempotencyKey: error(400, 'Invalid Idempotency-Key: a quoted string (or a token) of 1 to 255 visible characters'),
  idempotencyKeyReused: error(422, 'This Idempotency-Key was used for a different request'),
  idempotencyKeyRunning: error(409, 'A request with this Idempotency-Key is still being processed; retry shortly', { 'Retry-After': '1' }),
  badReprDigest: error(400, 'Invalid Repr-Digest or Want-Repr-Digest: a dictionary like sha-256=:<base64>: (or sha-256=5)'),
  reprDigestMismatch: error(400, "Repr-Digest does not match the upload's content: the upload failed and is removed"),
} as const

type Shaped = { status_code: number; body: string }
const isShaped = (value: unknown): value is Shaped =>
  typeof value === 'object' && value !== null && typeof (value as Shaped).status_code === 'number' && typeof (value as Shaped).body === 'string'

const codeOf = (value: unknown): string | undefined => (typeof value === 'object' && value !== null ? (value as { code?: string }).code : undefined)

/** Codes of the system's and the stores' failures that mean the same thing to a client. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'QuotaExceeded', 'InsufficientStorage'])
const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ServiceUnavailable', 'SlowDown'])
const BUSY = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])

/** What the storage contract (`@tus/utils`' ERRORS) and our stores throw, in the catalogue's terms. */
const FROM_STORE = new Map<unknown, UploadError>([
  [STORE_ERRORS.FILE_NOT_FOUND, ERRORS.notFound],
  [STORE_ERRORS.FILE_NO_LONGER_EXISTS, ERRORS.gone],
  [STORE_ERRORS.ERR_LOCK_TIMEOUT, ERRORS.locked],
  [STORE_ERRORS.ERR_SIZE_EXCEEDED, ERRORS.bodyTooLarge],
  [STORE_ERRORS.ERR_MAX_SIZE_EXCEEDED, ERRORS.tooLarge],
  [STORE_ERRORS.INVALID_METADATA, ERRORS.badMetadata],
])

/** A store error's kind (stores/errors.ts) or a system error's code, as the catalogue's refusal; undefined when neither. */
function byCause(value: unknown): UploadError | undefined {
  for (let cause = value, depth = 0; cause && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const kind = (cause as { kind?: string }).kind
    if (kind === 'exists') return ERRORS.idTaken
    if (kind === 'no-space') return ERRORS.noSpace
    if (kind === 'unavailable') return ERRORS.unavailable
    const code = codeOf(cause) ?? (cause as { name?: string }).name
    if (code && NO_SPACE.has(code)) return ERRORS.noSpace
    if (code && UNAVAILABLE.has(code)) return ERRORS.unavailable
    if (code && BUSY.has(code)) return ERRORS.busy
    const status = (cause as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? (cause as { statusCode?: number }).statusCode
    if (status === 503 || status === 429) return ERRORS.unavailable
  }
  return undefined
}

/**
 * Any failure as the client is told of it: an UploadError as is; the storage contract's errors and
 * shaped `{status_code, body}` values by their status; out of space 507, a back end gone or throttling
 * 503, too many open files 503; anything else 500 (`internal`; `unexpected` says it needs a log line with its cause).
 */
export function toUploadError(value: unknown): { error: UploadError; unexpected: boolean } {
  if (value instanceof UploadError) return { error: value, unexpected: false }
  const known = FROM_STORE.get(value) ?? byCause(value)
  if (known) return { error: known, unexpected: false }
  if (isShaped(value) && value.status_code === 503) return { error: ERRORS.unavailable, unexpected: false }
  if (isShaped(value) && value.status_code < 500) return { error: error(value.status_code, value.body), unexpected: false }
  return { error: ERRORS.internal, unexpected: true }
}
