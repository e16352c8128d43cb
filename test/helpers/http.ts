import { createHash } from 'node:crypto'
import http from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  /** Interim (1xx) responses before the final one, such as 104 Upload Resumption Supported. */
  informational: Array<{ status: number; headers: http.IncomingHttpHeaders }>
}

/** One plain HTTP request on a fresh connection, with exactly the headers given (fetch adds and forbids some). */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const informational: RawResponse['informational'] = []
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), informational }))
      res.on('error', reject)
    })
    req.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }))
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${options.method} ${url}`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

export const TUS = { 'Tus-Resumable': '1.0.0' }
export const OFFSET_STREAM = { ...TUS, 'Content-Type': 'application/offset+octet-stream' }

/** Creates an upload and returns its URL. */
export async function createUpload(base: string, headers: Record<string, string | number> = { 'Upload-Length': 10 }): Promise<string> {
  const res = await request(`${base}/files`, { method: 'POST', headers: { ...TUS, ...headers } })
  if (res.status !== 201 || !res.headers.location) throw new Error(`create failed: ${res.status} ${res.body}`)
  return new URL(res.headers.location, base).toString()
}

export function patch(url: string, offset: number, body: Buffer | string, headers: Record<string, string | number> = {}) {
  return request(url, { method: 'PATCH', headers: { ...OFFSET_STREAM, 'Upload-Offset': offset, ...headers }, body })
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex')

/** SHA-256 of a download streamed from the server, without holding it in memory. */
export function sha256OfDownload(url: string): Promise<{ status: number; sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        const hash = createHash('sha256')
        let bytes = 0
        res.on('data', (c: Buffer) => {
          bytes += c.length
          hash.update(c)
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: hash.digest('hex'), bytes }))
        res.on('error', reject)
      })
      .on('error', reject)
  })
}

/** Deterministic pseudo-random bytes, so a failure can be reproduced. */
export function randomData(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out.writeUInt32LE(x >>> 0, Math.min(i, size - 4))
  }
  return out
}

export interface PacedPatchResult {
  status: number
  offset?: string
  headers?: http.IncomingHttpHeaders
  body?: string
  error?: string
}

/**
 * A raw PATCH (or `method`: a POST with a body; no Upload-Offset when `offset` is undefined) that sends its headers at once (tus ones, then `headers`), waits `holdMs`, then writes the
 * body `piece` bytes at a time with `delayMs` between pieces. It stops writing as soon as a response
 * arrives, and resolves with status 0 if the connection ends without one.
 */
export function pacedPatch(
  url: string,
  offset: number | undefined,
  body: Buffer,
  {
    piece,
    delayMs,
    holdMs,
    headers = {},
    method = 'PATCH',
  }: { piece: number; delayMs: number; holdMs: number; headers?: Record<string, string>; method?: string },
): Promise<PacedPatchResult> {
  return new Promise((resolve) => {
    let settled = false
    const finish = (result: PacedPatchResult) => {
      if (settled) return
      settled = true
      resolve(result)
      req.destroy()
    }
    const req = http.request(url, {
      method,
      agent: false,
      headers: { ...OFFSET_STREAM, ...(offset === undefined ? {} : { 'Upload-Offset': offset }), 'Content-Length': body.length, ...headers },
    })
    let response: PacedPatchResult | undefined
    req.on('response', (res) => {
      response = { status: res.statusCode ?? 0, offset: res.headers['upload-offset'] as string | undefined, headers: res.headers, body: '' }
      res.setEncoding('utf8')
      res.on('data', (text: string) => ((response as PacedPatchResult).body += text))
      res.on('end', () => finish(response as PacedPatchResult))
      res.on('error', () => finish(response as PacedPatchResult))
    })
    req.on('error', (error) => finish(response ?? { status: 0, error: error.message }))
    req.on('close', () => finish(response ?? { status: 0, error: 'closed without a response' }))
    req.setTimeout(20_000, () => req.destroy(new Error('timeout')))
    req.flushHeaders()
    void (async () => {
      await sleep(holdMs)
      for (let at = 0; at < body.length && !settled; at += piece) {
        req.write(body.subarray(at, at + piece))
        await sleep(delayMs)
      }
      if (!settled) req.end()
    })()
  })
}
