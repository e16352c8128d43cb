import { setTimeout as sleep } from 'node:timers/promises'
import type { Config } from '../config.js'
import { type HookRequest, type HookResponse, hookResponse } from './types.js'

/** A hook call that failed: the receiver or executable could not be reached or run, was too slow, or gave no valid hook response. */
export class HookCallError extends Error {
  /** Worth trying again: a network error, a timeout, a 5xx, a hook process ended by a signal. */
  readonly transient: boolean
  constructor(message: string, transient: boolean) {
    super(message)
    this.transient = transient
  }
}

/** How a hook request reaches its receiver: an HTTP POST (http.ts) or an executable in HOOKS_DIR (file.ts). */
export interface HookTransport {
  /**
   * Sends the hook request and parses the hook response. With `retry`, a transient failure is tried
   * again after HOOKS_BACKOFF, up to HOOKS_RETRIES times, all within one HOOKS_TIMEOUT; without it (the
   * outbox retries on its own schedule) there is one attempt of up to HOOKS_TIMEOUT.
   */
  call(request: HookRequest, options: { retry: boolean }): Promise<HookResponse>
}

export type RetryConfig = Pick<Config, 'HOOKS_TIMEOUT' | 'HOOKS_RETRIES' | 'HOOKS_BACKOFF'>

/** One attempt: resolves with the response or throws a HookCallError; stops when `signal` aborts (HOOKS_TIMEOUT is over). */
export type HookAttempt = (request: HookRequest, signal: AbortSignal) => Promise<HookResponse>

/** A transport from its single attempt, with the retries `HookTransport.call` promises. */
export function retrying(attempt: HookAttempt, config: RetryConfig): HookTransport {
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

/** A hook response larger than this is a failed hook (tusd's default limit for HTTP is 5 KiB). */
export const MAX_RESPONSE_BYTES = 64 * 1024

/** The hook response in a receiver's or executable's output: empty means `{}`; anything else must be a valid hook response in JSON. */
export function parseHookResponse(text: string): HookResponse {
  if (text.trim() === '') return {}
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
