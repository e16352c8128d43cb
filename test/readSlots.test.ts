import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createUpload, OFFSET_STREAM, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { type InProcessServer, startServer } from './helpers/servers.js'

const MiB = 1024 * 1024

/** A PATCH with a chunked body (no Content-Length), sent in pieces. */
function chunkedPatch(url: string, data: Buffer, piece = 100_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'PATCH', agent: false, headers: { ...OFFSET_STREAM, 'Upload-Offset': 0, 'Transfer-Encoding': 'chunked' } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    for (let at = 0; at < data.length; at += piece) req.write(data.subarray(at, at + piece))
    req.end()
  })
}

/** A raw PATCH that sends its headers and `sent` bytes of a `length`-byte body, then nothing. */
function stalledPatch(port: number, path: string, length: number, sent: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(
    `PATCH ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${length}\r\n\r\n`,
  )
  socket.write(Buffer.alloc(sent, 'a'))
  return socket
}

async function offsetOf(url: string): Promise<string> {
  return (await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset'] as string
}

describe('bodies read in turns (READ_SLOTS)', () => {
  let server: InProcessServer
  let port: number
  beforeAll(async () => {
    // Two slots for many bodies; a long idle timeout, so that only the turns can free a stalled client's slot.
    server = await startServer({ READ_SLOTS: '2', UPLOAD_IDLE_TIMEOUT: '30s' })
    port = Number(new URL(server.url).port)
  })
  afterAll(() => server.stop())

  test('30 concurrent PATCHes (Content-Length, chunked, empty) through 2 slots all arrive whole', async () => {
    const sizes = Array.from({ length: 30 }, (_, i) => (i % 10 === 9 ? 0 : MiB + i * 77_777))
    const data = sizes.map((size, i) => randomData(size, i + 1))
    const urls = await Promise.all(sizes.map((size) => createUpload(server.url, { 'Upload-Length': size })))
    const statuses = await Promise.all(
      urls.map(async (url, i) => (i % 3 === 1 && sizes[i] > 0 ? chunkedPatch(url, data[i]) : (await patch(url, 0, data[i])).status)),
    )
    expect(statuses).toEqual(sizes.map(() => 204))
    for (const [i, url] of urls.entries()) {
      const download = await sha256OfDownload(url)
      expect({ i, bytes: download.bytes, sha: download.sha }).toEqual({ i, bytes: sizes[i], sha: sha256(data[i]) })
    }
  })

  test('clients that stall mid-body hold no slot: another upload goes through long before the idle timeout', async () => {
    const stalledUrls = await Promise.all(Array.from({ length: 4 }, () => createUpload(server.url, { 'Upload-Length': 1000 })))
    const stalled = stalledUrls.map((url) => stalledPatch(port, new URL(url).pathname, 1000, 100))
    try {
      await sleep(100)
      const data = randomData(4 * MiB, 99)
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      const started = Date.now()
      const res = await patch(url, 0, data)
      expect(res.status).toBe(204)
      expect(Date.now() - started).toBeLessThan(3000)
      expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
      // The stalled ones still take what they send when they go on.
      stalled[0].write(Buffer.alloc(900, 'b'))
      let offset = ''
      for (let i = 0; i < 50 && offset !== '1000'; i++) {
        await sleep(100)
        offset = await offsetOf(stalledUrls[0])
      }
      expect(offset).toBe('1000')
      expect((await request(stalledUrls[0])).body.toString()).toBe('a'.repeat(100) + 'b'.repeat(900))
    } finally {
      for (const s of stalled) s.destroy()
    }
  })

  test('slow but steady clients share the slots with fast ones', async () => {
    const slow = randomData(64 * 1024, 5)
    const slowUrls = await Promise.all(Array.from({ length: 3 }, () => createUpload(server.url, { 'Upload-Length': slow.length })))
    const pacing = slowUrls.map((url) => pacedPatch(url, 0, slow, { piece: 4096, delayMs: 10, holdMs: 0 }))
    await sleep(50)
    const fast = randomData(8 * MiB, 6)
    const fastUrl = await createUpload(server.url, { 'Upload-Length': fast.length })
    const started = Date.now()
    expect((await patch(fastUrl, 0, fast)).status).toBe(204)
    expect(Date.now() - started).toBeLessThan(3000)
    expect((await Promise.all(pacing)).map((r) => r.status)).toEqual([204, 204, 204])
    for (const url of [...slowUrls, fastUrl]) expect((await sha256OfDownload(url)).sha).toBe(sha256(url === fastUrl ? fast : slow))
  })

  test('clients that hang up while reading or waiting for a turn give their place back', async () => {
    const urls = await Promise.all(Array.from({ length: 20 }, () => createUpload(server.url, { 'Upload-Length': 4 * MiB })))
    // Each sends a quarter of its body (more than the slots read at once), then all hang up.
    const sockets = urls.map((url) => stalledPatch(port, new URL(url).pathname, 4 * MiB, MiB))
    await sleep(50)
    for (const s of sockets) s.destroy()
    // Whatever arrived is kept; every upload is free to resume where it stopped.
    await sleep(300)
    const data = randomData(4 * MiB, 8)
    for (const url of urls.slice(0, 3)) {
      const offset = Number(await offsetOf(url))
      expect(offset).toBeLessThanOrEqual(MiB)
      const res = await patch(url, offset, data.subarray(offset))
      expect(res.status).toBe(204)
      expect(sha256((await request(url)).body.subarray(offset))).toBe(sha256(data.subarray(offset)))
    }
    // Had a gone request kept a slot, these would never finish.
    const data2 = randomData(2 * MiB, 9)
    const more = await Promise.all(Array.from({ length: 6 }, () => createUpload(server.url, { 'Upload-Length': data2.length })))
    const started = Date.now()
    expect((await Promise.all(more.map((url) => patch(url, 0, data2)))).map((r) => r.status)).toEqual(more.map(() => 204))
    expect(Date.now() - started).toBeLessThan(5000)
  })
})

test('a PATCH waiting for a turn is not ended by UPLOAD_IDLE_TIMEOUT, and a stalled one still is', async () => {
  const server = await startServer({ READ_SLOTS: '1', UPLOAD_IDLE_TIMEOUT: '1s' })
  try {
    const port = Number(new URL(server.url).port)
    const stalledUrl = await createUpload(server.url, { 'Upload-Length': 100 })
    const stalled = stalledPatch(port, new URL(stalledUrl).pathname, 100, 40)
    const closed = new Promise<number>((resolve) => {
      const started = Date.now()
      stalled.once('close', () => resolve(Date.now() - started))
    })
    // Six steady trickles each keep the one slot for a whole turn, so the fast bodies wait longer than
    // the idle timeout for theirs, with their sockets quiet meanwhile.
    const slow = randomData(40_000, 4)
    const slowUrls = await Promise.all(Array.from({ length: 6 }, () => createUpload(server.url, { 'Upload-Length': slow.length })))
    const pacing = slowUrls.map((url) => pacedPatch(url, 0, slow, { piece: 50, delayMs: 1, holdMs: 0 }))
    await sleep(30)
    const fast = randomData(4 * MiB, 3)
    const fastUrls = await Promise.all(Array.from({ length: 3 }, () => createUpload(server.url, { 'Upload-Length': fast.length })))
    const results = await Promise.all(fastUrls.map((url) => patch(url, 0, fast)))
    expect(results.map((r) => r.status)).toEqual([204, 204, 204])
    expect((await Promise.all(pacing)).map((r) => r.status)).toEqual(slowUrls.map(() => 204))
    for (const url of fastUrls) expect((await sha256OfDownload(url)).sha).toBe(sha256(fast))
    for (const url of slowUrls) expect((await sha256OfDownload(url)).sha).toBe(sha256(slow))
    const waited = await Promise.race([closed, sleep(5000, -1, { ref: false })])
    expect(waited).toBeGreaterThanOrEqual(900)
    expect(await offsetOf(stalledUrl)).toBe('40')
  } finally {
    await server.stop()
  }
})

test('steady trickles hold no slot: a short read ends their turn, so a fast body is not kept waiting behind them', async () => {
  // One slot, three clients sending 1 KiB a millisecond: never quiet for IDLE_MS (5 ms; a client pausing
  // longer between pieces yields by that rule instead), so only their short reads can end their turns.
  // Without that rule each keeps the slot for a whole turn (200 ms), the fast body gets 512 KiB a round
  // and finishes about when they do. Measured on 2 loaded cores: 70 to 140 ms with the rule, 2.5 to 2.7 s
  // without, the trickles needing 2.5 to 2.9 s.
  const server = await startServer({ READ_SLOTS: '1', UPLOAD_IDLE_TIMEOUT: '30s' })
  try {
    const slow = randomData(2 * MiB, 11)
    const fast = randomData(8 * MiB, 12)
    const slowUrls = await Promise.all(Array.from({ length: 3 }, () => createUpload(server.url, { 'Upload-Length': slow.length })))
    const fastUrl = await createUpload(server.url, { 'Upload-Length': fast.length })
    const slowDone: number[] = []
    const pacing = slowUrls.map((url, i) =>
      pacedPatch(url, 0, slow, { piece: 1024, delayMs: 1, holdMs: 0 }).then((result) => {
        slowDone[i] = Date.now()
        return result
      }),
    )
    await sleep(100)
    const started = Date.now()
    expect((await patch(fastUrl, 0, fast)).status).toBe(204)
    const fastTook = Date.now() - started
    expect((await Promise.all(pacing)).map((r) => r.status)).toEqual([204, 204, 204])
    // The trickles need seconds more whatever the load; the fast body is done in a fraction of that.
    expect(fastTook).toBeLessThan((Math.min(...slowDone) - started) / 2)
    expect((await sha256OfDownload(fastUrl)).sha).toBe(sha256(fast))
    for (const url of slowUrls) expect((await sha256OfDownload(url)).sha).toBe(sha256(slow))
  } finally {
    await server.stop()
  }
})

test('while bodies wait for a turn, at most about 128 KiB is read per event-loop iteration, and every body arrives whole', async () => {
  const { ReadSlots } = await import('../server/tus/readSlots.js')
  const { PassThrough, Writable } = await import('node:stream')
  const slots = new ReadSlots(1)
  let iteration = 0
  let running = true
  const tick = () => {
    iteration++
    if (running) setImmediate(tick)
  }
  setImmediate(tick)
  // Bytes written per iteration while another body still waits: while two or more bodies have bytes to come.
  const contended = new Map<number, number>()
  const bodies = [1, 2, 3].map((seed) => randomData(1024 * 1024, seed))
  const received = bodies.map(() => [] as Buffer[])
  const receivedBytes = bodies.map(() => 0)
  await Promise.all(
    bodies.map(
      (data, i) =>
        new Promise<void>((resolve, reject) => {
          const source = new PassThrough({ highWaterMark: 2 * 1024 * 1024 })
          for (let at = 0; at < data.length; at += 64 * 1024) source.write(data.subarray(at, at + 64 * 1024))
          source.end()
          const sink = new Writable({
            write(chunk: Buffer, _encoding, done) {
              const unfinished = bodies.filter((body, j) => receivedBytes[j] < body.length).length
              if (unfinished >= 2) contended.set(iteration, (contended.get(iteration) ?? 0) + chunk.length)
              received[i].push(chunk)
              receivedBytes[i] += chunk.length
              done()
            },
          })
          sink.once('finish', () => resolve())
          sink.once('error', reject)
          slots.feed(source, sink)
        }),
    ),
  )
  running = false
  for (const [i, data] of bodies.entries()) expect(sha256(Buffer.concat(received[i]))).toBe(sha256(data))
  // While another body waits (until all but the last have all their bytes, which is at least the two first
  // bodies whole): one chunk past the budget at most (the chunk that spent it); without the budget a turn
  // reads its 512 KiB at once. The last body, alone, reads freely.
  expect([...contended.values()].reduce((sum, bytes) => sum + bytes, 0)).toBeGreaterThanOrEqual(2 * 1024 * 1024)
  expect(Math.max(...contended.values())).toBeLessThanOrEqual(128 * 1024 + 64 * 1024)
})
