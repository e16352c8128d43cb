import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { Response } from 'express'
import type { Config } from '../config.js'
import type { Dialect } from './versions.js'

/**
 * Sends the interim `104 Upload Resumption Supported` response ahead of the final one. Node has no
 * general way to write a 1xx (only 100, 102 and 103), so its head goes on the socket as HTTP/1.1 frames
 * it: status line, fields, empty line. Returns false, sending nothing, where an interim response cannot
 * go: the final head is already out, the client speaks HTTP/1.0 (RFC 9110 forbids 1xx to it), or the
 * response does not own the socket yet (a pipelined request waiting its turn). The 104 is optional, so
 * the upload goes on either way.
 */
export function sendUploadResumptionSupported(res: Response, fields: Record<string, string>): boolean {
  const { req, socket } = res
  if (res.headersSent || !socket || socket.destroyed || req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false
  let head = 'HTTP/1.1 104 Upload Resumption Supported\r\n'
  for (const [name, value] of Object.entries(fields)) {
    // Throws on CR, LF or other characters that would break the framing.
    validateHeaderName(name)
    validateHeaderValue(name, value)
    head += `${name}: ${value}\r\n`
  }
  socket.write(`${head}\r\n`, 'latin1')
  return true
}

/**
 * The draft's progress reports while a body streams: a 104 with the offset reached (no Location), about
 * every second, under INTERIM_RESPONSES. The offset counts bytes handed to the store; the file store
 * syncs them to disk when the request ends. Not for interop version 3 (draft -01, URLSession of iOS 17),
 * whose 104 announces an upload only.
 */
export function progressReport(config: Pick<Config, 'INTERIM_RESPONSES'>, dialect: Dialect, res: Response): ((offset: number) => void) | undefined {
  if (!config.INTERIM_RESPONSES || dialect.version === 3) return undefined
  return (offset) => void sendUploadResumptionSupported(res, { 'Upload-Offset': String(offset) })
}
