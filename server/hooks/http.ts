import type { Config } from '../config.js'
import { canonicalHeaderName } from './payload.js'
import { HookCallError, type HookTransport, MAX_RESPONSE_BYTES, parseHookResponse, retrying } from './transport.js'
import type { HookRequest, HookResponse } from './types.js'

export type HttpHookConfig = Pick<Config, 'HOOKS_URL' | 'HOOKS_TIMEOUT' | 'HOOKS_RETRIES' | 'HOOKS_BACKOFF' | 'HOOKS_FORWARD_HEADERS'>

/** The HTTP transport of tusd v2's hook protocol: the hook request POSTed as JSON to HOOKS_URL. */
export function httpHook(config: HttpHookConfig): HookTransport {
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
    return parseHookResponse(text)
  }

  return retrying(attempt, config)
}
