import { createHash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { crc32 } from 'node:zlib'
import type { TusError } from '../errors.js'

/** The algorithms of the checksum extension, as advertised in Tus-Checksum-Algorithm. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5', 'crc32'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]

/** What a client says its chunk hashes to: `Upload-Checksum: <algorithm> <base64 digest>`. */
export interface Checksum {
  algorithm: ChecksumAlgorithm
  digest: Buffer
}

export const CHECKSUM_MISMATCH: TusError = { status_code: 460, body: 'Checksum mismatch\n' }

const badChecksum = (why: string): TusError => ({ status_code: 400, body: `Invalid Upload-Checksum: ${why}\n` })

const isAlgorithm = (name: string): name is ChecksumAlgorithm => (CHECKSUM_ALGORITHMS as readonly string[]).includes(name)

// Canonical base64: whole quads, padding only at the end.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Parses an Upload-Checksum value; throws a 400 tus error for a malformed one or an algorithm not supported. */
export function parseUploadChecksum(value: string): Checksum {
  const match = /^([!-~]+) ([A-Za-z0-9+/=]+)$/.exec(value.trim())
  if (!match) throw badChecksum("expected '<algorithm> <base64 digest>'")
  const [, algorithm, encoded] = match
  if (!isAlgorithm(algorithm)) throw badChecksum(`unsupported algorithm (supported: ${CHECKSUM_ALGORITHMS.join(',')})`)
  if (!BASE64.test(encoded)) throw badChecksum('the digest is not base64')
  const digest = Buffer.from(encoded, 'base64')
  if (digest.length !== digestLength(algorithm)) throw badChecksum(`a ${algorithm} digest has ${digestLength(algorithm)} bytes`)
  return { algorithm, digest }
}

function digestLength(algorithm: ChecksumAlgorithm): number {
  return algorithm === 'crc32' ? 4 : createHash(algorithm).digest().length
}

interface Digester {
  update(chunk: Buffer): void
  digest(): Buffer
}

/** crc32 as tusd and the tus clients send it: the 32-bit value, big-endian. */
function crc32Digester(): Digester {
  let value = 0
  return {
    update: (chunk) => void (value = crc32(chunk, value)),
    digest: () => {
      const out = Buffer.alloc(4)
      out.writeUInt32BE(value >>> 0)
      return out
    },
  }
}

const digesterOf = (algorithm: ChecksumAlgorithm): Digester => (algorithm === 'crc32' ? crc32Digester() : createHash(algorithm))

/**
 * Passes bytes through unchanged, hashing them on the way, so a chunk is never held in memory. Several
 * algorithms at once serve a checksum that only arrives after the body (a trailer).
 */
export class DigestStream extends Transform {
  private readonly digesters: Map<ChecksumAlgorithm, Digester>

  constructor(algorithms: readonly ChecksumAlgorithm[]) {
    super()
    this.digesters = new Map(algorithms.map((algorithm) => [algorithm, digesterOf(algorithm)]))
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (const digester of this.digesters.values()) digester.update(chunk)
    done(null, chunk)
  }

  /** Whether the bytes that passed hash to `expected` (call once, after the stream ended). */
  matches(expected: Checksum): boolean {
    return this.digesters.get(expected.algorithm)?.digest().equals(expected.digest) ?? false
  }
}

/** What a request's body must hash to, set on its context by the checksum request step. */
export interface ChecksumExpectation {
  /** Known before the body (a header), or read once the body has ended (a trailer; throws a tus error if bad). */
  checksum: Checksum | (() => Checksum)
  /** The request creates the upload (POST with a body): a mismatch removes the upload rather than the chunk. */
  creation: boolean
}
