import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createUpload, patch, request, sha256, TUS } from './helpers/http.js'
import { startProcess, startServer, tempDir, useServer } from './helpers/servers.js'

/** A PATCH whose body the test writes piece by piece; resolves with the response. */
function slowPatch(url: string, offset: number, length: number) {
  let resolveRes!: (r: { status: number; offset?: string }) => void
  let rejectRes!: (e: Error) => void
  const response = new Promise<{ status: number; offset?: string }>((resolve, reject) => {
    resolveRes = resolve
    rejectRes = reject
  })
  const req = http.request(url, {
    method: 'PATCH',
    agent: false,
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': offset, 'Content-Length': length },
  })
  req.on('response', (res) => {
    res.resume()
    res.on('end', () => resolveRes({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] as string }))
  })
  req.on('error', rejectRes)
  return { req, response }
}

describe('graceful shutdown', () => {
  test('SIGTERM stops accepting, lets an in-flight PATCH finish, and exits 0', async () => {
    const temp = tempDir()
    const server = await startProcess({ FILE_DIR: temp.dir, SHUTDOWN_TIMEOUT: '10s' })
    try {
      const url = await createUpload(server.url, { 'Upload-Length': 3000 })
      const id = url.split('/').pop() as string
      const { req, response } = slowPatch(url, 0, 3000)
      req.write('a'.repeat(1000))
      await sleep(200)
      server.child.kill('SIGTERM')
      await sleep(300)
      // New connections are refused while the old one is still being served.
      await expect(request(`${server.url}/healthz`)).rejects.toThrow(/ECONNREFUSED/)
      req.write('b'.repeat(1000))
      await sleep(300)
      req.end('c'.repeat(1000))
      expect(await response).toEqual({ status: 204, offset: '3000' })
      expect(await server.exited).toBe(0)
      expect(statSync(path.join(temp.dir, id)).size).toBe(3000)
      expect(server.output()).toMatch(/"message":"stopped"/)
      // Production logs are JSON lines; the PATCH has its one request line.
      const lines = server
        .output()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(lines.find((l) => l.message === 'request' && l.method === 'PATCH')).toMatchObject({
        path: new URL(url).pathname,
        status: 204,
        uploadId: id,
        bytes: 3000,
        level: 'info',
      })
    } finally {
      await server.stop('SIGKILL')
      temp.remove()
    }
  })

  test('past SHUTDOWN_TIMEOUT a stalled PATCH is cut, its bytes kept, and the process exits', async () => {
    const temp = tempDir()
    const server = await startProcess({ FILE_DIR: temp.dir, SHUTDOWN_TIMEOUT: '1s', UPLOAD_IDLE_TIMEOUT: '1m' })
    try {
      const url = await createUpload(server.url, { 'Upload-Length': 3000 })
      const { req, response } = slowPatch(url, 0, 3000)
      response.catch(() => {})
      req.write('x'.repeat(1234))
      await sleep(300)
      const started = Date.now()
      server.child.kill('SIGINT')
      expect(await server.exited).toBe(0)
      expect(Date.now() - started).toBeLessThan(5000)
      expect(server.output()).toMatch(/shutdown timeout/)
      req.destroy()
      const again = await startProcess({ FILE_DIR: temp.dir })
      try {
        const head = await request(`${again.url}${new URL(url).pathname}`, { method: 'HEAD', headers: TUS })
        expect(head.headers['upload-offset']).toBe('1234')
      } finally {
        await again.stop()
      }
    } finally {
      await server.stop('SIGKILL')
      temp.remove()
    }
  })
})

