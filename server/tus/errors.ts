import { ERRORS } from '@tus/utils'
import { isResourcePressure } from '../limits/resourcePressure.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'

export type TusError = { status_code: number; body: string }

function isTusError(error: unknown): error is TusError {
  return typeof error === 'object' && error !== null && 'status_code' in error && 'body' in error
}

const INTERNAL = { status_code: 500, body: 'Internal server error\n' }
const LOCK_TIMEOUT = { status_code: 423, body: 'The upload is locked by another request; retry shortly\n' }
export const RESOURCE_PRESSURE = { status_code: 503, body: 'The server is short of resources; retry shortly\n' }

/**
 * The response for an error of the tus layer: a lock timeout becomes 423 (a client retries it)
 * rather than 500, anything that is not a tus error becomes a bare 500, and every server-side
 * failure is logged with its request and upload ids.
 */
export function toTusError(error: unknown, logger: Logger): TusError {
  const context = requestContext.current()
  const ids = { requestId: context?.requestId, uploadId: context?.uploadId }
  if (error === ERRORS.ERR_LOCK_TIMEOUT) {
    logger.warn('lock timeout', ids)
    return LOCK_TIMEOUT
  }
  if (isResourcePressure(error)) {
    logger.warn('short of resources', { ...ids, error })
    return RESOURCE_PRESSURE
  }
  if (isTusError(error)) {
    if (error.status_code >= 500) logger.error('upload failed', { ...ids, status: error.status_code, reason: error.body.trim() })
    return error
  }
  // Not a tus error: log the cause, tell the client no internals.
  logger.error('upload failed', { ...ids, error })
  return INTERNAL
}

/** `@tus/server`'s onResponseError. */
export const mapTusError = (logger: Logger) => (_req: unknown, error: unknown) => toTusError(error, logger)
