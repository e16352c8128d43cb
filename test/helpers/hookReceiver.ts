import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HookRequest, HookResponse } from '../../server/hooks/types.js'

export interface ReceivedHook {
  body: HookRequest
  /** The hook request's own headers (lower-case names). */
  headers: http.IncomingHttpHeaders
}

/** What the receiver answers: a hook response (200, JSON), or a bare status with a text body. */
export type Answer = HookResponse | { status: number; text?: string }

export interface HookReceiver {
  url: string
  port: number
  hooks: ReceivedHook[]
  /** The hooks received of one type, optionally for one upload id. */
  of(type: string, id?: string): HookRequest[]
  /** Sets how the receiver answers from now on (default: `{}` for every hook). */
  answer(fn: (hook: HookRequest) => Answer | Promise<Answer>): void
  /** Resolves once `check` holds, polling every 20 ms; rejects after `ms`. */
  waitFor(check: () => boolean, ms: number, what: string): Promise<void>
  stop(): Promise<void>
}

/** A real hook receiver on 127.0.0.1 (`port` 0: a free one), recording every hook request it gets. */
export async function startHookReceiver(port = 0): Promise<HookReceiver> {
  const hooks: ReceivedHook[] = []
  let respond: (hook: HookRequest) => Answer | Promise<Answer> = () => ({})
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HookRequest
      hooks.push({ body, headers: req.headers })
      const answer = await respond(body)
      if ('status' in answer) {
        res.writeHead(answer.status, { 'Content-Type': 'text/plain' }).end(answer.text ?? '')
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(answer))
      }
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${actual}/hooks`,
    port: actual,
    hooks,
    of: (type, id) => hooks.map((h) => h.body).filter((b) => b.Type === type && (id === undefined || b.Event.Upload.ID === id)),
    answer(fn) {
      respond = fn
    },
    async waitFor(check, ms, what) {
      const deadline = Date.now() + ms
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
        await sleep(20)
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
