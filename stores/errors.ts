/**
 * Why a store refused, in words the host can answer with:
 * - 'exists': an upload with that id is already stored (creation is create-if-absent);
 * - 'place-taken': the place a hook chose for a new upload's bytes holds something already;
 * - 'no-space': the disk or the account is full (ENOSPC, EDQUOT, a quota);
 * - 'unavailable': the back end cannot be reached, fails (5xx) or throttles; a retry may succeed.
 */
export type StoreErrorKind = 'exists' | 'place-taken' | 'no-space' | 'unavailable'

/** A store-level failure of one kind; `cause` is what the back end said. */
export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'StoreError'
  }
}

export function isStoreError(error: unknown, kind?: StoreErrorKind): error is StoreError {
  return error instanceof StoreError && (kind === undefined || error.kind === kind)
}

const NO_SPACE = new Set(['ENOSPC', 'EDQUOT'])
// Out of descriptors: the machine, not the upload, is the trouble, and a retry may succeed.
const OUT_OF_DESCRIPTORS = new Set(['EMFILE', 'ENFILE'])
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'])

const UNREACHABLE_IN_MESSAGE = new RegExp(`\\b(${[...UNREACHABLE].join('|')})\\b`)

const codeOf = (error: unknown) => (error as { code?: unknown } | null)?.code

/** The kind of a file system error (by its `code`), if it has one. */
export function fileErrorKind(error: unknown): StoreErrorKind | undefined {
  const code = codeOf(error)
  if (typeof code !== 'string') return undefined
  if (NO_SPACE.has(code)) return 'no-space'
  if (OUT_OF_DESCRIPTORS.has(code)) return 'unavailable'
  return undefined
}

/** 'unavailable' for an error of a connection to a back end (refused, reset, timed out, no route, no name). */
export function connectionErrorKind(error: unknown): StoreErrorKind | undefined {
  const code = codeOf(error)
  if (typeof code === 'string' && UNREACHABLE.has(code)) return 'unavailable'
  if ((error as Error | null)?.name === 'TimeoutError') return 'unavailable'
  // An SDK may hand the socket's error on as a message only (the AWS SDK's "error wrapper").
  const message = (error as Error | null)?.message
  if (typeof message === 'string' && UNREACHABLE_IN_MESSAGE.test(message)) return 'unavailable'
  return undefined
}

/**
 * `error` as a StoreError when `kindOf` names a kind for it (a StoreError stays as it is), else
 * `error` unchanged, so tus errors (404, 409, ...) pass through.
 */
export function asStoreError(error: unknown, kindOf: (error: unknown) => StoreErrorKind | undefined): unknown {
  if (error instanceof StoreError) return error
  const kind = kindOf(error)
  return kind ? new StoreError(kind, (error as Error)?.message ?? String(error), { cause: error }) : error
}
