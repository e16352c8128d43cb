// Hostile input against tusgate as its own process (issue 13): each request is answered 4xx, or 429/503
// where the service protects itself; the server stays up; FILE_DIR holds nothing but what was accepted;
// another user's upload keeps its bytes and offset.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { badRequests, rawStatus, tree } from './helpers/badRequests.js'
import { createUpload, patch, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { processPool, type ServerProcess } from './helpers/servers.js'

const pool = processPool('tusgate-hostile-')
afterEach(() => pool.cleanup())

interface Exchange {
  status: number
  headers: Record<string, string>
  body: string
}

/**
 * Bytes sent as they are on a fresh connection (from `localAddress`, a loopback address standing for
 * another client); resolves with the response, or status 0 when none came within `waitMs`.
 */
function exchange(port: number, text: string | Buffer, { localAddress = '127.0.0.1', waitMs = 10_000 } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress })
    let reply = Buffer.alloc(0)
    const done = (result: Exchange) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(result)
    }
    const timer = setTimeout(() => done({ status: 0, headers: {}, body: '' }), waitMs)
    socket.on('data', (chunk) => {
      reply = Buffer.concat([reply, chunk])
      const end = reply.indexOf('\r\n\r\n')
      if (end < 0) return
      const [statusLine, ...lines] = reply.subarray(0, end).toString('latin1').split('\r\n')
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
      const length = Number(headers['content-length'] ?? 0)
      if (reply.length - end - 4 < length) return
      done({ status: Number(statusLine.split(' ')[1]), headers, body: reply.subarray(end + 4, end + 4 + length).toString() })
    })
    socket.on('error', reject)
    socket.write(text)
  })
}

/** A PATCH that sends its headers and the first byte of a 1000-byte body, then nothing: it holds its socket and the upload's file. */
function trickle(port: number, id: string, localAddress: string): { socket: net.Socket; answer: Promise<Exchange> } {
  const socket = net.connect({ port, host: '127.0.0.1', localAddress })
  socket.on('error', () => {})
  let reply = ''
  const answer = new Promise<Exchange>((resolve) => {
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      const head = reply.split('\r\n\r\n')[0]
      if (!reply.includes('\r\n\r\n')) return
      const headers = Object.fromEntries(
        head
          .split('\r\n')
          .slice(1)
          .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      )
      resolve({ status: Number(head.split(' ')[1]), headers, body: reply.slice(head.length + 4) })
    })
    socket.on('close', () => resolve({ status: 0, headers: {}, body: '' }))
  })
  socket.write(
    `PATCH /files/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n` +
      'Upload-Offset: 0\r\nContent-Length: 1000\r\n\r\nx',
  )
  return { socket, answer }
}

/** Whether `answer` settles within `ms`. */
const settlesWithin = async (answer: Promise<unknown>, ms: number) => (await Promise.race([answer.then(() => true), sleep(ms, false)])) as boolean

const idOf = (url: string) => url.slice(url.lastIndexOf('/') + 1)

/** Another user's upload: its bytes and offset must not move whatever the others send. */
async function victim(base: string) {
  const url = await createUpload(base, { 'Upload-Length': 4 })
  expect((await patch(url, 0, 'mine')).status).toBe(204)
  return {
    url,
    async untouched() {
      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.headers['upload-offset']).toBe('4')
      expect((await request(url)).body.toString()).toBe('mine')
    },
  }
}

/** The server's log has no error line (no 500, no crash). */
const noErrors = (server: ServerProcess) =>
  expect(
    server
      .output()
      .split('\n')
      .filter((line) => line.includes('"level":"error"')),
  ).toEqual([])