describe('expiration', () => {
  const server = useServer({ UPLOAD_EXPIRES_AFTER: '1s', EXPIRY_SWEEP_INTERVAL: '1h' })

  test('an expired unfinished upload answers 410 and the sweep removes it; finished uploads stay', async () => {
    const unfinished = await createUpload(server.url, { 'Upload-Length': 10 })
    await patch(unfinished, 0, 'abc')
    const finished = await createUpload(server.url, { 'Upload-Length': 3 })
    await patch(finished, 0, 'xyz')
    await sleep(1200)
    expect((await request(unfinished, { method: 'HEAD', headers: TUS })).status).toBe(410)
    expect((await patch(unfinished, 3, 'd')).status).toBe(410)
    const head = await request(finished, { method: 'HEAD', headers: TUS })
    expect(head.status).toBe(200)
    expect(head.headers['upload-expires']).toBeUndefined()

    const id = unfinished.split('/').pop() as string
    expect(await server.app.sweeper.sweep()).toEqual([id])
    expect(existsSync(path.join(server.dir, id))).toBe(false)
    expect(existsSync(path.join(server.dir, `${id}.json`))).toBe(false)
    expect((await request(unfinished, { method: 'HEAD', headers: TUS })).status).toBe(404)
    expect(server.logs).toContainEqual(expect.objectContaining({ message: 'upload expired', uploadId: id, offset: 3 }))
    expect(sha256((await request(finished)).body)).toBe(sha256('xyz'))
  })

  test('the periodic sweep runs on its interval', async () => {
    const fast = await startServer({ UPLOAD_EXPIRES_AFTER: '500ms', EXPIRY_SWEEP_INTERVAL: '1s' })
    try {
      const url = await createUpload(fast.url, { 'Upload-Length': 10 })
      const id = url.split('/').pop() as string
      let gone = false
      for (let i = 0; i < 40 && !gone; i++) {
        await sleep(100)
        gone = !existsSync(path.join(fast.dir, id))
      }
      expect(gone).toBe(true)
    } finally {
      await fast.stop()
    }
  })

  test('UPLOAD_EXPIRES_AFTER=0 turns expiry off: not advertised, no Upload-Expires', async () => {
    const never = await startServer({ UPLOAD_EXPIRES_AFTER: '0' })
    try {
      const options = await request(`${never.url}/files`, { method: 'OPTIONS' })
      expect(options.headers['tus-extension']).not.toMatch(/expiration/)
      const created = await request(`${never.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 5 } })
      expect(created.status).toBe(201)
      expect(created.headers['upload-expires']).toBeUndefined()
    } finally {
      await never.stop()
    }
  })
})

describe('downloads never take the process down', () => {
  test('clients that hang up at the end of the body, or midway, leave the server serving', async () => {
    const temp = tempDir()
    const server = await startProcess({ FILE_DIR: temp.dir })
    try {
      const body = Buffer.alloc(256 * 1024, 7)
      const url = new URL(await createUpload(server.url, { 'Upload-Length': body.length }))
      expect((await patch(url.toString(), 0, body)).status).toBe(204)
      const getAndHangUp = (stopAfter: number) =>
        new Promise<number>((resolve, reject) => {
          const socket = net.connect(server.port, '127.0.0.1')
          let received = 0
          let headerEnd = -1
          let head = Buffer.alloc(0)
          socket.on('data', (chunk) => {
            if (headerEnd < 0) {
              head = Buffer.concat([head, chunk])
              headerEnd = head.indexOf('\r\n\r\n')
              if (headerEnd >= 0) received = head.length - headerEnd - 4
            } else received += chunk.length
            if (headerEnd >= 0 && received >= stopAfter) {
              socket.destroy()
              resolve(received)
            }
          })
          socket.on('error', reject)
          socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        })
      for (let i = 0; i < 30; i++) expect(await getAndHangUp(body.length)).toBe(body.length)
      for (let i = 0; i < 10; i++) await getAndHangUp(body.length / 2)
      await sleep(200)
      expect(server.child.exitCode).toBeNull()
      expect((await request(`${server.url}/healthz`)).status).toBe(200)
      expect(sha256((await request(url.toString())).body)).toBe(sha256(body))
      expect(server.output()).not.toMatch(/ERR_INVALID_STATE|uncaught/i)
    } finally {
      await server.stop('SIGKILL')
      temp.remove()
    }
  })
})

describe('readiness', () => {
  test('/readyz answers 503 with the reason when FILE_DIR cannot take writes', async () => {
    const server = await startServer()
    try {
      expect((await request(`${server.url}/readyz`)).status).toBe(200)
      // A file where the folder was: no write can succeed, even for root.
      rmSync(server.dir, { recursive: true })
      writeFileSync(server.dir, '')
      const res = await request(`${server.url}/readyz`)
      expect(res.status).toBe(503)
      expect(JSON.parse(res.body.toString()).reason).toMatch(/ENOTDIR/)
      expect((await request(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      rmSync(server.dir, { force: true })
      await server.stop()
    }
  })
})
