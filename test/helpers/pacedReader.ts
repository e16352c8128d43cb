import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type * as tus from 'tus-js-client'

/**
 * A tus-js-client fileReader over a Buffer whose slices are Readables yielding `piece` bytes every
 * `delayMs`: the Node HTTP stack streams a Readable body (Content-Length from its .size) and reports
 * progress while it is sent, so a PATCH is still in flight when the test acts on that progress.
 */
export function pacedReader(piece: number, delayMs: number) {
  const bodies: Readable[] = []
  const fileReader: NonNullable<tus.UploadOptions['fileReader']> = {
    async openFile(input: Buffer) {
      return {
        size: input.length,
        async slice(start: number, end: number) {
          const part = input.subarray(start, Math.min(end, input.length))
          const body = Readable.from(
            (async function* () {
              for (let at = 0; at < part.length; at += piece) {
                yield part.subarray(at, at + piece)
                await sleep(delayMs)
              }
            })(),
          )
          Object.assign(body, { size: part.length })
          bodies.push(body)
          return { value: body, done: end >= input.length }
        },
        close() {},
      }
    },
  }
  return {
    fileReader,
    destroy: () => {
      for (const body of bodies) body.destroy()
    },
  }
}