describe('malformed and hostile requests', () => {
  const BUILTINS = ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']
  const b64 = (text: string) => Buffer.from(text).toString('base64')

  test('each is refused with a 4xx, and only what was accepted reaches FILE_DIR', async () => {
    const dir = pool.newDir()
    const server = await pool.launch(dir, { MAX_SIZE: '1MB' })
    const mine = await victim(server.url)
    const upload = new URL(await createUpload(server.url, { 'Upload-Length': 10 })).pathname
    const before = tree(dir)

    for (const c of badRequests()) {
      const status = c.raw
        ? await rawStatus(server.port, c.raw)
        : (await request(`${server.url}${c.path ?? upload}`, { method: c.method, headers: c.headers, body: c.body })).status
      expect({ name: c.name, status }).toEqual({ name: c.name, status: c.expect })
    }
    expect((await request(`${server.url}/healthz`)).status).toBe(200)
    expect(tree(dir)).toEqual(before)
    expect((await request(`${server.url}${upload}`, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('0')
    await mine.untouched()
    noErrors(server)
  })

  test('Upload-Metadata keys named like object built-ins are ordinary keys: stored, shown by HEAD, never a 500', async () => {
    const server = await pool.launch(pool.newDir(), { ALLOWED_TYPES: 'text/*' })
    for (const keys of [...BUILTINS.map((key) => [key]), BUILTINS]) {
      const header = ['filetype dGV4dC9wbGFpbg==', ...keys.map((key) => `${key} ${b64(`value of ${key}`)}`)].join(',')
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3, 'Upload-Metadata': header } })
      expect({ keys, status: res.status }).toEqual({ keys, status: 201 })
      const url = new URL(res.headers.location as string, server.url).toString()
      const head = await request(url, { method: 'HEAD', headers: TUS })
      const shown = Object.fromEntries(
        String(head.headers['upload-metadata'])
          .split(',')
          .map((pair) => [pair.split(' ')[0], Buffer.from(pair.split(' ')[1] ?? '', 'base64').toString()]),
      )
      for (const key of keys) expect(Object.hasOwn(shown, key) && shown[key]).toBe(`value of ${key}`)
      expect((await patch(url, 0, 'abc')).status).toBe(204)
      expect((await sha256OfDownload(url)).sha).toBe(sha256('abc'))
    }
    // The same keys in an IETF draft creation, and a key without a value.
    const ietf = await request(`${server.url}/files`, {
      method: 'POST',
      headers: {
        'Upload-Draft-Interop-Version': '6',
        'Upload-Complete': '?1',
        'Content-Type': 'text/plain',
        'Upload-Metadata': `${BUILTINS.join(' dg==,')} dg==`,
      },
      body: 'abc',
    })
    expect(ietf.status).toBeLessThan(300)
    expect(
      (
        await request(`${server.url}/files`, {
          method: 'POST',
          headers: { ...TUS, 'Upload-Length': 1, 'Upload-Metadata': 'filetype dGV4dC9wbGFpbg==,__proto__' },
        })
      ).status,
    ).toBe(201)
    // Still refused as before: a key given twice.
    expect(
      (await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1, 'Upload-Metadata': 'toString YQ==,toString Yg==' } }))
        .status,
    ).toBe(400)
    noErrors(server)
  })

  test('an HTTP/1.0 creation without Host, or with a malformed one, gets a relative Location that works', async () => {
    const server = await pool.launch(pool.newDir())
    for (const host of [undefined, '[', 'a b', 'x:99999999', '%zz', 'evil.example/path']) {
      const res = await exchange(
        server.port,
        `POST /files HTTP/1.${host === undefined ? 0 : 1}\r\n${host === undefined ? '' : `Host: ${host}\r\n`}Tus-Resumable: 1.0.0\r\nUpload-Length: 2\r\nConnection: close\r\n\r\n`,
      )
      expect({ host, status: res.status }).toEqual({ host, status: 201 })
      expect(res.headers.location).toMatch(/^\/files\/[0-9a-f]{32}$/)
      expect((await patch(new URL(res.headers.location, server.url).toString(), 0, 'ok')).status).toBe(204)
    }
    noErrors(server)
  })

  test('Forwarded and X-Forwarded-* from a client that is no trusted proxy do not steer Location', async () => {
    const server = await pool.launch(pool.newDir(), { TRUST_PROXY: '127.0.0.2' })
    const forged = { 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https', Forwarded: 'host=evil.example;proto=https' }
    const post = (from: string, headers: Record<string, string>) =>
      exchange(
        server.port,
        `POST /files HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('')}\r\n`,
        { localAddress: from },
      )
    const direct = await post('127.0.0.1', forged)
    expect(direct.status).toBe(201)
    expect(direct.headers.location).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/files/[0-9a-f]{32}$`))
    // From the trusted proxy: its X-Forwarded-Host and -Proto count (the last value, its own); Forwarded never.
    const proxied = await post('127.0.0.2', {
      'X-Forwarded-Host': 'evil.example, uploads.example.com:8443',
      'X-Forwarded-Proto': 'https',
      Forwarded: 'host=evil.example',
    })
    expect(proxied.headers.location).toMatch(/^https:\/\/uploads\.example\.com:8443\/files\/[0-9a-f]{32}$/)
    const forwardedOnly = await post('127.0.0.2', { Forwarded: 'host=evil.example;proto=https' })
    expect(forwardedOnly.headers.location).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/files/`))
  })

  test('with PUBLIC_URL, Location is built from it whatever the request says', async () => {
    const server = await pool.launch(pool.newDir(), { PUBLIC_URL: 'https://uploads.example.com/base/', TRUST_PROXY: '1' })
    const res = await request(`${server.url}/files`, {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': 1, Host: 'evil.example', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'http' },
    })
    expect(res.status).toBe(201)
    expect(res.headers.location).toMatch(/^https:\/\/uploads\.example\.com\/base\/files\/[0-9a-f]{32}$/)
    const bare = await exchange(server.port, 'POST /files HTTP/1.0\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n\r\n')
    expect(bare.headers.location).toMatch(/^https:\/\/uploads\.example\.com\/base\/files\/[0-9a-f]{32}$/)
  })
})

