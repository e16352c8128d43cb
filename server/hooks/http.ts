import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config.js'
import { canonicalHeaderName } from './payload.js'
import { type HookRequest, type HookResponse, hookResponse } from './types.js'

/** A receiver's answer larger than this is a failed hook (tusd's default limit is 5 KiB). */
const MAX_RESPONSE_BYTES = 64 * 1024

/** A hook call that failed: the receiver was unreachable, too slow, answered non-2xx, or sent no valid hook response. */
export class HookCallError extends Error {
  /** Worth trying again: a network error, a timeout or a 5xx. */
  readonly transient: boolean
  constructor(message: string, transient: boolean) {
    super(message)
    this.transient = transient
  }
}

export type HttpHookConfig = Pick<Config, 'HOOKS_URL' | 'HOOKS_TIMEOUT' | 'HOOKS_RETRIES' | 'HOOKS_BACKOFF' | 'HOOKS_FORWARD_HEADERS'>

export interface HttpHook {
  /**
   * POSTs the hook request as JSON and parses the hook response. With `retry`, a transient failure is
   * tried again after HOOKS_BACKOFF, up to HOOKS_RETRIES times, all within one HOOKS_TIMEOUT; without it
   * (the outbox retries on its own schedule) there is one attempt of up to HOOKS_TIMEOUT.
   */
  call(request: HookRequest, options: { retry: boolean }): Promise<HookResponse>
}

/** The HTTP transport of tusd v2's hook protocol. */
export function httpHook(config: HttpHookConfig): HttpHook {
  const url = config.HOOKS_URL as string
  const forwarded = config.HOOKS_FORWARD_HEADERS ?? []

  const attempt = async (request: HookRequest, signal: AbortSignal): Promise<HookResponse> => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' }
    // As tusd's -hooks-http-forward-headers: the listed client headers on the hook request itself.
    for (const name of forwarded) {
      const values = request.Event.HTTPRequest.Header[canonicalHeaderName(name)]
      if (values) headers[name] = values.join(', ')
    }
    let res: Response
    let text: string
    try {
      res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(request), signal, redirect: 'error' })
      text = await res.text()
    } catch (error) {
      const reason = signal.aborted ? `no answer within ${config.HOOKS_TIMEOUT} ms` : (((error as Error).cause as Error)?.message ?? (error as Error).message)
      throw new HookCallError(`hook receiver unreachable: ${reason}`, true)
    }
    if (res.status < 200 || res.status > 299) {
      throw new HookCallError(`hook receiver answered ${res.status}: ${text.slice(0, 200)}`, res.status >= 500)
    }
    if (Buffer.byteLength(text) > MAX_RESPONSE_BYTES) throw new HookCallError(`hook response larger than ${MAX_RESPONSE_BYTES} bytes`, false)
    // An empty 2xx is an empty hook response; anything else must be JSON, as tusd requires.
    if (text.trim() === '') return {}
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase()
    if (type !== 'application/json') throw new HookCallError(`hook response is not application/json but '${type}'`, false)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new HookCallError('hook response is not valid JSON', false)
    }
    const result = hookResponse.safeParse(parsed)
    if (!result.success) {
      const issue = result.error.issues[0]
      throw new HookCallError(`hook response field ${issue.path.join('.') || '(root)'}: ${issue.message}`, false)
    }
    return result.data
  }

  return {
    async call(request, { retry }) {
      const signal = AbortSignal.timeout(config.HOOKS_TIMEOUT)
      const deadline = Date.now() + config.HOOKS_TIMEOUT
      for (let tries = 0; ; tries++) {
        try {
          return await attempt(request, signal)
        } catch (error) {
          const again = retry && error instanceof HookCallError && error.transient && tries < config.HOOKS_RETRIES
          if (!again || Date.now() + config.HOOKS_BACKOFF >= deadline) throw error
          await sleep(config.HOOKS_BACKOFF)
        }
      }
    },
  }
}
