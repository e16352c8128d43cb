import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { patch, request, sha256, sha256OfDownload, TUS } from './http.js'

export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5', 'crc32'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]

/** The base64 digest a tus client sends, computed here independently of the server's code (crc32 big-endian, as tusd). */
export function digestOf(algorithm: ChecksumAlgorithm, data: Buffer): string {
  if (algorithm !== 'crc32') return createHash(algorithm).update(data).digest('base64')
  const out = Buffer.alloc(4)
  out.writeUInt32BE(crc32(data))
  return out.toString('base64')
}

/** The Upload-Checksum header for `data`. */
export const checksumHeader = (algorithm: ChecksumAlgorithm, data: Buffer) => ({ 'Upload-Checksum': `${algorithm} ${digestOf(algorithm, data)}` })

/** A copy of `data` with one byte changed: what a bad network or disk does to a chunk. */
export function corrupted(data: Buffer, at = Math.floor(data.length / 2)): Buffer {
  const copy = Buffer.from(data)
  copy[at] ^= 0xff
  return copy
}

/**
 * Uploads `data` to `url` in two checksummed PATCHes split at `at`; the second goes corrupted first and
 * must answer 460 with the offset unchanged, then be accepted; the download must be exactly `data`.
 */
export async function expectCorruptedChunkRejected(url: string, data: Buffer, at: number, algorithms: [ChecksumAlgorithm, ChecksumAlgorithm]) {
  const [head, rest] = [data.subarray(0, at), data.subarray(at)]
  expect((await patch(url, 0, head, checksumHeader(algorithms[0], head))).status).toBe(204)
  expect((await patch(url, at, corrupted(rest), checksumHeader(algorithms[1], rest))).status).toBe(460)
  expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe(String(at))
  expect((await patch(url, at, rest, checksumHeader(algorithms[1], rest))).status).toBe(204)
  expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
}