describe('chunked framing of tiny chunks', () => {
  /** A chunked PATCH at offset 0 whose body is `data` framed in chunks of `size` bytes, sent as fast as the socket takes them. */
  const framed = (port: number, id: string, data: Buffer, size: number) => {
    const frames: Buffer[] = []
    for (let at = 0; at < data.length; at += size) {
      const piece = data.subarray(at, at + size)
      frames.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'))
    }
    const head = `PATCH /files/${id} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n`
    return exchange(port, Buffer.concat([Buffer.from(head), ...frames, Buffer.from('0\r\n\r\n')]))
  }

  test('a body of thousands of 1-byte chunks is refused with 400; larger chunks, and small ones that trickle, are stored', async () => {
    const server = await pool.launch(pool.newDir())
    const mine = await victim(server.url)
    const data = Buffer.alloc(256 * 1024, 'z')
    const ids = await Promise.all(Array.from({ length: 5 }, async () => idOf(await createUpload(server.url, { 'Upload-Length': data.length }))))
    const refused = await Promise.all(ids.slice(0, 4).map((id) => framed(server.port, id, data, 1)))
    for (const res of refused) {
      expect(res.status).toBe(400)
      expect(res.body).toMatch(/chunks average under 64 bytes/)
    }
    // The same bytes in 4 KiB chunks are taken whole.
    const ok = await framed(server.port, ids[4], data, 4096)
    expect(ok.status).toBe(204)
    expect((await sha256OfDownload(`${server.url}/files/${ids[4]}`)).sha).toBe(sha256(data))
    // A client that sends a few bytes now and then, each its own chunk, is no flood.
    const slow = Buffer.from('a few bytes at a time. '.repeat(40))
    const slowId = idOf(await createUpload(server.url, { 'Upload-Length': slow.length }))
    const paced = await new Promise<number>((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1')
      socket.on('error', reject)
      socket.on('data', (c) => {
        resolve(Number(c.toString('latin1').split(' ')[1]))
        socket.destroy()
      })
      socket.write(
        `PATCH /files/${slowId} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n`,
      )
      void (async () => {
        for (let at = 0; at < slow.length; at += 23) {
          socket.write(`17\r\n${slow.subarray(at, at + 23).toString()}\r\n`)
          await sleep(2)
        }
        socket.write('0\r\n\r\n')
      })()
    })
    expect(paced).toBe(204)
    expect((await request(`${server.url}/files/${slowId}`)).body.toString()).toBe(slow.toString())
    await mine.untouched()
    noErrors(server)
  })
})

