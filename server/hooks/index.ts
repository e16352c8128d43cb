import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Upload } from '@tus/utils'
import { REQUESTED } from '../../stores/placement.js'
import { isUploadId } from '../../stores/uploadId.js'
import { type Config, hooksConfigured } from '../config.js'
import { UploadError } from '../core/errors.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { requestContext } from '../requestContext.js'
import { TtlCache } from '../ttlCache.js'
import { DurableDelivery } from './delivery.js'
import { fileHook } from './file.js'
import { httpHook } from './http.js'
import { createOutbox } from './outbox/index.js'
import type { DurableHookType, Outbox } from './outbox/types.js'
import { hookRequest, hookUpload } from './payload.js'
import { HookCallError, type HookTransport } from './transport.js'
import type { AccessMode, HookHTTPResponse, HookRequest, HookResponse, HookType } from './types.js'

/**
 * A hook's refusal (RejectUpload, RejectTermination, RejectAccess, StopUpload), answered as tusd does: its
 * error's status (`status`) and text unless the hook's HTTPResponse gives its own, plus the hook's headers.
 */
export function hookRejection(code: string, message: string, response: HookHTTPResponse | null | undefined, status = 400): UploadError {
  const text = `${code}: ${message}`
  return new UploadError(response?.StatusCode || status, text, response?.Header ?? {}, undefined, response?.Body || `${text}\n`)
}

/** How many pre-access answers are remembered at most (HOOKS_ACCESS_CACHE). */
const ACCESS_CACHE_ENTRIES = 10_000

/** The response changes a hook asks for (pre-finish: status, body and headers). */
export type ResponseChanges = HookHTTPResponse | undefined

/** How much of a body has passed to the store, for post-receive. */
export interface BodyProgress {
  passed: number
}

/**
 * tusd v2's hooks, over HTTP (HOOKS_URL) or as executables (HOOKS_DIR). Pre-hooks (pre-create,
 * pre-finish, pre-terminate) are awaited and may refuse or change what happens; post-create and
 * post-receive are sent without waiting; post-finish and post-terminate go through the outbox, so they
 * survive a receiver outage and a restart.
 */
export class Hooks {
  private readonly enabledTypes: Set<HookType>
  /** pre-access answers (true: allowed; else the refusal) by upload, mode and caller. */
  private readonly accessAnswers: TtlCache<true | UploadError> | undefined

  private constructor(
    private readonly config: Config,
    private readonly hook: HookTransport,
    private readonly outbox: Outbox | undefined,
    private readonly delivery: DurableDelivery | undefined,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.enabledTypes = new Set(config.HOOKS_ENABLED)
    if (config.HOOKS_ACCESS_CACHE > 0) this.accessAnswers = new TtlCache(config.HOOKS_ACCESS_CACHE, ACCESS_CACHE_ENTRIES)
  }

  /** The hooks the config asks for, or undefined without HOOKS_URL or HOOKS_DIR. Starts delivering what an earlier run left queued. */
  static async create(config: Config, logger: Logger, metrics: Metrics): Promise<Hooks | undefined> {
    if (!hooksConfigured(config)) return undefined
    const hook = config.HOOKS_DIR === undefined ? httpHook(config) : fileHook({ config, logger })
    const durable = config.HOOKS_ENABLED.some((type) => type === 'post-finish' || type === 'post-terminate')
    const outbox = durable ? await createOutbox(config, logger) : undefined
    const delivery = outbox ? new DurableDelivery(outbox, hook, config, logger, metrics) : undefined
    if (outbox) metrics.hookOutboxPending(() => outbox.pending())
    delivery?.start()
    return new Hooks(config, hook, outbox, delivery, logger, metrics)
  }

  enabled(type: HookType): boolean {
    return this.enabledTypes.has(type)
  }

  /** A blocking hook: its response, or a HookCallError (the request then fails with 500, as in tusd). */
  private async invoke(request: HookRequest): Promise<HookResponse> {
    try {
      const response = await this.hook.call(request, { retry: true })
      this.metrics.hookInvocations.inc({ type: request.Type, outcome: 'ok' })
      return response
    } catch (error) {
      this.metrics.hookInvocations.inc({ type: request.Type, outcome: 'error' })
      throw new HookCallError(`${request.Type} hook failed: ${(error as Error).message}`, false)
    }
  }

