import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { ChecksumExpectation } from './tus/checksum/uploadChecksum.js'

/** What one request carries through every layer below it, for its log line and its errors. */
export interface RequestContext {
  requestId: string
  uploadId?: string
  /** Body bytes a store accepted during this request. */
  bytes: number
  /** Store writes in progress for this request: its log line waits for them. */
  writes?: Set<Promise<unknown>>
  /** Who made the request (a verified token's `sub`), when authentication is on. */
  principal?: string
  /** What the body must hash to, when the request sends Upload-Checksum (the checksum extension). */
  checksum?: ChecksumExpectation
}

const storage = new AsyncLocalStorage<RequestContext>()

export const requestContext = {
  run: <T>(context: RequestContext, fn: () => T): T => storage.run(context, fn),
  current: (): RequestContext | undefined => storage.getStore(),
}

// A client's own id is kept when it is short and plain, so it can be traced across services.
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && CLIENT_REQUEST_ID.test(header) ? header : randomUUID()
}
