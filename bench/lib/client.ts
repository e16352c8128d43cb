import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import http from 'node:http'

// The Node client of the bench, the same for every server: Node http, the file streamed with
// fs.createReadStream piped into http.request, in reads of `readSize` bytes (64 KiB by default,
// fs.createReadStream's own; CLIENT_READ_SIZE changes the default).

const READ_SIZE = Number(process.env.CLIENT_READ_SIZE ?? 64 * 1024)

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  ms: number
}

export interface SendOptions {
  method: string
  headers?: Record<string, string | number>
  /** Streams bytes [start, start + length) of this file as the body. */
  file?: { path: string; start: number; length: number }
  agent?: http.Agent | false
  timeoutMs?: number
  /** Bytes per read of the file, each one write to the socket. */
  readSize?: number
}

export function send(url: string, { method, headers = {}, file, agent = false, timeoutMs = 300_000, readSize = READ_SIZE }: SendOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint()
    const all = { ...headers, 'Content-Length': file ? file.length : 0 }
    const req = http.request(url, { method, headers: all, agent }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms: Number(process.hrtime.bigint() - started) / 1e6 }))
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)))
    req.on('error', reject)
    if (!file || file.length === 0) {
      req.end()
      return
    }
    const source = createReadStream(file.path, { start: file.start, end: file.start + file.length - 1, highWaterMark: readSize })
    source.on('error', (error) => req.destroy(error))
    source.pipe(req)
  })
}

export const TUS = { 'Tus-Resumable': '1.0.0' }

/** POST /files: creates an upload of `length` bytes and returns its absolute URL. */
export async function tusCreate(endpoint: string, length: number, agent: http.Agent | false = false): Promise<{ url: string; ms: number }> {
  const res = await send(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': length }, agent })
  if (res.status !== 201 || !res.headers.location) throw new Error(`POST ${endpoint}: ${res.status} ${res.body}`)
  return { url: new URL(res.headers.location, endpoint).toString(), ms: res.ms }
}

/** One PATCH at offset 0 carrying the whole file slice; throws unless 204 with the full offset. */
export async function tusPatch(
  url: string,
  file: { path: string; start: number; length: number },
  agent: http.Agent | false = false,
  readSize?: number,
): Promise<Reply> {
  const res = await send(url, {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': 0 },
    file,
    agent,
    readSize,
  })
  if (res.status !== 204 || Number(res.headers['upload-offset']) !== file.length) {
    throw new Error(`PATCH ${url}: ${res.status} offset ${res.headers['upload-offset']} ${res.body}`)
  }
  return res
}

export const idOf = (url: string) => new URL(url).pathname.split('/').pop() as string

/** SHA-256 of bytes [start, start + length) of a file (the whole file by default), streamed. */
export function sha256File(path: string, start = 0, length?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    const stream = createReadStream(path, { start, end: length === undefined ? undefined : start + length - 1, highWaterMark: 1 << 20 })
    stream.on('data', (c) => hash.update(c))
    stream.on('end', () => resolve(hash.digest('hex')))
    stream.on('error', reject)
  })
}