  /** A hook the client does not wait for; a failure is logged and counted. */
  private fire(request: HookRequest, then?: (response: HookResponse) => void): void {
    const ids = { requestId: requestContext.current()?.requestId, uploadId: request.Event.Upload.ID }
    this.hook.call(request, { retry: true }).then(
      (response) => {
        this.metrics.hookInvocations.inc({ type: request.Type, outcome: 'ok' })
        then?.(response)
      },
      (error: Error) => {
        this.metrics.hookInvocations.inc({ type: request.Type, outcome: 'error' })
        this.logger.warn('hook failed', { ...ids, type: request.Type, error: error.message })
      },
    )
  }

  /** Into the outbox; resolves once it is on disk. Not being able to queue it is logged as an error and counted as a dead letter. */
  private async enqueue(type: DurableHookType, request: HookRequest): Promise<void> {
    if (!this.outbox || !this.enabled(type)) return
    try {
      await this.outbox.add(type, request)
      this.delivery?.wake()
    } catch (error) {
      this.metrics.hookDeadLetters.inc({ type })
      this.logger.error('hook lost: the outbox cannot store it', {
        requestId: requestContext.current()?.requestId,
        uploadId: request.Event.Upload.ID,
        type,
        error,
      })
    }
  }

  /**
   * pre-create, before the store creates the upload: a rejection is thrown (nothing is stored);
   * ChangeFileInfo's ID and MetaData replace the upload's, and its Storage's `placement` field (the file
   * store's Path, S3's Key) becomes the place the store is asked to put the bytes (stores/placement.ts).
   * Resolves with the hook's headers for the 201. A taken ID or place fails the creation later, when the
   * store refuses it; an answer the store cannot follow fails as a failing hook does.
   */
  async preCreate(req: IncomingMessage, upload: Upload, placement?: 'Path' | 'Key'): Promise<Record<string, string>> {
    if (!this.enabled('pre-create')) return {}
    const response = await this.invoke(hookRequest('pre-create', hookUpload(upload, false), req))
    if (response.RejectUpload) throw hookRejection('ERR_UPLOAD_REJECTED', 'upload creation has been rejected by server', response.HTTPResponse)
    const changes = response.ChangeFileInfo
    if (changes?.ID) {
      if (!isUploadId(changes.ID)) {
        throw new HookCallError(`pre-create hook failed: ChangeFileInfo.ID '${changes.ID.slice(0, 200)}' is not 16 to 128 of A-Z a-z 0-9 _ -`, false)
      }
      upload.id = changes.ID
    }
    if (changes?.MetaData) upload.metadata = { ...changes.MetaData }
    if (changes?.Storage && Object.keys(changes.Storage).length > 0) upload.storage = { type: REQUESTED, path: placeOf(changes.Storage, placement) }
    return response.HTTPResponse?.Header ?? {}
  }

  postCreate(req: IncomingMessage, upload: Upload): void {
    if (this.enabled('post-create')) this.fire(hookRequest('post-create', hookUpload(upload), req))
  }

  /**
   * post-receive while a body streams into the store: every HOOKS_POST_RECEIVE_INTERVAL when the offset
   * moved, and once at the end, with the bytes that passed to the store (never more than fit). A response
   * with StopUpload calls `stop` while the body is still streaming. Returns the function to call when the
   * write is over.
   */
  receiving(req: IncomingMessage, upload: Upload, body: BodyProgress, stop: (rejection: UploadError) => void): () => void {
    if (!this.enabled('post-receive')) return () => {}
    const start = upload.offset
    let reported = start
    let streaming = true
    const report = () => {
      const offset = start + body.passed
      if (offset === reported) return
      reported = offset
      this.fire(hookRequest('post-receive', { ...hookUpload(upload), Offset: offset }, req), (response) => {
        if (response.StopUpload && streaming) {
          this.logger.info('upload stopped by hook', { requestId: requestContext.current()?.requestId, uploadId: upload.id })
          stop(hookRejection('ERR_UPLOAD_STOPPED', 'upload has been stopped by server', response.HTTPResponse))
        }
      })
    }
    const timer = setInterval(report, this.config.HOOKS_POST_RECEIVE_INTERVAL)
    return () => {
      streaming = false
      clearInterval(timer)
      report()
    }
  }

