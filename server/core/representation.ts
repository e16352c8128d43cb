import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { ERRORS } from './errors.js'

/** The RFC 9530 algorithms tusgate computes, by their registry names. */
export const REPR_ALGORITHMS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const
export type ReprAlgorithm = keyof typeof REPR_ALGORITHMS

/** What a request says of the whole upload: the digests it must have (Repr-Digest), and one it asks for (Want-Repr-Digest). */
export interface Representation {
  expected: Array<{ algorithm: ReprAlgorithm; digest: Buffer }>
  wanted?: ReprAlgorithm
}

const isAlgorithm = (name: string): name is ReprAlgorithm => Object.hasOwn(REPR_ALGORITHMS, name)

/** The members of a Structured Field Dictionary as `key=value` text, parameters dropped; undefined if it does not split cleanly. */
function members(header: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = []
  for (const part of header.split(',')) {
    const match = /^\s*([a-z*][a-z0-9_.*-]*)=([^;]*)(?:;.*)?\s*$/.exec(part)
    if (!match) return undefined
    out.push([match[1], match[2].trim()])
  }
  return out
}

/**
 * Repr-Digest and Want-Repr-Digest of a request (RFC 9530); undefined when it has neither of our
 * algorithms (others are ignored, as the RFC allows). A malformed field is refused (400).
 */
export function representationOf(reprDigest: string | undefined, wantReprDigest: string | undefined): Representation | undefined {
  const expected: Representation['expected'] = []
  if (reprDigest !== undefined) {
    const parsed = members(reprDigest)
    if (!parsed) throw ERRORS.badReprDigest
    for (const [name, value] of parsed) {
      const bytes = /^:([A-Za-z0-9+/]*={0,2}):$/.exec(value)
      if (!bytes) throw ERRORS.badReprDigest
      if (isAlgorithm(name)) expected.push({ algorithm: name, digest: Buffer.from(bytes[1], 'base64') })
    }
  }
  let wanted: ReprAlgorithm | undefined
  if (wantReprDigest !== undefined) {
    const parsed = members(wantReprDigest)
    if (!parsed) throw ERRORS.badReprDigest
    let best = 0
    for (const [name, value] of parsed) {
      if (!/^(?:10|\d)$/.test(value)) throw ERRORS.badReprDigest
      // Weight 0 means "not acceptable"; the highest weight wins.
      if (isAlgorithm(name) && Number(value) > best) [wanted, best] = [name, Number(value)]
    }
  }
  return expected.length > 0 || wanted ? { expected, wanted } : undefined
}

/** The digests of a whole upload's bytes, for the algorithms the request names. */
export async function digestsOf(bytes: Readable, representation: Representation): Promise<Map<ReprAlgorithm, Buffer>> {
  const algorithms = new Set<ReprAlgorithm>(representation.expected.map(({ algorithm }) => algorithm))
  if (representation.wanted) algorithms.add(representation.wanted)
  const hashes = [...algorithms].map((algorithm) => [algorithm, createHash(REPR_ALGORITHMS[algorithm])] as const)
  for await (const chunk of bytes) for (const [, hash] of hashes) hash.update(chunk as Buffer)
  return new Map(hashes.map(([algorithm, hash]) => [algorithm, hash.digest()]))
}

/** Whether the digests computed agree with every one the request gave. */
export const matches = (representation: Representation, digests: Map<ReprAlgorithm, Buffer>) =>
  representation.expected.every(({ algorithm, digest }) => digests.get(algorithm)?.equals(digest))

/** A Repr-Digest field value: `sha-256=:<base64>:, …`. */
export const reprDigestField = (digests: Map<ReprAlgorithm, Buffer>) =>
  [...digests].map(([algorithm, digest]) => `${algorithm}=:${digest.toString('base64')}:`).join(', ')
