import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Request, Response } from 'express'

type NodePair = { req: IncomingMessage; res?: ServerResponse }

/**
 * The Express request as the web Request `@tus/server`'s termination callbacks and events take, for the
 * IETF draft's cancellation: its headers as they stand now, no body, and the Node request and response
 * where `@tus/server`'s own requests carry them (srvx's `runtime.node`), which hooks read.
 */
export function webRequestOf(req: Request, res: Response): globalThis.Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value)
  const web = new globalThis.Request(new URL(req.originalUrl, `http://${req.headers.host ?? 'localhost'}`), { method: req.method, headers })
  return Object.assign(web, { runtime: { node: { req, res } satisfies NodePair } })
}

/** The Node request and response behind a web Request of `@tus/server` or of `webRequestOf`. */
export function nodeOf(req: globalThis.Request): NodePair {
  return (req as globalThis.Request & { runtime: { node: NodePair } }).runtime.node
}
