import { readdirSync } from 'node:fs'
import net from 'node:net'
import { OFFSET_STREAM, TUS } from './http.js'

/** Every path below a folder, so that a stray file anywhere shows up. */
export function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()
}

/** Sends bytes as they are (for requests no HTTP client would form) and returns the status code. */
export function rawStatus(port: number, text: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')))
    socket.on('data', (c) => {
      reply += c.toString('latin1')
      const match = /^HTTP\/1\.1 (\d{3})/.exec(reply)
      if (match) {
        resolve(Number(match[1]))
        socket.destroy()
      }
    })
    socket.on('error', reject)
    socket.on('close', () => reject(new Error(`no status line in: ${reply}`)))
    socket.end(text)
  })
}

export type BadRequest = {
  name: string
  expect: number
  method?: string
  path?: string
  headers?: Record<string, string | number>
  body?: string
  raw?: string
}

export const ZERO_ID = '0'.repeat(32)

/**
 * Requests no well-behaved client sends, each with the status it must get from a server started with
 * MAX_SIZE=1MB: a request without `path` goes to an upload of length 10 at offset 0.
 */
export function badRequests(): BadRequest[] {
  const post = (headers: Record<string, string | number>): Partial<BadRequest> => ({ method: 'POST', path: '/files', headers: { ...TUS, ...headers } })
  const patchAt = (headers: Record<string, string | number>, body = 'x'): Partial<BadRequest> => ({
    method: 'PATCH',
    headers: { ...OFFSET_STREAM, ...headers },
    body,
  })

  return [
    { name: 'negative Upload-Length', expect: 400, ...post({ 'Upload-Length': -1 }) },
    { name: 'non-numeric Upload-Length', expect: 400, ...post({ 'Upload-Length': 'abc' }) },
    { name: 'exponent Upload-Length', expect: 400, ...post({ 'Upload-Length': '1e3' }) },
    { name: 'huge Upload-Length', expect: 400, ...post({ 'Upload-Length': '99999999999999999999' }) },
    { name: 'Upload-Length past 2^53', expect: 400, ...post({ 'Upload-Length': '9007199254740993' }) },
    { name: 'Upload-Length above MAX_SIZE', expect: 413, ...post({ 'Upload-Length': 2 * 1024 * 1024 }) },
    { name: 'both Upload-Length and Upload-Defer-Length', expect: 400, ...post({ 'Upload-Length': 5, 'Upload-Defer-Length': 1 }) },
    { name: 'Upload-Defer-Length 0', expect: 400, ...post({ 'Upload-Defer-Length': 0 }) },
    { name: 'Upload-Concat neither partial nor final', expect: 400, ...post({ 'Upload-Length': 1, 'Upload-Concat': 'whole' }) },
    {
      name: 'creation body past Upload-Length (nothing created)',
      expect: 413,
      ...post({ 'Upload-Length': 2, 'Content-Type': 'application/offset+octet-stream' }),
      body: 'xxxx',
    },
    { name: 'metadata value not base64', expect: 400, ...post({ 'Upload-Length': 1, 'Upload-Metadata': 'name !!!' }) },
    { name: 'metadata with duplicate keys', expect: 400, ...post({ 'Upload-Length': 1, 'Upload-Metadata': 'a YQ==,a Yg==' }) },
    { name: 'metadata pair with three parts', expect: 400, ...post({ 'Upload-Length': 1, 'Upload-Metadata': 'a YQ== extra' }) },
    { name: 'oversized metadata', expect: 400, ...post({ 'Upload-Length': 1, 'Upload-Metadata': `big ${'QUFB'.repeat(1500)}` }) },
    { name: 'unsupported Tus-Resumable', expect: 412, ...post({ 'Tus-Resumable': '2.0.0', 'Upload-Length': 1 }) },
    { name: 'method override naming no tus method', expect: 400, ...post({ 'X-HTTP-Method-Override': 'CONNECT', 'Upload-Length': 1 }) },
    { name: 'negative Upload-Offset', expect: 400, ...patchAt({ 'Upload-Offset': -1 }) },
    { name: 'non-numeric Upload-Offset', expect: 400, ...patchAt({ 'Upload-Offset': 'zero' }) },
    { name: 'huge Upload-Offset', expect: 400, ...patchAt({ 'Upload-Offset': '99999999999999999999' }) },
    { name: 'offset ahead of the upload', expect: 409, ...patchAt({ 'Upload-Offset': 5 }) },
    { name: 'PATCH past Upload-Length', expect: 413, ...patchAt({ 'Upload-Offset': 0 }, 'x'.repeat(11)) },
    { name: 'Upload-Length on an upload that has one', expect: 400, ...patchAt({ 'Upload-Offset': 0, 'Upload-Length': 20 }) },
    { name: 'PATCH with text/plain', expect: 415, ...patchAt({ 'Upload-Offset': 0, 'Content-Type': 'text/plain' }) },
    { name: 'PATCH of an unknown id', expect: 404, ...patchAt({ 'Upload-Offset': 0 }), path: `/files/${ZERO_ID}` },
    { name: 'id in upper case', expect: 404, method: 'HEAD', headers: TUS, path: `/files/${ZERO_ID.toUpperCase()}` },
    { name: 'raw path traversal', expect: 404, method: 'HEAD', headers: TUS, path: '/files/../../etc/passwd' },
    { name: 'encoded path traversal', expect: 404, method: 'HEAD', headers: TUS, path: '/files/..%2F..%2Fetc%2Fpasswd' },
    { name: 'encoded traversal in PATCH', expect: 404, ...patchAt({ 'Upload-Offset': 0 }), path: '/files/%2e%2e%2f%2e%2e%2fescaped' },
    { name: 'encoded traversal in DELETE', expect: 404, method: 'DELETE', headers: TUS, path: '/files/..%2fdata' },
    { name: 'encoded traversal in GET', expect: 404, method: 'GET', path: '/files/..%2F..%2Fetc%2Fpasswd' },
    { name: 'NUL byte in the id', expect: 404, method: 'HEAD', headers: TUS, path: `/files/${ZERO_ID.slice(1)}%00` },
    { name: 'extra path segment after the id', expect: 404, method: 'HEAD', headers: TUS, path: `/files/${ZERO_ID}/x` },
    { name: 'creation on an upload URL', expect: 405, method: 'POST', headers: { ...TUS, 'Upload-Length': 1 }, path: `/files/${ZERO_ID}` },
    { name: 'PATCH on the collection', expect: 405, ...patchAt({ 'Upload-Offset': 0 }), path: '/files' },
    { name: 'giant header', expect: 431, ...post({ 'Upload-Length': 1, 'X-Padding': 'p'.repeat(20_000) }) },
    {
      name: 'negative Content-Length',
      expect: 400,
      raw: 'POST /files HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\nContent-Length: -5\r\n\r\n',
    },
    {
      name: 'Content-Length and Transfer-Encoding together',
      expect: 400,
      raw: 'PATCH /files HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    },
    { name: 'malformed request line', expect: 400, raw: 'PATCH\r\n\r\n' },
  ]
}