/** A free TCP port on 127.0.0.1 (for nginx, which needs one in its config). */
async function freePort(): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as net.AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** nginx in front of `upstream` as the compose profile has it: X-Forwarded-For appended to, Host and Proto set. */
async function startNginx(dir: string, upstream: number): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort()
  const prefix = path.join(dir, 'nginx')
  mkdirSync(path.join(prefix, 'logs'), { recursive: true })
  writeFileSync(
    path.join(prefix, 'nginx.conf'),
    `daemon off;
user root;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://127.0.0.1:${upstream};
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Host $host:$server_port;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  )
  execFileSync('/usr/sbin/nginx', ['-t', '-p', prefix, '-c', 'nginx.conf'], { stdio: 'pipe' })
  const child: ChildProcess = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', 'nginx.conf'], { stdio: 'ignore' })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  for (let i = 0; i < 100; i++) {
    if (
      await request(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      break
    await sleep(50)
  }
  return {
    port,
    async stop() {
      child.kill('SIGTERM')
      await exited
    },
  }
}

describe('behind nginx with TRUST_PROXY=1', () => {
  test("the per-address creation limit counts the address nginx saw, whatever X-Forwarded-For a client sends; a client's Forwarded does not steer Location", async () => {
    const dir = pool.newDir()
    const server = await pool.launch(dir, { TRUST_PROXY: '1', CREATE_RATE_LIMIT_IP: '3/1m' })
    const nginx = await startNginx(dir, server.port)
    try {
      const create = (from: string, forged: string) =>
        exchange(
          nginx.port,
          `POST /files HTTP/1.1\r\nHost: 127.0.0.1:${nginx.port}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\n` +
            `X-Forwarded-For: ${forged}\r\nX-Forwarded-Host: evil.example\r\nForwarded: host=evil.example;proto=https\r\nConnection: close\r\n\r\n`,
          { localAddress: from },
        )
      const statuses: number[] = []
      for (let i = 0; i < 8; i++) {
        const res = await create('127.0.0.2', `203.0.113.${i + 1}`)
        statuses.push(res.status)
        if (res.status === 201) expect(res.headers.location).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${nginx.port}/files/[0-9a-f]{32}$`))
        else expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      }
      expect(statuses).toEqual([201, 201, 201, 429, 429, 429, 429, 429])
      // Another client, through the same proxy, has its own budget.
      expect((await create('127.0.0.3', '203.0.113.1')).status).toBe(201)
    } finally {
      await nginx.stop()
    }
  })
})

