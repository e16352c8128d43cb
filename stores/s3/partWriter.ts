import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { PassThrough, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Part } from '@aws-sdk/client-s3'
import { StreamSplitter } from '@tus/utils'

/**
 * The incomplete part (`<id>.part`, the acknowledged bytes past the last whole part) records in its
 * metadata the offset it starts at. It counts only while that is where the parts end: once a part holding
 * its bytes is uploaded, the parts end past it, and a copy not yet replaced or removed (a write cut
 * between the two) is stale. One written before this was recorded (no entry) counts.
 */
export const STARTS_AT = 'starts-at'

/** The parts numbered 1, 2, 3… without a gap: a part past a gap (its predecessor failed) holds no offset. */
export function consecutiveParts(parts: Part[]): Part[] {
  const sorted = [...parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0))
  const run: Part[] = []
  for (const part of sorted) {
    if (part.PartNumber !== run.length + 1) break
    run.push(part)
  }
  return run
}

export const sizeOf = (parts: Part[]): number => parts.reduce((sum, part) => sum + (part.Size ?? 0), 0)

/** Whether an incomplete part with this `starts-at` entry continues parts of `partsSize` bytes. */
export function incompleteCounts(partsSize: number, startsAt: string | undefined): boolean {
  return startsAt === undefined || Number(startsAt) === partsSize
}

export interface PartSink {
  /** Resolves when another part may be buffered (bounds the parts buffered by all writes). */
  permit(): Promise<{ release(): Promise<void> }>
  uploadPart(partNumber: number, path: string): Promise<unknown>
  /** Replaces the incomplete part in one PUT. */
  putIncomplete(path: string, startsAt: number): Promise<void>
  /** Removes the incomplete part, whose bytes are now in parts (failing is harmless: it is then stale). */
  dropIncomplete(): Promise<void>
}

export interface WriteFrom {
  /** Where the parts end: the offset of the incomplete part's first byte, or else the source's. */
  offset: number
  nextPart: number
  /** The incomplete part, if any: its bytes go before the source's. */
  incomplete?: { size: number; read(): Readable }
  /** The upload's length, if known: the part that reaches it is the last and may be short. */
  size?: number
  chunkSize: number
  minPartSize: number
}

/** Parts buffered in files while the one before them is uploaded. */
const AHEAD = 2

/**
 * Splits `source` into parts of `chunkSize` (buffered in files) and uploads them one after another, so a
 * failed part never leaves a later one behind it; the short tail becomes the incomplete part, but only once
 * every part before it is stored, so the incomplete part it replaces stays until its bytes are. Resolves
 * with the offset now stored; rejects when a part or the source failed (what was stored stays, and
 * getUpload tells where it ends).
 */
export async function writeParts(source: Readable, from: WriteFrom, sink: PartSink): Promise<number> {
  let offset = from.offset
  let partNumber = from.nextPart
  let permit: { release(): Promise<void> } | undefined
  let pending: string | undefined
  let tail: { path: string; size: number; startsAt: number } | undefined
  const uploads: Promise<unknown>[] = []
  const release = (held?: { release(): Promise<void> }) => held?.release().catch(() => undefined)
  const splitter = new StreamSplitter({ chunkSize: from.chunkSize, directory: tmpdir() })
    .on('beforeChunkStarted', async () => {
      // At most AHEAD parts wait in files for the one being uploaded.
      await uploads.at(-AHEAD)?.catch(() => undefined)
      permit = await sink.permit()
    })
    .on('chunkStarted', (path: string) => {
      pending = path
    })
    .on('chunkFinished', ({ path, size }: { path: string; size: number }) => {
      pending = undefined
      const held = permit
      const startsAt = offset
      offset += size
      if (size === 0 || (size < from.minPartSize && offset !== from.size)) {
        release(held)
        if (size === 0) void rm(path, { force: true })
        else tail = { path, size, startsAt }
        return
      }
      const number = partNumber++
      const previous = uploads.at(-1) ?? Promise.resolve()
      const upload = previous
        .then(() => sink.uploadPart(number, path))
        .finally(() => {
          void rm(path, { force: true })
          release(held)
        })
      // Stop reading the body at the first failure; the rejection is reported below.
      upload.catch((error) => splitter.destroy(error))
      uploads.push(upload)
    })
    .on('chunkError', () => release(permit))

  let failure: unknown
  try {
    await pipeline(from.incomplete ? concat(from.incomplete.read(), source) : source, splitter)
  } catch (error) {
    failure = error
    if (pending) await rm(pending, { force: true })
  }
  const settled = await Promise.allSettled(uploads)
  // A part that failed is the cause; the body's error is then only its being stopped.
  const rejected = settled.find((result) => result.status === 'rejected')
  if (rejected) failure = rejected.reason
  // The body stops with the cause, as it does when the pipeline reaches it.
  if (failure !== undefined && !source.destroyed) source.destroy(failure as Error)
  try {
    if (failure !== undefined) throw failure
    const unchanged = tail && uploads.length === 0 && tail.size === from.incomplete?.size
    if (tail && !unchanged) await sink.putIncomplete(tail.path, tail.startsAt)
    else if (!tail && from.incomplete) await sink.dropIncomplete()
  } finally {
    if (tail) await rm(tail.path, { force: true })
  }
  return offset
}

/** `head`'s bytes, then `source`'s. A failure downstream does not reach `source` (see writeParts). */
function concat(head: Readable, source: Readable): Readable {
  const joined = new PassThrough()
  const fail = (error: Error) => joined.destroy(error)
  head.once('error', fail)
  source.once('error', fail)
  head.once('end', () => source.pipe(joined))
  head.pipe(joined, { end: false })
  return joined
}
