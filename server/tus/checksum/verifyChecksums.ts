import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { StoreBackend } from '../../../stores/types.js'
import type { Logger } from '../../logger.js'
import { requestContext } from '../../requestContext.js'
import type { TusError } from '../errors.js'
import { CHECKSUM_ALGORITHMS, CHECKSUM_MISMATCH, type ChecksumExpectation, DigestStream } from './uploadChecksum.js'

/** The tus extensions a store gains here. */
export const CHECKSUM_EXTENSIONS = ['checksum', 'checksum-trailer']

/**
 * Makes a store verify the checksum a request sends (its context's `checksum`): the chunk is hashed
 * while it streams, and one that does not match is discarded, so the upload's offset stays where the
 * request found it, and answered 460. A store that can take bytes back (`truncate`) is written in
 * place and truncated on a mismatch; any other store gets the chunk only once it is verified, staged
 * meanwhile in a file under `stagingDir`. Memory stays bounded either way. Requests without a
 * checksum go straight to the store.
 */
export async function verifyChecksums(backend: StoreBackend, { stagingDir, logger }: { stagingDir: string; logger: Logger }): Promise<void> {
  const store = backend.datastore
  const write = store.write.bind(store)
  const truncate = backend.truncate?.bind(backend)
  if (!truncate) await mkdir(stagingDir, { recursive: true })
  store.extensions = [...store.extensions, ...CHECKSUM_EXTENSIONS]

  const writeInPlace = async (stream: Readable, id: string, offset: number, digest: DigestStream, verify: () => void) => {
    stream.once('error', (error) => digest.destroy(error))
    try {
      const end = await write(stream.pipe(digest), id, offset)
      verify()
      return end
    } catch (error) {
      // Bytes that were not verified do not stay, whatever stopped them.
      await truncate?.(id, offset)
      throw error
    }
  }

  const writeStaged = async (stream: Readable, id: string, offset: number, digest: DigestStream, verify: () => void) => {
    const staged = path.join(stagingDir, `tusgate-${id}-${randomUUID()}`)
    try {
      await pipeline(stream, digest, createWriteStream(staged, { flags: 'wx' }))
      verify()
      return await write(createReadStream(staged), id, offset)
    } finally {
      await rm(staged, { force: true })
    }
  }

  store.write = async (stream, id, offset) => {
    const context = requestContext.current()
    const expectation: ChecksumExpectation | undefined = context?.checksum
    if (!expectation) return write(stream, id, offset)
    const { checksum, creation } = expectation
    // A trailer names its algorithm only after the body, so then every algorithm hashes it.
    const digest = new DigestStream(typeof checksum === 'function' ? CHECKSUM_ALGORITHMS : [checksum.algorithm])
    let rejection: TusError | undefined
    const verify = () => {
      try {
        const expected = typeof checksum === 'function' ? checksum() : checksum
        if (!digest.matches(expected)) throw CHECKSUM_MISMATCH
      } catch (error) {
        rejection = error as TusError
        throw error
      }
    }
    try {
      return await (truncate ? writeInPlace : writeStaged)(stream, id, offset, digest, verify)
    } catch (error) {
      if (rejection) {
        logger.info('chunk discarded', { requestId: context?.requestId, uploadId: id, offset, reason: rejection.body.trim() })
        // A creation that fails its checksum leaves no upload behind: the client, which never learnt its URL, posts again.
        if (creation) await store.remove(id)
      }
      throw error
    }
  }
}
