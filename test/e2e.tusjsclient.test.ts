// End to end: the real tus-js-client against tusgate running as its own process.
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as tus from 'tus-js-client'
import { createUpload, pacedPatch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { pacedReader } from './helpers/pacedReader.js'
import { processPool, type ServerProcess } from './helpers/servers.js'

const MiB = 1024 * 1024

// tus-js-client exports FileUrlStorage in Node, but its typings leave it out.
type UrlStorage = NonNullable<tus.UploadOptions['urlStorage']>
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (path: string) => UrlStorage }

const { newDir, launch, stop, cleanup } = processPool('tusgate-e2e-')

afterEach(async () => {
  await cleanup()
})

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(20)
  }
}

interface Started {
  upload: tus.Upload
  /** Resolves with the upload URL on success, rejects with the client's error. */
  done: Promise<string>
  /** Method and Upload-Offset of every request the client sent, in order. */
  requests: Array<{ method: string; offset?: number }>
}

/** Starts a tus-js-client upload (no retries, so any server failure surfaces); `configure` may call findPreviousUploads first. */
async function startUpload(file: Buffer, options: tus.UploadOptions, configure?: (upload: tus.Upload) => Promise<void>): Promise<Started> {
  const requests: Started['requests'] = []
  let upload!: tus.Upload
  const done = new Promise<string>((resolve, reject) => {
    upload = new tus.Upload(file, {
      retryDelays: null,
      ...options,
      onBeforeRequest: async (req) => {
        const offset = req.getHeader('Upload-Offset')
        requests.push({ method: req.getMethod(), offset: offset === undefined ? undefined : Number(offset) })
        await options.onBeforeRequest?.(req)
      },
      onSuccess: () => resolve(upload.url as string),
      onError: reject,
    })
  })
  // An upload that is aborted on purpose never settles; nothing may be left unhandled.
  done.catch(() => undefined)
  await configure?.(upload)
  upload.start()
  return { upload, done, requests }
}

const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string

async function headOffset(url: string): Promise<number> {
  const head = await request(url, { method: 'HEAD', headers: TUS })
  expect(head.status).toBe(200)
  return Number(head.headers['upload-offset'])
}

/** The offset once the server has settled after a client went away: two HEADs 200 ms apart agree. */
async function settledOffset(url: string): Promise<number> {
  let previous = await headOffset(url)
  for (let i = 0; i < 20; i++) {
    await sleep(200)
    const current = await headOffset(url)
    if (current === previous) return current
    previous = current
  }
  throw new Error(`offset of ${url} never settled`)
}

async function expectDownload(url: string, data: Buffer): Promise<void> {
  const download = await withTimeout(sha256OfDownload(url), 30_000, `GET ${url}`)
  expect(download.status).toBe(200)
  expect(download.bytes).toBe(data.length)
  expect(download.sha).toBe(sha256(data))
}

/** Uploads `data` until onProgress passes `fraction`, aborts, and returns the URL and the offset the server kept. */
async function uploadThenAbort(data: Buffer, options: tus.UploadOptions, fraction: number) {
  // About 50 MiB/s, so progress is reported several times during each PATCH and the abort lands inside one.
  const paced = pacedReader(MiB, 20)
  try {
    return await abortAt(data, { ...options, fileReader: paced.fileReader }, fraction)
  } finally {
    paced.destroy()
  }
}

async function abortAt(data: Buffer, options: tus.UploadOptions, fraction: number) {
  let reached!: () => void
  const abortedAt = new Promise<void>((resolve) => (reached = resolve))
  let aborted = false
  const started = await startUpload(data, {
    ...options,
    onProgress: (sent, total) => {
      if (!aborted && sent >= total * fraction) {
        aborted = true
        void started.upload.abort().then(reached)
      }
    },
  })
  const outcome = await withTimeout(Promise.race([abortedAt.then(() => 'aborted'), started.done]), 30_000, 'upload to abort')
  expect(outcome).toBe('aborted')
  const url = started.upload.url as string
  expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
  const kept = await settledOffset(url)
  // About 40%: more than nothing, less than everything, kept by the server across the abort.
  expect(kept).toBeGreaterThan(0.25 * data.length)
  expect(kept).toBeLessThan(0.75 * data.length)
  return { url, kept }
}

