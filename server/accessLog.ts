import type { RequestHandler } from 'express'
import type { Logger } from './logger.js'
import { type RequestContext, requestContext, requestIdFrom } from './requestContext.js'

export const REQUEST_ID_HEADER = 'X-Request-Id'

/** Gives each request an id (echoed in a header) and writes one log line when it ends. */
export function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint()
    const context: RequestContext = { requestId: requestIdFrom(req.headers['x-request-id']), bytes: 0, writes: new Set() }
    res.setHeader(REQUEST_ID_HEADER, context.requestId)
    res.once('close', async () => {
      // A client that hangs up closes the response while the store still writes what it got.
      await Promise.allSettled([...(context.writes ?? [])])
      logger.info('request', {
        requestId: context.requestId,
        method: req.method,
        path: req.originalUrl,
        // A status the client never got (it hung up first) is logged as 499, as nginx does.
        status: res.writableFinished ? res.statusCode : 499,
        uploadId: context.uploadId,
        principal: context.principal,
        bytes: context.bytes,
        durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      })
    })
    requestContext.run(context, next)
  }
}
