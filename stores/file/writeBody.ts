import { createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** Bytes of a body gathered for one file write: one thread-pool round trip per MiB, not per socket read. */
const WRITE_BUFFER = 1024 * 1024
/**
 * With fsync, the bytes written so far are flushed in the background every this many bytes, so the disk
 * writes while the body still arrives and the flush before the acknowledgement only has the tail left
 * (the kernel's own writeback starts at a tenth of the memory: gigabytes on a large machine).
 */
const FLUSH_EVERY = 32 * 1024 * 1024

export interface BodyWrite {
  bytesWritten: number
  failed: boolean
  /** The file's own failure (its open, write or flush), as opposed to the body's. */
  fileError?: Error
}

/**
 * Streams `body` into `filePath` from `offset`. With `fsync`, resolves only after the bytes are on disk.
 * Never rejects: what failed, and how far the bytes got, is in the result.
 */
export async function writeBody(body: Readable, filePath: string, offset: number, fsync: boolean): Promise<BodyWrite> {
  let handle: Awaited<ReturnType<typeof open>>
  try {
    handle = await open(filePath, 'r+')
  } catch (error) {
    body.destroy()
    return { bytesWritten: 0, fileError: error as Error, failed: true }
  }
  const file = createWriteStream('', { fd: handle, start: offset, flush: fsync, highWaterMark: WRITE_BUFFER })
  const flusher = fsync ? new BackgroundFlusher(handle, file) : undefined
  try {
    const written = pipeline(body, file)
    flusher?.watch(body)
    await written
    const flushError = await flusher?.settled()
    if (flushError) return { bytesWritten: file.bytesWritten, fileError: flushError, failed: true }
    return { bytesWritten: file.bytesWritten, failed: false }
  } catch {
    await flusher?.settled()
    if (!file.closed) await handle.close().catch(() => undefined)
    return { bytesWritten: file.bytesWritten, fileError: file.errored ?? undefined, failed: true }
  }
}

/**
 * Runs one fdatasync at a time while the body is written. A failed flush is kept and reported: the
 * kernel reports a writeback error to one fsync per open file, so the final flush could miss it.
 */
class BackgroundFlusher {
  private running: Promise<void> | undefined
  private error: Error | undefined
  private flushedAt = 0

  constructor(
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private readonly file: { bytesWritten: number },
  ) {}

  watch(body: Readable): void {
    body.on('data', () => {
      if (this.running || this.file.bytesWritten - this.flushedAt < FLUSH_EVERY) return
      this.flushedAt = this.file.bytesWritten
      this.running = this.handle.datasync().then(
        () => {
          this.running = undefined
        },
        (error: Error) => {
          this.error ??= error
          this.running = undefined
        },
      )
    })
  }

  async settled(): Promise<Error | undefined> {
    await this.running
    return this.error
  }
}