describe('request bodies per client address and in all (MAX_BODIES_PER_CLIENT, MAX_BODIES)', () => {
  test('trickled bodies beyond the limits are refused at once with Retry-After; others go on; the places come back', async () => {
    const dir = pool.newDir()
    const server = await pool.launch(dir, { MAX_BODIES_PER_CLIENT: '3', MAX_BODIES: '5', UPLOAD_IDLE_TIMEOUT: '30s' })
    const mine = await victim(server.url)
    const ids = await Promise.all(Array.from({ length: 8 }, async () => idOf(await createUpload(server.url, { 'Upload-Length': 1000 }))))
    const held = ids.slice(0, 3).map((id) => trickle(server.port, id, '127.0.0.2'))
    /** Until the server is writing `count` bodies (bounded): the held ones took their places, whatever order it accepted them in. */
    const writing = async (count: number) => {
      let metrics = ''
      for (let i = 0; i < 100 && !metrics.includes(`\ntusgate_uploads_in_progress ${count}\n`); i++) {
        await sleep(50)
        metrics = (await request(`${server.url}/metrics`)).body.toString()
      }
      expect(metrics).toContain(`\ntusgate_uploads_in_progress ${count}\n`)
    }
    /** The answer to one more trickle, which must come at once (it is not read). */
    const refusal = async (id: string, from: string) => {
      await writing(held.length)
      const { answer } = trickle(server.port, id, from)
      expect(await settlesWithin(answer, 5000)).toBe(true)
      const { status, headers } = await answer
      return { status, retryAfter: headers['retry-after'] }
    }
    expect(await refusal(ids[3], '127.0.0.2')).toEqual({ status: 429, retryAfter: '5' })
    held.push(...ids.slice(4, 6).map((id) => trickle(server.port, id, '127.0.0.3')))
    expect(await refusal(ids[6], '127.0.0.4')).toEqual({ status: 503, retryAfter: '5' })
    // The held ones are still being received; requests without a body are not counted.
    for (const { answer } of held) expect(await settlesWithin(answer, 10)).toBe(false)
    expect((await request(`${server.url}/files/${ids[0]}`, { method: 'HEAD', headers: TUS })).status).toBe(200)
    expect((await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1 } })).status).toBe(201)

    for (const { socket } of held) socket.destroy()
    let status = 0
    for (let i = 0; i < 50 && status !== 204; i++) {
      await sleep(100)
      status = (await patch(`${server.url}/files/${ids[7]}`, 0, 'y'.repeat(1000))).status
    }
    expect(status).toBe(204)
    // The refused ones wrote nothing; the held ones kept the byte they sent.
    expect((await request(`${server.url}/files/${ids[3]}`, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('0')
    expect((await request(`${server.url}/files/${ids[6]}`, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('0')
    await mine.untouched()
    noErrors(server)
  })

  test('under ulimit -n 256, 120 trickled bodies from two addresses leave a legitimate upload its place and file descriptors', async () => {
    const dir = pool.newDir()
    const server = await pool.launch(dir, { UPLOAD_IDLE_TIMEOUT: '30s' }, { openFiles: 256 })
    const mine = await victim(server.url)
    const ids = await Promise.all(Array.from({ length: 120 }, async () => idOf(await createUpload(server.url, { 'Upload-Length': 1000 }))))
    const trickles = ids.map((id, i) => trickle(server.port, id, `127.0.0.${2 + (i % 2)}`))
    let refused = 0
    for (const { answer } of trickles) void answer.then(() => refused++)
    try {
      // Bounded: until the refusals have come (the bodies were read in whatever order they were accepted).
      for (let i = 0; i < 200 && refused <= 60; i++) await sleep(50)
      const url = await createUpload(server.url, { 'Upload-Length': 5 })
      expect((await patch(url, 0, 'hello')).status).toBe(204)
      expect((await request(url)).body.toString()).toBe('hello')
      // Those beyond the limit per address (by default a quarter of what 256 descriptors allow) were told to come back.
      const answered = await Promise.all(trickles.map(({ answer }) => Promise.race([answer, sleep(10, undefined)])))
      const statuses = answered.filter((a): a is Exchange => a !== undefined).map((a) => a.status)
      expect(statuses.length).toBeGreaterThan(60)
      expect(new Set(statuses)).toEqual(new Set([429]))
      await mine.untouched()
      noErrors(server)
    } finally {
      for (const { socket } of trickles) socket.destroy()
    }
  })

  test('with the file descriptors spent, a creation is answered 503 with Retry-After, not 500', async () => {
    const dir = pool.newDir()
    const server = await pool.launch(dir, {}, { openFiles: 128 })
    const idle: net.Socket[] = []
    const seen: number[] = []
    try {
      // One more idle kept-alive connection (one descriptor) per round, until a creation is not made.
      for (let i = 0; i < 200; i++) {
        const res = await exchange(server.port, `POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\nConnection: close\r\n\r\n`, {
          waitMs: 3000,
        }).catch(() => ({ status: 0, headers: {} as Record<string, string>, body: '' }))
        seen.push(res.status)
        if (res.status === 503) expect(res.headers['retry-after']).toBe('5')
        if (res.status !== 201 && seen.includes(503)) break
        const socket = net.connect({ port: server.port, host: '127.0.0.1' })
        socket.on('error', () => {})
        await new Promise<void>((resolve) => {
          socket.once('data', () => resolve())
          socket.once('close', () => resolve())
          socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        })
        idle.push(socket)
      }
      expect(seen).toContain(503)
      expect(seen).not.toContain(500)
    } finally {
      for (const socket of idle) socket.destroy()
    }
    // The descriptors back, creations work again.
    let status = 0
    for (let i = 0; i < 50 && status !== 201; i++) {
      await sleep(100)
      status = (await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1 } }).catch(() => ({ status: 0 }))).status
    }
    expect(status).toBe(201)
    expect(server.output()).not.toContain('"level":"error"')
  })
})
