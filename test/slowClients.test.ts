import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { createUpload, patch, randomData, request, sha256, TUS } from './helpers/http.js'
import { type InProcessServer, startServer } from './helpers/servers.js'

/** Resolves when the server closes the socket (or rejects after a bound). */
function closedWithin(socket: net.Socket, ms: number): Promise<number> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(0)
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(Date.now() - started)
    })
  })
}

describe('slow and hostile clients', () => {
  let server: InProcessServer
  let port: number
  beforeAll(async () => {
    server = await startServer({ HEADERS_TIMEOUT: '3s', UPLOAD_IDLE_TIMEOUT: '1s' })
    port = Number(new URL(server.url).port)
  })
  afterAll(() => server.stop())

  test('100 sockets sending headers a byte a second neither delay a normal upload nor outlive HEADERS_TIMEOUT', async () => {
    const header = `POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n`
    const sockets = Array.from({ length: 100 }, () => net.connect(port, '127.0.0.1'))
    for (const s of sockets) s.on('error', () => {})
    let position = 0
    const drip = setInterval(() => {
      for (const s of sockets) if (!s.destroyed) s.write(header[position % header.length])
      position++
    }, 1000)
    try {
      await sleep(300)
      const data = randomData(8 * 1024 * 1024, 7)
      const started = Date.now()
      const url = await createUpload(server.url, { 'Upload-Length': data.length })
      const res = await patch(url, 0, data)
      const elapsed = Date.now() - started
      expect(res.status).toBe(204)
      expect(sha256((await request(url)).body)).toBe(sha256(data))
      // Done long before the 3 s headers timeout frees anything: the slow sockets did not hold it up.
      expect(elapsed).toBeLessThan(2000)
      const waits = await Promise.all(sockets.map((s) => closedWithin(s, 6000)))
      expect(Math.max(...waits)).toBeLessThan(6000)
    } finally {
      clearInterval(drip)
      for (const s of sockets) s.destroy()
    }
  })

  test('a PATCH that stalls is ended after UPLOAD_IDLE_TIMEOUT and keeps the bytes it sent', async () => {
    const url = new URL(await createUpload(server.url, { 'Upload-Length': 100 }))
    const socket = net.connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(
      `PATCH ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
        'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 100\r\n\r\n',
    )
    socket.write('a'.repeat(40))
    const waited = await closedWithin(socket, 5000)
    expect(waited).toBeGreaterThanOrEqual(900)
    // The store finishes the write a moment after the socket goes.
    let offset = ''
    for (let i = 0; i < 50 && offset !== '40'; i++) {
      await sleep(100)
      offset = (await request(url.toString(), { method: 'HEAD', headers: TUS })).headers['upload-offset'] as string
    }
    expect(offset).toBe('40')
    const rest = await patch(url.toString(), 40, 'b'.repeat(60))
    expect(rest.status).toBe(204)
    expect((await request(url.toString())).body.toString()).toBe('a'.repeat(40) + 'b'.repeat(60))
  })
})

test('an idle kept-alive connection outlives a Node client agent idle time (5 s): the server is not the one to close it', async () => {
  const server = await startServer()
  const port = Number(new URL(server.url).port)
  const socket = net.connect(port, '127.0.0.1')
  try {
    const options = `OPTIONS /files HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n\r\n`
    const answer = () =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer')), 5_000)
        socket.once('data', (chunk: Buffer) => {
          clearTimeout(timer)
          resolve(chunk.toString())
        })
      })
    socket.write(options)
    expect(await answer()).toMatch(/^HTTP\/1\.1 200/)
    await sleep(6_000)
    expect(socket.destroyed).toBe(false)
    socket.write(options)
    expect(await answer()).toMatch(/^HTTP\/1\.1 200/)
  } finally {
    socket.destroy()
    await server.stop()
  }
})
