import type { IncomingMessage } from 'node:http'
import { ERRORS } from '../core/errors.js'

// draft-ietf-httpapi-idempotency-key-header: a Structured Field String; a bare token is taken too.
const QUOTED = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])+)"$/
const BARE = /^[\x21\x23-\x2b\x2d-\x7e]+$/
const MAX_LENGTH = 255

/** A creation's Idempotency-Key, undefined without one; a malformed one is refused (400). */
export function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers['idempotency-key']
  if (header === undefined) return undefined
  const text = String(header).trim()
  const quoted = QUOTED.exec(text)
  const key = quoted ? quoted[1].replace(/\\(["\\])/g, '$1') : BARE.test(text) ? text : undefined
  if (key === undefined || key.length > MAX_LENGTH) throw ERRORS.badIdempotencyKey
  return key
}
