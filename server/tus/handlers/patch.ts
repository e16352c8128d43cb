import type { EventEmitter } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import type { Request, Response } from 'express'
import { EVENTS, type Server } from '@tus/server'
import { type DataStore, ERRORS, type Locker, StreamLimiter, TUS_RESUMABLE, type Upload } from '@tus/utils'
import { expiresAt, isExpired } from '../../../stores/expiry.js'
import type { Config } from '../../config.js'
import { corsHeaders } from '../../cors.js'
import type { HookRejection, Hooks, ResponseChanges } from '../../hooks/index.js'
import type { Logger } from '../../logger.js'
import { FINAL_UPLOAD_PATCH, isFinalUpload } from '../concat.js'
import { toTusError } from '../errors.js'
import { uploadIdOf } from '../uploadUrl.js'

/** A whole non-negative integer header, or undefined when absent; NaN when malformed. */
function integerHeader(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  return /^(0|[1-9]\d{0,15})$/.test(value) && Number.isSafeInteger(Number(value)) ? Number(value) : Number.NaN
}

/**
 * The request body as a stream that ends cleanly, rather than failing, when the client goes away or
 * `stop()` is called: a store then keeps every byte that arrived (a file store as is, S3 as a part).
 */
function bodyOf(req: Request): { body: PassThrough; stop(): void } {
  const body = new PassThrough()
  const stop = () => {
    req.unpipe(body)
    if (!body.writableEnded) body.end()
  }
  req.pipe(body)
  req.once('aborted', stop)
  req.once('error', stop)
  // 'close' before the body ended: the socket went away.
  req.once('close', () => {
    if (!req.complete) stop()
  })
  return { body, stop }
}

/**
 * PATCH of an upload, ours rather than `@tus/server`'s: it streams the Node request into the store
 * directly (upstream bridges Node to web streams and back, which costs CPU and garbage on every chunk),
 * and a 409 carries the current Upload-Offset. Locking, the release of a stale request's lock within
 * LOCK_DRAIN_TIMEOUT, expiry, lengths and limits follow tus 1.0.0 and upstream's behaviour.
 */
export function patchHandler(
  config: Config,
  server: Server,
  store: DataStore,
  locker: Locker,
  logger: Logger,
  hooks?: Hooks,
): (req: Request, res: Response) => Promise<void> {
  const fail = (req: Request, res: Response, error: unknown, headers: Record<string, string> = {}) => {
    if (res.headersSent || res.destroyed) return
    const { status_code, body } = toTusError(error, logger)
    res.status(status_code).set({ ...headers, Connection: req.complete ? 'keep-alive' : 'close' }).type('text/plain').send(body)
  }

  return async (req, res) => {
    res.set({ ...corsHeaders(config, req.headers.origin), 'Tus-Resumable': TUS_RESUMABLE })
    const id = uploadIdOf({ url: req.originalUrl }) as string // the protocol guard let only our ids through
    const offset = integerHeader(req.get('upload-offset'))
    const declaredLength = integerHeader(req.get('upload-length'))
    const contentLength = integerHeader(req.get('content-length'))
    if (offset === undefined) return fail(req, res, ERRORS.MISSING_OFFSET)
    if (Number.isNaN(offset) || Number.isNaN(declaredLength)) return fail(req, res, { status_code: 400, body: 'Invalid Upload-Offset or Upload-Length\n' })

    // Aborted when the client goes away while we wait for the lock.
    const waiting = new AbortController()
    const onGone = () => waiting.abort(ERRORS.ABORTED)
    req.once('close', onGone)
    let stopBody: (() => void) | undefined
    let released = false
    let releaseTimer: NodeJS.Timeout | undefined
    const lock = locker.newLock(id)
    try {
      await lock.lock(waiting.signal, () => {
        // Another request (a resuming client) wants this upload: finish what arrived, then let go.
        releaseTimer ??= setTimeout(() => {
          released = true
          stopBody?.()
        }, config.LOCK_DRAIN_TIMEOUT)
      })
    } catch (error) {
      req.off('close', onGone)
      return fail(req, res, error)
    }
    req.off('close', onGone)

    let upload: Upload
    let wasFinished = false
    // A post-receive hook's StopUpload: the body is cut, the upload removed, the hook's answer sent.
    let stopped: HookRejection | undefined
    try {
      upload = await store.getUpload(id)
      wasFinished = upload.offset === upload.size
      const expiration = store.getExpiration()
      if (isExpired(upload, expiration)) throw ERRORS.FILE_NO_LONGER_EXISTS
      if (isFinalUpload(upload)) throw FINAL_UPLOAD_PATCH
      if (upload.offset !== offset) {
        return fail(req, res, ERRORS.INVALID_OFFSET, { 'Upload-Offset': String(upload.offset) })
      }
      if (declaredLength !== undefined) {
        if (!upload.sizeIsDeferred || declaredLength < upload.offset) throw ERRORS.INVALID_LENGTH
        if (config.MAX_SIZE > 0 && declaredLength > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
        await store.declareUploadLength(id, declaredLength)
        upload.size = declaredLength
      }
      const room = upload.size !== undefined ? upload.size - offset : config.MAX_SIZE > 0 ? config.MAX_SIZE - offset : Number.MAX_SAFE_INTEGER
      if (contentLength !== undefined && contentLength > room) throw ERRORS.ERR_SIZE_EXCEEDED

      const { body, stop } = bodyOf(req)
      stopBody = stop
      if (released) stop()
      // With a Content-Length the HTTP parser already stops at it; a chunked body needs a cap.
      const source: Readable = contentLength === undefined ? body.pipe(new StreamLimiter(room)) : body
      if (source !== body) body.once('error', (e) => source.destroy(e))
      let limitError: unknown
      source.once('error', (e) => (limitError = e))
      const received = hooks?.receiving(req, upload, (rejection) => {
        stopped = rejection
        stop()
      })
      try {
        upload.offset = await store.write(source, id, offset)
      } catch (error) {
        throw limitError ?? error
      } finally {
        received?.()
      }
      if (stopped) {
        // As tusd: a stopped upload is terminated, so it cannot be resumed.
        await store.remove(id)
        await hooks?.terminated(req, upload)
        return fail(req, res, stopped, stopped.headers)
      }
    } catch (error) {
      return fail(req, res, error)
    } finally {
      clearTimeout(releaseTimer)
      await lock.unlock().catch((error) => logger.warn('unlock failed', { uploadId: id, error }))
    }

    // Only the request that delivers the last byte finishes an upload (a repeated empty PATCH does not).
    const finished = !wasFinished && upload.offset === upload.size
    let changes: ResponseChanges
    try {
      if (finished) changes = await hooks?.finishing(req, upload)
    } catch (error) {
      // pre-finish failed: the client gets 500, as in tusd, yet the upload is finished all the same.
      fail(req, res, error)
      return void (server as EventEmitter).emit(EVENTS.POST_FINISH, req, res, upload)
    }
    const expires = expiresAt(upload, store.getExpiration())
    res.status(changes?.StatusCode || 204).set('Upload-Offset', String(upload.offset))
    if (expires) res.set('Upload-Expires', expires.toUTCString())
    if (changes?.Header) res.set(changes.Header)
    // A body we stopped reading (a released lock) leaves the connection unusable.
    if (!req.complete) res.set('Connection', 'close')
    res.end(changes?.Body || undefined)
    // @tus/server's typings take a listener here; at run time emit passes the arguments on.
    if (finished) (server as EventEmitter).emit(EVENTS.POST_FINISH, req, res, upload)
  }
}
