import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { UploadError } from './errors.js'

/** The algorithms of the checksum extension, as advertised in Tus-Checksum-Algorithm. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5', 'crc32'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]

/** What a client says its chunk hashes to: `Upload-Checksum: <algorithm> <base64 digest>`. */
export interface Checksum {
  algorithm: ChecksumAlgorithm
  digest: Buffer
}

const badChecksum = (why: string) => new UploadError(400, `Invalid Upload-Checksum: ${why}`)

const isAlgorithm = (name: string): name is ChecksumAlgorithm => (CHECKSUM_ALGORITHMS as readonly string[]).includes(name)

// Canonical base64: whole quads, padding only at the end.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Parses an Upload-Checksum value; throws a 400 for a malformed one or an algorithm not supported. A
 * well-formed digest of the wrong length for its algorithm parses: it can only mismatch (460), as tusd
 * and the tus validators expect.
 */
export function parseUploadChecksum(value: string): Checksum {
  const match = /^([!-~]+) ([A-Za-z0-9+/=]+)$/.exec(value.trim())
  if (!match) throw badChecksum("expected '<algorithm> <base64 digest>'")
  const [, algorithm, encoded] = match
  if (!isAlgorithm(algorithm)) throw badChecksum(`unsupported algorithm (supported: ${CHECKSUM_ALGORITHMS.join(',')})`)
  if (!BASE64.test(encoded)) throw badChecksum('the digest is not base64')
  return { algorithm, digest: Buffer.from(encoded, 'base64') }
}

export interface Digester {
  update(chunk: Buffer): void
  digest(): Buffer
}

/** crc32 as tusd and the tus clients send it: the 32-bit value, big-endian. */
function crc32Digester(): Digester {
  let value = 0
  return {
    update: (chunk) => {
      value = crc32(chunk, value)
    },
    digest: () => {
      const out = Buffer.alloc(4)
      out.writeUInt32BE(value >>> 0)
      return out
    },
  }
}

export const digesterOf = (algorithm: ChecksumAlgorithm): Digester => (algorithm === 'crc32' ? crc32Digester() : createHash(algorithm))
