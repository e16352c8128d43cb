import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { RequestRecord } from './core/types.js'

/** What one request records of itself for its log line, reachable from every layer below it. */
export type RequestContext = RequestRecord

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
