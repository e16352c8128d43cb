import type { ServerResponse } from 'node:http'
import { toUploadError, type UploadError } from '../core/errors.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'

/** The innermost cause's code and message (`ENOSPC: no space left on device, write`), for a log line without a stack. */
function causeOf(failure: unknown): string {
  let inner = failure
  for (let depth = 0; depth < 4 && (inner as { cause?: unknown })?.cause; depth++) inner = (inner as { cause: unknown }).cause
  if (typeof inner !== 'object' || inner === null) return String(inner)
  const { code, name, message } = inner as { code?: unknown; name?: unknown; message?: unknown }
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : undefined
  const text = typeof message === 'string' && message ? message : (inner as { body?: unknown }).body
  return [label, typeof text === 'string' ? text.trim() : undefined].filter(Boolean).join(': ')
}

/**
 * The answer to a failed request, as the catalogue says, reported once: a fault of ours (a full store, a
 * back end gone, resource pressure) is recorded for the metrics and logged as a warning with the upload id
 * and its cause, without a stack; anything unforeseen is logged as an error with its stack. A client that
 * has gone is told nothing, and its request counts no fault (its body broke off, not our store).
 */
export function failureAnswer(logger: Logger, res: ServerResponse, failure: unknown): UploadError {
  const { error, unexpected } = toUploadError(failure)
  const record = requestContext.current()
  if (record?.fault) return error
  const ids = { requestId: record?.requestId, uploadId: record?.uploadId }
  if (unexpected) logger.error('upload failed', { ...ids, status: error.status, error: failure })
  // An `internal` refusal made elsewhere was logged where it was made.
  else if (error.fault && error.fault !== 'internal' && !res.destroyed)
    logger.warn('upload failed', { ...ids, status: error.status, fault: error.fault, cause: causeOf(failure) })
  if (record && error.fault && (unexpected || !res.destroyed)) record.fault = error.fault
  return error
}