  /**
   * An upload has just received its last byte: pre-finish (its HTTPResponse changes the response to the
   * client; a failure answers 500, as in tusd), then post-finish into the outbox before the client hears of
   * it. post-finish is queued even when pre-finish failed: the upload is complete either way, and a
   * client that retries sees it complete and never causes another.
   */
  async finishing(req: IncomingMessage, upload: Upload): Promise<ResponseChanges> {
    let changes: ResponseChanges
    let failure: unknown
    if (this.enabled('pre-finish')) {
      try {
        changes = (await this.invoke(hookRequest('pre-finish', hookUpload(upload), req))).HTTPResponse ?? undefined
      } catch (error) {
        failure = error
      }
    }
    await this.enqueue('post-finish', hookRequest('post-finish', hookUpload(upload), req))
    if (failure) throw failure
    return changes
  }

  /** pre-terminate, before a DELETE removes the upload: RejectTermination is thrown; resolves with the hook's headers for the 204. */
  async preTerminate(req: IncomingMessage, upload: Upload): Promise<Record<string, string>> {
    if (!this.enabled('pre-terminate')) return {}
    const response = await this.invoke(hookRequest('pre-terminate', hookUpload(upload), req))
    if (response.RejectTermination) {
      throw hookRejection('ERR_UPLOAD_TERMINATION_REJECTED', 'upload termination has been rejected by server', response.HTTPResponse)
    }
    return response.HTTPResponse?.Header ?? {}
  }

  /**
   * pre-access, before a request reads or writes an existing upload (before its lock or body): a
   * RejectAccess is thrown (403 unless the hook's HTTPResponse says otherwise), a failing hook too. An
   * answer is reused for HOOKS_ACCESS_CACHE per upload, mode and caller: the token's principal and the
   * request's Authorization, Cookie and client address, the things a receiver decides by.
   */
  async preAccess(req: IncomingMessage, upload: Upload, mode: AccessMode, principal: string | undefined): Promise<void> {
    if (!this.enabled('pre-access')) return
    const key = this.accessAnswers && accessKey(req, upload.id, mode, principal)
    let answer = key ? this.accessAnswers?.get(key) : undefined
    if (answer === undefined) {
      const response = await this.invoke(hookRequest('pre-access', hookUpload(upload), req, mode))
      answer = response.RejectAccess ? hookRejection('ERR_ACCESS_REJECTED', 'upload access has been rejected by server', response.HTTPResponse, 403) : true
      if (key) this.accessAnswers?.set(key, answer)
    }
    if (answer !== true) throw answer
  }

  /** Whether a DELETE needs the upload's info before it is gone (for pre-terminate or post-terminate). */
  get watchesTermination(): boolean {
    return this.enabled('pre-terminate') || this.enabled('post-terminate')
  }

  /** post-terminate into the outbox, with the upload as it was before its removal. */
  terminated(req: IncomingMessage, upload: Upload): Promise<void> {
    return this.enqueue('post-terminate', hookRequest('post-terminate', hookUpload(upload), req))
  }

  /** Stops delivering; what is still queued is delivered after the next start. */
  async close(): Promise<void> {
    await this.delivery?.stop()
    await this.outbox?.close()
  }
}

/** The place a pre-create answer's Storage asks for, read from the field the store takes; a HookCallError when it cannot be followed. */
function placeOf(storage: Record<string, string>, placement: 'Path' | 'Key' | undefined): string {
  if (!placement) throw new HookCallError('pre-create hook failed: ChangeFileInfo.Storage is not supported by this store', false)
  const place = storage[placement]
  if (place === undefined) throw new HookCallError(`pre-create hook failed: ChangeFileInfo.Storage needs ${placement} on this store`, false)
  return place
}

/** What identifies a pre-access question: upload, mode, and who asks. */
function accessKey(req: IncomingMessage, id: string, mode: AccessMode, principal: string | undefined): string {
  const who = [principal ?? '', req.headers.authorization ?? '', req.headers.cookie ?? '', req.socket.remoteAddress ?? '']
  return createHash('sha256')
    .update(JSON.stringify([id, mode, ...who]))
    .digest('base64url')
}
