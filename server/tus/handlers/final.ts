import type { Request, Response } from 'express'
import { ERRORS, type Lock, type Locker, Upload } from '@tus/utils'
import { isExpired } from '../../../stores/expiry.js'
import type { StoreBackend } from '../../../stores/types.js'
import { newUploadId } from '../../../stores/uploadId.js'
import { grantOf } from '../../auth/access.js'
import { ownerOf } from '../../auth/owner.js'
import type { Config } from '../../config.js'
import type { ResponseChanges } from '../../hooks/index.js'
import type { Logger } from '../../logger.js'
import { requestContext } from '../../requestContext.js'
import { enableConcatenation, isPartialUpload, partialsNamed } from '../concat.js'
import type { TusEndpoint } from '../createTusServer.js'
import type { TusError } from '../errors.js'
import { metadataOf } from '../metadataHeader.js'
import { hasBody, replyError, setTusHeaders } from '../reply.js'
import { uploadUrl } from '../uploadUrl.js'

const refuse = (body: string, status_code = 400): TusError => ({ status_code, body: `${body}\n` })

/**
 * Locks every upload of `ids` (in sorted order, so two requests never wait on each other), or none:
 * the locks taken so far are released when one cannot be had.
 */
async function lockAll(locker: Locker, ids: string[], signal: AbortSignal): Promise<Lock[]> {
  const locks: Lock[] = []
  try {
    for (const id of [...new Set(ids)].sort()) {
      const lock = locker.newLock(id)
      // A request that wants one of these uploads waits: the assembly finishes first.
      await lock.lock(signal, () => {})
      locks.push(lock)
    }
  } catch (error) {
    await unlockAll(locks)
    throw error
  }
  return locks
}

const unlockAll = (locks: Lock[]) => Promise.allSettled(locks.map((lock) => lock.unlock()))

/**
 * tus concatenation: the creation of a final upload (`POST` with `Upload-Concat: final;<url> <url> ...`),
 * which `@tus/server` does not support. Its partial uploads must be finished partial uploads of the
 * request's principal; an unknown, foreign, unfinished or plain upload is refused with 400 and nothing
 * is stored. The final upload is created as every upload is (the creation lifecycle: owner, Upload-Concat
 * and hooks recorded alike), with the partials' total as its length, and assembled by the store while it and its partials are locked. With
 * CONCAT_REMOVE_PARTIALS the partials are removed afterwards. Undefined for a store that cannot assemble.
 */
export function finalUploadHandler(
  config: Config,
  tus: TusEndpoint,
  store: StoreBackend,
  logger: Logger,
): ((req: Request, res: Response) => Promise<void>) | undefined {
  if (!enableConcatenation(store)) return undefined
  const { lifecycle, locker } = tus
  const concatenate = store.concatenate as NonNullable<StoreBackend['concatenate']>
  const { datastore } = store

  /** The partial upload `id` if the request may use it in a final upload; a refusal otherwise. */
  const partial = async (id: string, url: string, principal: string | undefined): Promise<Upload> => {
    // Unknown, expired and another principal's answer alike.
    const unknown = refuse(`Partial upload not found: ${url}`)
    const upload = await datastore.getUpload(id).catch((error) => {
      throw (error as TusError).status_code === 404 ? unknown : error
    })
    if (isExpired(upload, datastore.getExpiration())) throw unknown
    if (config.AUTH_MODE === 'jwt' && ownerOf(upload) !== principal) throw unknown
    if (!isPartialUpload(upload)) throw refuse(`Not a partial upload (created without Upload-Concat: partial): ${url}`)
    if (upload.size === undefined || upload.offset !== upload.size) throw refuse(`Partial upload not finished: ${url}`)
    return upload
  }

  type Created = { url: string; finished: ResponseChanges }

  /** Creates and assembles the final upload. Partial and final locks are held throughout. */
  const create = async (req: Request, res: Response, signal: AbortSignal): Promise<Created> => {
    if (hasBody(req)) throw refuse('A final upload takes no body: its bytes come from its partial uploads')
    if (req.get('upload-length') !== undefined || req.get('upload-defer-length') !== undefined) {
      throw refuse('A final upload takes no Upload-Length: its length is the sum of its partial uploads')
    }
    const metadata = metadataOf(req)
    const named = partialsNamed(req.get('upload-concat') as string, config.TUS_PATH)
    if ('error' in named) throw refuse(named.error)

    const context = requestContext.current()
    const partialLocks = await lockAll(locker, named.partials.map(({ id }) => id), signal)
    try {
      const uploads = new Map<string, Upload>()
      for (const { id, url } of named.partials) {
        if (!uploads.has(id)) uploads.set(id, await partial(id, url, context?.principal))
      }
      const partials = named.partials.map(({ id }) => uploads.get(id) as Upload)
      const size = partials.reduce((sum, { size }) => sum + (size ?? 0), 0)
      if (config.MAX_SIZE > 0 && size > config.MAX_SIZE) throw ERRORS.ERR_MAX_SIZE_EXCEEDED
      const maxSize = grantOf(req)?.maxSize
      if (maxSize !== undefined && size > maxSize) throw refuse(`This token allows uploads of at most ${maxSize} bytes`, 413)

      const upload = new Upload({ id: newUploadId(), size, offset: 0, metadata })
      if (context) context.uploadId = upload.id
      await lifecycle.prepare(req, res, upload) // pre-create may refuse, or change the id
      const { id } = upload

      const finalLock = await lockAll(locker, [id], signal)
      try {
        await datastore.create(upload)
        const url = uploadUrl(config, req, id)
        lifecycle.created(req, upload)
        try {
          await concatenate(id, partials)
        } catch (error) {
          // Nothing half-assembled is left behind.
          await datastore.remove(id).catch((e) => logger.warn('cannot remove a failed final upload', { requestId: context?.requestId, uploadId: id, error: e }))
          throw error
        }
        upload.offset = size
        if (config.CONCAT_REMOVE_PARTIALS) await removePartials([...uploads.keys()], context?.requestId)
        // As a creation that carries the whole upload: pre-finish may change the answer.
        const finished = await lifecycle.finishing(req, upload)
        lifecycle.finished(upload)
        return { url, finished }
      } finally {
        await unlockAll(finalLock)
      }
    } finally {
      await unlockAll(partialLocks)
    }
  }

  const removePartials = async (ids: string[], requestId: string | undefined) => {
    for (const id of ids) {
      try {
        await datastore.remove(id)
        logger.info('partial upload removed', { requestId, uploadId: id })
      } catch (error) {
        logger.warn('cannot remove a partial upload', { requestId, uploadId: id, error })
      }
    }
  }

  return async (req, res) => {
    setTusHeaders(config, req, res)
    // Aborted when the client goes away while we wait for a lock.
    const waiting = new AbortController()
    const onGone = () => waiting.abort(ERRORS.ABORTED)
    res.once('close', onGone)
    try {
      const { url, finished } = await create(req, res, waiting.signal)
      const status = finished?.StatusCode || 201
      res.status(status).set(finished?.Header ?? {})
      if (status === 201 || (status >= 300 && status < 400)) res.set('Location', url)
      if (finished?.Body) res.type('text/plain').send(finished.Body)
      else res.end()
    } catch (error) {
      replyError(logger, req, res, error)
    } finally {
      res.off('close', onGone)
    }
  }
}
