import type { IncomingMessage } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { CHECKSUM_ALGORITHMS, type Checksum, type ChecksumAlgorithm, type Digester, digesterOf } from './checksum.js'

/** What a body must hash to: known before it (a header), or read once it has ended (a trailer; throws if bad). */
export type ExpectedChecksum = Checksum | (() => Checksum)

/**
 * A request body on its way to the store, in one stream hop: it counts the bytes that pass, stops at
 * `room` (a chunked body that says nothing of its length ends there, `overflowed` set, rather than
 * failing the write: what fits is stored and counted), and hashes what passes when a checksum is due.
 * It ends cleanly, not with an error, when the client goes away or `stop()` is called, so a store
 * keeps every byte that arrived.
 */
export class MeteredBody extends Transform {
  passed = 0
  overflowed = false
  private readonly digesters: Map<ChecksumAlgorithm, Digester> | undefined
  /** Why whoever fed it gave up on the body (a refusal the client is told of, rather than the store's failure). */
  failure?: unknown
  /** Stops feeding the request into this body (set by whoever feeds it). */
  detach: () => void = () => {}

  constructor(
    private readonly room: number,
    checksum?: ExpectedChecksum,
  ) {
    super({ highWaterMark: 64 * 1024 })
    // A trailer names its algorithm only after the body, so then every algorithm hashes it.
    const algorithms: readonly ChecksumAlgorithm[] | undefined =
      checksum === undefined ? undefined : typeof checksum === 'function' ? CHECKSUM_ALGORITHMS : [checksum.algorithm]
    this.digesters = algorithms && new Map(algorithms.map((algorithm) => [algorithm, digesterOf(algorithm)]))
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.overflowed) {
      done()
      return
    }
    let part = chunk
    const left = this.room - this.passed
    if (chunk.length > left) {
      part = chunk.subarray(0, left)
      this.overflowed = true
    }
    this.passed += part.length
    if (this.digesters) for (const digester of this.digesters.values()) digester.update(part)
    done(null, part.length > 0 ? part : undefined)
    if (this.overflowed) this.stop()
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    if (error) this.failure ??= error
    done(error)
  }

  /** Ends the body where it is; what passed is kept. */
  stop(): void {
    this.detach()
    if (!this.writableEnded) this.end()
  }

  /** Whether what passed hashes to `expected` (once the body has ended). */
  matches(expected: Checksum): boolean {
    return this.digesters?.get(expected.algorithm)?.digest().equals(expected.digest) ?? false
  }
}

/** Something that feeds a request into a sink in turns with the other bodies (READ_SLOTS); returns its detach. */
export type Feeder = (req: IncomingMessage, sink: MeteredBody) => () => void

const pipeFeeder: Feeder = (req, sink) => {
  req.pipe(sink)
  return () => req.unpipe(sink)
}

/** The request's body as a MeteredBody, fed in turns or piped, ended cleanly whenever the client goes. */
export function meteredBodyOf(req: IncomingMessage, room: number, checksum: ExpectedChecksum | undefined, feed: Feeder = pipeFeeder): MeteredBody {
  const body = new MeteredBody(room, checksum)
  body.detach = feed(req, body)
  const stop = () => body.stop()
  req.once('aborted', stop)
  req.once('error', stop)
  // 'close' before the body ended: the socket went away.
  req.once('close', () => {
    if (!req.complete) stop()
  })
  body.once('end', () => {
    req.off('aborted', stop)
    req.off('error', stop)
  })
  return body
}