/** A resumed upload asked for the offset, never created a new upload, and its first PATCH began at `kept`. */
async function expectResumedAt(resumed: Awaited<ReturnType<typeof startUpload>>, url: string, kept: number, data: Buffer) {
  expect(await withTimeout(resumed.done, 30_000, 'resumed upload')).toBe(url)
  expect(resumed.requests[0].method).toBe('HEAD')
  expect(resumed.requests.some((r) => r.method === 'POST')).toBe(false)
  expect(resumed.requests.find((r) => r.method === 'PATCH')?.offset).toBe(kept)
  await expectDownload(url, data)
}

describe('tus-js-client against tusgate processes', () => {
  test('a 64 MiB upload downloads with the same SHA-256', async () => {
    const dir = newDir()
    const server = await launch(dir)
    try {
      const data = randomData(64 * MiB, 1001)
      const started = await startUpload(data, {
        endpoint: `${server.url}/files`,
        metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
      })
      const url = await withTimeout(started.done, 45_000, '64 MiB upload')
      expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
      expect(started.requests.map((r) => r.method)).toEqual(['POST', 'PATCH'])

      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.headers['upload-offset']).toBe(String(64 * MiB))
      expect(head.headers['upload-length']).toBe(String(64 * MiB))
      expect(statSync(path.join(dir, 'data', idOf(url))).size).toBe(64 * MiB)
      await expectDownload(url, data)
    } finally {
      await stop(server)
    }
  }, 60_000)

  describe('abort at about 40% and resume', () => {
    const SIZE = 32 * MiB
    const CHUNK = 8 * MiB

    test('(a) a new tus.Upload with uploadUrl resumes at the offset the server kept', async () => {
      const server = await launch(newDir())
      try {
        const data = randomData(SIZE, 2001)
        const endpoint = `${server.url}/files`
        const { url, kept } = await uploadThenAbort(data, { endpoint, chunkSize: CHUNK }, 0.4)

        const resumed = await startUpload(data, { endpoint, uploadUrl: url, chunkSize: CHUNK })
        await expectResumedAt(resumed, url, kept, data)
      } finally {
        await stop(server)
      }
    }, 60_000)

    test('(b) findPreviousUploads + resumeFromPreviousUpload with FileUrlStorage resumes at the kept offset', async () => {
      const dir = newDir()
      const server = await launch(dir)
      try {
        const data = randomData(SIZE, 2002)
        const endpoint = `${server.url}/files`
        const storagePath = path.join(dir, 'tus-url-storage.json')
        const { url, kept } = await uploadThenAbort(data, { endpoint, chunkSize: CHUNK, urlStorage: new FileUrlStorage(storagePath) }, 0.4)

        let previousUrl: string | null = null
        const resumed = await startUpload(data, { endpoint, chunkSize: CHUNK, urlStorage: new FileUrlStorage(storagePath) }, async (upload) => {
          const previous = await upload.findPreviousUploads()
          expect(previous).toHaveLength(1)
          previousUrl = previous[0].uploadUrl
          upload.resumeFromPreviousUpload(previous[0])
        })
        expect(previousUrl).toBe(url)
        await expectResumedAt(resumed, url, kept, data)
      } finally {
        await stop(server)
      }
    }, 60_000)
  })

  test('SIGKILL mid-PATCH: a restarted process on the same FILE_DIR keeps the bytes and the client resumes', async () => {
    const SIZE = 64 * MiB
    const dir = newDir()
    const first = await launch(dir)
    let second: ServerProcess | undefined
    // About 10 MiB/s in one PATCH of the whole upload, so the kill lands inside it.
    const paced = pacedReader(256 * 1024, 25)
    try {
      const data = randomData(SIZE, 3001)
      let urlKnown = false
      const started = await startUpload(data, {
        endpoint: `${first.url}/files`,
        fileReader: paced.fileReader,
        chunkSize: SIZE,
        onUploadUrlAvailable: () => {
          urlKnown = true
        },
      })
      await waitFor(() => urlKnown, 10_000, 'the upload URL')
      const oldUrl = started.upload.url as string
      const file = path.join(dir, 'data', idOf(oldUrl))
      await waitFor(() => statSync(file).size >= 4 * MiB, 20_000, 'the server to store 4 MiB')

      first.child.kill('SIGKILL')
      await withTimeout(first.exited, 5_000, 'the killed server to exit')
      expect(first.child.signalCode).toBe('SIGKILL')
      await expect(withTimeout(started.done, 10_000, 'the client to notice the crash')).rejects.toThrow()

      const kept = statSync(file).size
      expect(kept).toBeGreaterThan(0)
      expect(kept).toBeLessThan(SIZE)
      // What reached the disk is exactly the start of the upload.
      expect(sha256(readFileSync(file))).toBe(sha256(data.subarray(0, kept)))

      second = await launch(dir)
      const newUrl = new URL(new URL(oldUrl).pathname, second.url).toString()
      const head = await request(newUrl, { method: 'HEAD', headers: TUS })
      expect(head.status).toBe(200)
      expect(head.headers['upload-offset']).toBe(String(kept))
      expect(head.headers['upload-length']).toBe(String(SIZE))
      expect(statSync(file).size).toBe(kept)

      const resumed = await startUpload(data, { endpoint: `${second.url}/files`, uploadUrl: newUrl })
      expect(await withTimeout(resumed.done, 30_000, 'resumed upload')).toBe(newUrl)
      expect(resumed.requests.map((r) => r.method)).toEqual(['HEAD', 'PATCH'])
      expect(resumed.requests[1].offset).toBe(kept)
      await expectDownload(newUrl, data)
    } finally {
      paced.destroy()
      if (second) await stop(second)
      await stop(first, 'SIGKILL')
    }
  }, 80_000)

  test('32 concurrent 1 MiB uploads all complete with their own content', async () => {
    const server = await launch(newDir())
    try {
      const files = Array.from({ length: 32 }, (_, i) => randomData(MiB, 4001 + i))
      const uploads = await Promise.all(files.map((data) => startUpload(data, { endpoint: `${server.url}/files` })))
      const urls = await withTimeout(Promise.all(uploads.map((u) => u.done)), 45_000, '32 concurrent uploads')
      expect(new Set(urls).size).toBe(32)
      for (const url of urls) expect(url).toMatch(/\/files\/[0-9a-f]{32}$/)
      const downloads = await Promise.all(urls.map((url) => withTimeout(sha256OfDownload(url), 30_000, `GET ${url}`)))
      downloads.forEach((download, i) => {
        expect(download.status).toBe(200)
        expect(download.bytes).toBe(MiB)
        expect(download.sha).toBe(sha256(files[i]))
      })
    } finally {
      await stop(server)
    }
  }, 60_000)

  test('two racing PATCHes at offset 0: at most one 204 and the stored bytes are never an interleaving', async () => {
    const SIZE = 4 * MiB
    const dir = newDir()
    const server = await launch(dir)
    try {
      const url = await createUpload(server.url, { 'Upload-Length': SIZE })
      const patterns = [randomData(SIZE, 5001), randomData(SIZE, 5002)]
      expect(patterns[0][0]).not.toBe(patterns[1][0])

      // Both send their headers at once and no body for 300 ms, so both reach the server while the upload is
      // still empty (the offset check alone cannot tell them apart: only the lock can); then each sends 32 KiB
      // every 50 ms (about 6.4 s in all), so both are still sending when the lock holder is asked to let go.
      const first = pacedPatch(url, 0, patterns[0], { piece: 32 * 1024, delayMs: 50, holdMs: 300 })
      const second = pacedPatch(url, 0, patterns[1], { piece: 32 * 1024, delayMs: 50, holdMs: 300 })
      const results = await withTimeout(Promise.all([first, second]), 30_000, 'both PATCHes')

      const successes = results.filter((r) => r.status === 204)
      expect(successes.length).toBeLessThanOrEqual(1)

      const stored = readFileSync(path.join(dir, 'data', idOf(url)))
      expect(await settledOffset(url)).toBe(stored.length)
      expect(stored.length).toBeGreaterThan(0)
      const matches = patterns.map((p) => stored.equals(p.subarray(0, stored.length)))
      // Exactly one pattern: anything else means bytes of both requests were mixed.
      expect(matches.filter(Boolean)).toHaveLength(1)
      results.forEach((result, i) => {
        if (result.status === 204) {
          expect(matches[i]).toBe(true)
          expect(Number(result.offset)).toBe(stored.length)
        }
      })
    } finally {
      await stop(server)
    }
  }, 60_000)
})
