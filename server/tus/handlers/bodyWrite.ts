import { PassThrough, type Readable } from 'node:stream'
import type { Request } from 'express'
import { type DataStore, ERRORS, type Locker, StreamLimiter, type Upload } from '@tus/utils'
import type { Config } from '../../config.js'
import type { Logger } from '../../logger.js'
import { integerHeader } from '../integerHeader.js'
import { type ReadSlots, readSlotsOf } from '../readSlots.js'

/** How many bytes may still be written to an upload at `offset`: up to its length, else up to MAX_SIZE. */
export function roomFor(config: Config, upload: Upload, offset: number): number {
  if (upload.size !== undefined) return upload.size - offset
  return config.MAX_SIZE > 0 ? config.MAX_SIZE - offset : Number.MAX_SAFE_INTEGER
}

/**
 * The request body as a stream that ends cleanly, rather than failing, when the client goes away or
 * `stop()` is called: a store then keeps every byte that arrived (a file store as is, S3 as a part).
 * It is read in turns with the other bodies (READ_SLOTS), or piped as it comes when that is 0.
 */
function bodyOf(req: Request, slots: ReadSlots | undefined): { body: PassThrough; stop(): void } {
  const body = new PassThrough()
  let detach = (): unknown => req.unpipe(body)
  if (slots) detach = slots.feed(req, body)
  else req.pipe(body)
  const stop = () => {
    detach()
    if (!body.writableEnded) body.end()
  }
  req.once('aborted', stop)
  req.once('error', stop)
  // 'close' before the body ended: the socket went away.
  req.once('close', () => {
    if (!req.complete) stop()
  })
  return { body, stop }
}

/** An upload's lock held by a request that writes its body into the store. */
export interface BodyWrite {
  /** Streams the request body into the store at `offset`, at most `room` bytes; resolves with the new offset. */
  write(store: DataStore, offset: number, room: number): Promise<number>
  /** Ends the body being written where it is (what arrived is kept). */
  stop(): void
  unlock(): Promise<void>
}

/**
 * Takes an upload's lock for a request that will write its body (rejects with the lock's error, or
 * ABORTED when the client goes away while waiting). When another request (a resuming client) asks for
 * the lock, what arrived within LOCK_DRAIN_TIMEOUT is kept and the body is cut there.
 */
export async function lockForBodyWrite(config: Config, locker: Locker, req: Request, id: string, logger: Logger): Promise<BodyWrite> {
  const waiting = new AbortController()
  const onGone = () => waiting.abort(ERRORS.ABORTED)
  req.once('close', onGone)
  let stopBody: (() => void) | undefined
  let released = false
  let releaseTimer: NodeJS.Timeout | undefined
  const lock = locker.newLock(id)
  try {
    await lock.lock(waiting.signal, () => {
      releaseTimer ??= setTimeout(() => {
        released = true
        stopBody?.()
      }, config.LOCK_DRAIN_TIMEOUT)
    })
  } finally {
    req.off('close', onGone)
  }

  return {
    async write(store, offset, room) {
      const contentLength = integerHeader(req.get('content-length'))
      const { body, stop } = bodyOf(req, readSlotsOf(config))
      stopBody = stop
      if (released) stop()
      // With a Content-Length the HTTP parser already stops at it; a chunked body needs a cap.
      const source: Readable = contentLength === undefined ? body.pipe(new StreamLimiter(room)) : body
      if (source !== body) body.once('error', (e) => source.destroy(e))
      let limitError: unknown
      source.once('error', (e) => (limitError = e))
      try {
        return await store.write(source, id, offset)
      } catch (error) {
        throw limitError ?? error
      }
    },
    stop() {
      stopBody?.()
    },
    async unlock() {
      clearTimeout(releaseTimer)
      await lock.unlock().catch((error) => logger.warn('unlock failed', { uploadId: id, error }))
    },
  }
}
