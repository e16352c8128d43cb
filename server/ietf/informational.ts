import { validateHeaderName, validateHeaderValue } from 'node:http'
import type { Response } from 'express'

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
