import { ERRORS as STORE_ERRORS } from '@tus/utils'

/** An RFC 9457 problem type of the IETF draft, for answers that have one. */
export interface Problem {
  type: 'mismatching-upload-offset' | 'inconsistent-upload-length' | 'completed-upload'
  title: string
  [member: string]: string | number
}

/**
 * What failed on the service's side, when an answer is not the client's doing: the store is full, a back
 * end cannot be reached or throttles, the process is short of resources, or something unforeseen. Counted
 * in metrics and logged by it.
 */
export type Fault = 'no-space' | 'unavailable' | 'busy' | 'internal'

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

  /** Set on the catalogue's answers to a fault of ours (never on a refusal of the client's request). */
  fault?: Fault

  /** The text body of the answer. */
  get body(): string {
    return this.exactBody ?? `${this.message}\n`
  }

  /** The same refusal with more headers (an offset, a Retry-After). */
  with(headers: Record<string, string>): UploadError {
    const copy = new UploadError(this.status, this.message, { ...this.headers, ...headers }, this.problem, this.exactBody)
    copy.fault = this.fault
    return copy
  }
}

const error = (status: number, message: string, headers?: Record<string, string>) => new UploadError(status, message, headers)
const faultError = (fault: Fault, status: number, message: string, headers?: Record<string, string>) =>
  Object.assign(new UploadError(status, message, headers), { fault })

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
  placeTaken: error(409, 'The storage place chosen for this upload holds something already'),
  noConcatenation: error(501, 'Concatenation extension is not supported by this store'),
  noDeferLength: error(501, 'creation-defer-length extension is not supported by this store'),
  noTermination: error(501, 'termination extension is not supported by this store'),
  noSpace: faultError('no-space', 507, 'Insufficient storage: the store is full; retry later', { 'Retry-After': '60' }),
  unavailable: faultError('unavailable', 503, 'The store cannot be reached right now; retry shortly', { 'Retry-After': '5' }),
  busy: faultError('busy', 503, 'The server is short of resources; retry shortly', { 'Retry-After': '5' }),
  internal: faultError('internal', 500, 'Internal server error'),
  badIdempotencyKey: error(400, 'Invalid Idempotency-Key: a quoted string (or a token) of 1 to 255 visible characters'),
  idempotencyKeyReused: error(422, 'This Idempotency-Key was used for a different request'),
  idempotencyKeyRunning: error(409, 'A request with this Idempotency-Key is still being processed; retry shortly', { 'Retry-After': '1' }),
  badReprDigest: error(400, 'Invalid Repr-Digest or Want-Repr-Digest: a dictionary like sha-256=:<base64>: (or sha-256=5)'),
  reprDigestMismatch: error(400, "Repr-Digest does not match the upload's content: the upload failed and is removed"),
} as const

type Shaped = { status_code: number; body: string }
const isShaped = (value: unknown): value is Shaped =>
  typeof value === 'object' && value !== null && typeof (value as Shaped).status_code === 'number' && typeof (value as Shaped).body === 'string'

/** Codes and names of the system's and the stores' failures that mean the same thing to a client. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT', 'QuotaExceeded', 'InsufficientStorage'])
const UNAVAILABLE = new Set([
  // the system's, Node's and undici's, for a peer that is gone, refuses or does not answer
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  // the AWS SDK's (a socket timeout, S3's throttling and outage) and Azure's (a request that could not be sent, throttling)
  'TimeoutError',
  'ServiceUnavailable',
  'SlowDown',
  'REQUEST_SEND_ERROR',
  'ServerBusy',
])
const BUSY = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])
/** ioredis' failures of a server it cannot reach, plain Errors without a code. */
const REDIS_GONE = /^(Stream isn't writeable|Connection is closed|Command timed out)/

/** An HTTP status a back end answered: the AWS SDK's `$metadata`, Azure's `statusCode`, GCS' numeric `code`. */
function backendStatus(value: object): number | undefined {
  const { $metadata, statusCode, code } = value as { $metadata?: { httpStatusCode?: number }; statusCode?: unknown; code?: unknown }
  const status = $metadata?.httpStatusCode ?? statusCode ?? code
  return typeof status === 'number' ? status : undefined
}

/** What the storage contract (`@tus/utils`' ERRORS) and our stores throw, in the catalogue's terms. */
const FROM_STORE = new Map<unknown, UploadError>([
  [STORE_ERRORS.FILE_NOT_FOUND, ERRORS.notFound],
  [STORE_ERRORS.FILE_NO_LONGER_EXISTS, ERRORS.gone],
  [STORE_ERRORS.ERR_LOCK_TIMEOUT, ERRORS.locked],
  [STORE_ERRORS.ERR_SIZE_EXCEEDED, ERRORS.bodyTooLarge],
  [STORE_ERRORS.ERR_MAX_SIZE_EXCEEDED, ERRORS.tooLarge],
  [STORE_ERRORS.INVALID_METADATA, ERRORS.badMetadata],
])

/**
 * A store error's kind (stores/errors.ts), a system error's code, or a back end's error name or status, as
 * the catalogue's refusal, looking through wrappers (`cause`); undefined when none says.
 */
function byCause(value: unknown): UploadError | undefined {
  for (let cause = value, depth = 0; typeof cause === 'object' && cause !== null && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    const { kind, code, name, message } = cause as { kind?: unknown; code?: unknown; name?: unknown; message?: unknown }
    if (kind === 'exists') return ERRORS.idTaken
    if (kind === 'place-taken') return ERRORS.placeTaken
    // A hook may pass a client's file name on as the place: a bad one is the request's fault, said plainly.
    if (name === 'PlacementError' && typeof message === 'string') return error(400, message)
    if (kind === 'no-space') return ERRORS.noSpace
    if (kind === 'unavailable') return ERRORS.unavailable
    for (const label of [code, name]) {
      if (typeof label !== 'string') continue
      if (NO_SPACE.has(label)) return ERRORS.noSpace
      if (UNAVAILABLE.has(label)) return ERRORS.unavailable
      if (BUSY.has(label)) return ERRORS.busy
    }
    if (name === 'MaxRetriesPerRequestError' || (typeof message === 'string' && REDIS_GONE.test(message))) return ERRORS.unavailable
    // A back end's 5xx or 429 is its outage or throttling (AWS and Azure ask to retry their 500s too).
    const status = backendStatus(cause)
    if (status !== undefined && (status === 429 || (status >= 500 && status < 600))) return ERRORS.unavailable
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
