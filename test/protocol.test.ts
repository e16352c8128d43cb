import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { createUpload, OFFSET_STREAM, patch, request, sha256, TUS } from './helpers/http.js'
import { startServer, useServer } from './helpers/servers.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')

describe('tus 1.0.0 core and extensions over HTTP', () => {
  const server = useServer({ MAX_SIZE: '1MB' })

  describe('OPTIONS', () => {
    test('advertises version, extensions and max size without requiring Tus-Resumable', async () => {
      const res = await request(`${server.url}/files`, { method: 'OPTIONS' })
      expect(res.status).toBe(200)
      expect(res.headers['tus-version']).toBe('1.0.0')
      expect(res.headers['tus-resumable']).toBe('1.0.0')
      expect(res.headers['tus-max-size']).toBe(String(1_048_576))
      expect((res.headers['tus-extension'] as string).split(',').sort()).toEqual(
        [
          'checksum',
          'checksum-trailer',
          'concatenation',
          'concatenation-unfinished',
          'creation',
          'creation-defer-length',
          'creation-with-upload',
          'expiration',
          'termination',
        ].sort(),
      )
    })
  })

  describe('creation', () => {
    test('POST answers 201 with a Location whose HEAD shows offset 0, length and metadata', async () => {
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': 5, 'Upload-Metadata': `filename ${b64('a.txt')},empty` },
      })
      expect(res.status).toBe(201)
      expect(res.headers['tus-resumable']).toBe('1.0.0')
      const location = new URL(res.headers.location as string, server.url).toString()
      expect(location).toMatch(/\/files\/[0-9a-f]{32}$/)
      const head = await request(location, { method: 'HEAD', headers: TUS })
      expect(head.status).toBe(200)
      expect(head.headers['upload-offset']).toBe('0')
      expect(head.headers['upload-length']).toBe('5')
      expect(head.headers['cache-control']).toBe('no-store')
      expect((head.headers['upload-metadata'] as string).split(',').sort()).toEqual(['empty', `filename ${b64('a.txt')}`])
    })

    test('Upload-Length above MAX_SIZE answers 413 and creates nothing', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1_048_577 } })
      expect(res.status).toBe(413)
    })

    test('neither or both of Upload-Length and Upload-Defer-Length answer 400', async () => {
      expect((await request(`${server.url}/files`, { method: 'POST', headers: TUS })).status).toBe(400)
      const both = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': 5, 'Upload-Defer-Length': 1 },
      })
      expect(both.status).toBe(400)
    })

    test('a zero-length upload is finished at once and downloads empty', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 0 })
      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.headers['upload-offset']).toBe('0')
      const get = await request(url)
      expect(get.status).toBe(200)
      expect(get.body.length).toBe(0)
    })
  })

  describe('creation-with-upload', () => {
    test('POST with a body stores it and answers its Upload-Offset', async () => {
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, 'Upload-Length': 10 },
        body: 'hello',
      })
      expect(res.status).toBe(201)
      expect(res.headers['upload-offset']).toBe('5')
      const url = new URL(res.headers.location as string, server.url).toString()
      expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('5')
    })

    test('a body with the wrong Content-Type answers 415 and creates no upload', async () => {
      const before = server.logs.filter((l) => l.message === 'upload created').length
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': 10, 'Content-Type': 'text/plain' },
        body: 'hello',
      })
      expect(res.status).toBe(415)
      expect(server.logs.filter((l) => l.message === 'upload created').length).toBe(before)
    })
  })

  describe('core PATCH', () => {
    test('appends at the offset, answers 204 with the new offset, and completes the upload', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 11 })
      const first = await patch(url, 0, 'hello')
      expect(first.status).toBe(204)
      expect(first.headers['upload-offset']).toBe('5')
      expect(first.headers['tus-resumable']).toBe('1.0.0')
      const second = await patch(url, 5, ' world')
      expect(second.status).toBe(204)
      expect(second.headers['upload-offset']).toBe('11')
      const get = await request(url)
      expect(get.body.toString()).toBe('hello world')
    })

    test('an offset mismatch answers 409 with the current Upload-Offset and changes nothing', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 10 })
      await patch(url, 0, 'abc')
      const res = await patch(url, 1, 'zzz')
      expect(res.status).toBe(409)
      expect(res.headers['upload-offset']).toBe('3')
      const id = url.split('/').pop() as string
      expect(readFileSync(path.join(server.dir, id)).toString()).toBe('abc')
    })

    test('a missing Content-Type answers 415, a wrong one 415', async () => {
      const url = await createUpload(server.url)
      const missing = await request(url, { method: 'PATCH', headers: { ...TUS, 'Upload-Offset': 0 }, body: 'x' })
      expect(missing.status).toBe(415)
      const wrong = await patch(url, 0, 'x', { 'Content-Type': 'application/octet-stream' })
      expect(wrong.status).toBe(415)
    })

    test('a missing Upload-Offset is refused with a 4xx', async () => {
      const url = await createUpload(server.url)
      const res = await request(url, { method: 'PATCH', headers: OFFSET_STREAM, body: 'x' })
      expect(res.status).toBeGreaterThanOrEqual(400)
      expect(res.status).toBeLessThan(500)
    })

    test('a body past Upload-Length answers 413 and stores nothing', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 4 })
      const res = await patch(url, 0, 'too long')
      expect(res.status).toBe(413)
      expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('0')
    })

    test('PATCH to an unknown upload answers 404', async () => {
      const res = await patch(`${server.url}/files/${'0'.repeat(32)}`, 0, 'x')
      expect(res.status).toBe(404)
    })
  })

  describe('Tus-Resumable', () => {
    test.each(['POST', 'HEAD', 'PATCH', 'DELETE'])('%s without it answers 412 with Tus-Version', async (method) => {
      const url = method === 'POST' ? `${server.url}/files` : await createUpload(server.url)
      const res = await request(url, { method, headers: { 'Upload-Length': 1 } })
      expect(res.status).toBe(412)
      expect(res.headers['tus-version']).toBe('1.0.0')
    })

    test('an unsupported version answers 412 (not 400) with Tus-Version', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { 'Tus-Resumable': '0.2.2', 'Upload-Length': 1 } })
      expect(res.status).toBe(412)
      expect(res.headers['tus-version']).toBe('1.0.0')
    })
  })

  describe('X-HTTP-Method-Override', () => {
    test('a POST overridden to PATCH appends; to DELETE terminates; to HEAD reads the offset', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 3 })
      const patched = await request(url, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, 'Upload-Offset': 0, 'X-HTTP-Method-Override': 'PATCH' },
        body: 'ab',
      })
      expect(patched.status).toBe(204)
      expect(patched.headers['upload-offset']).toBe('2')
      const head = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'HEAD' } })
      expect(head.headers['upload-offset']).toBe('2')
      const deleted = await request(url, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'DELETE' } })
      expect(deleted.status).toBe(204)
      expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
    })

    test('an override naming no tus method answers 400', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'X-HTTP-Method-Override': 'TRACE' } })
      expect(res.status).toBe(400)
    })
  })

  describe('creation-defer-length', () => {
    test('the length is declared by a later PATCH and HEAD shows Upload-Defer-Length until then', async () => {
      const url = await createUpload(server.url, { 'Upload-Defer-Length': 1 })
      const head = await request(url, { method: 'HEAD', headers: TUS })
      expect(head.headers['upload-defer-length']).toBe('1')
      expect(head.headers['upload-length']).toBeUndefined()
      expect((await patch(url, 0, 'abc')).headers['upload-offset']).toBe('3')
      const last = await patch(url, 3, 'de', { 'Upload-Length': 5 })
      expect(last.status).toBe(204)
      const after = await request(url, { method: 'HEAD', headers: TUS })
      expect(after.headers['upload-length']).toBe('5')
      expect((await request(url)).body.toString()).toBe('abcde')
    })

    test('Upload-Defer-Length other than 1 answers 400', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Defer-Length': 2 } })
      expect(res.status).toBe(400)
    })
  })

  describe('termination', () => {
    test('DELETE answers 204, removes the bytes, and the upload is gone', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 3 })
      await patch(url, 0, 'ab')
      const id = url.split('/').pop() as string
      expect(existsSync(path.join(server.dir, id))).toBe(true)
      const res = await request(url, { method: 'DELETE', headers: TUS })
      expect(res.status).toBe(204)
      expect(existsSync(path.join(server.dir, id))).toBe(false)
      expect((await request(url, { method: 'HEAD', headers: TUS })).status).toBe(404)
      expect((await patch(url, 2, 'c')).status).toBe(404)
    })
  })

  describe('expiration', () => {
    test('POST, PATCH and HEAD of an unfinished upload carry Upload-Expires in RFC 7231 format', async () => {
      const res = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 4 } })
      const expires = res.headers['upload-expires'] as string
      expect(expires).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/)
      const hoursAhead = (Date.parse(expires) - Date.now()) / 3_600_000
      expect(hoursAhead).toBeGreaterThan(23.9)
      expect(hoursAhead).toBeLessThanOrEqual(24)
      const url = new URL(res.headers.location as string, server.url).toString()
      expect((await patch(url, 0, 'ab')).headers['upload-expires']).toBe(expires)
      expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-expires']).toBe(expires)
      await patch(url, 2, 'cd')
      expect((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-expires']).toBeUndefined()
    })
  })

  describe('GET downloads', () => {
    test('a finished upload downloads with its type, a sanitized disposition, and ranges', async () => {
      const body = 'range me please'
      const url = await createUpload(server.url, {
        'Upload-Length': body.length,
        'Upload-Metadata': `filename ${b64('evil"\r\nX-Injected: 1.txt')},filetype ${b64('text/plain')}`,
      })
      await patch(url, 0, body)
      const whole = await request(url)
      expect(whole.status).toBe(200)
      expect(sha256(whole.body)).toBe(sha256(body))
      expect(whole.headers['content-type']).toBe('text/plain')
      expect(whole.headers['x-injected']).toBeUndefined()
      const disposition = whole.headers['content-disposition'] as string
      expect(disposition).toMatch(/^inline; filename="evil\\"\?\?X-Injected: 1\.txt"; filename\*=UTF-8''evil%22%0D%0AX-Injected/)
      expect(disposition).not.toMatch(/[\r\n]/)
      const part = await request(url, { headers: { Range: 'bytes=6-7' } })
      expect(part.status).toBe(206)
      expect(part.body.toString()).toBe('me')
      expect(part.headers['content-range']).toBe(`bytes 6-7/${body.length}`)
      const tail = await request(url, { headers: { Range: 'bytes=-6' } })
      expect(tail.body.toString()).toBe('please')
      const bad = await request(url, { headers: { Range: 'bytes=100-200' } })
      expect(bad.status).toBe(416)
      expect(bad.headers['content-range']).toBe(`bytes */${body.length}`)
    })

    test('HTML is served as an attachment, never inline', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 3, 'Upload-Metadata': `filetype ${b64('text/html')}` })
      await patch(url, 0, '<b>')
      const res = await request(url)
      expect(res.headers['content-type']).toBe('text/html')
      expect(res.headers['content-disposition']).toBe('attachment')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
    })

    test('an unfinished or unknown upload answers 404', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 3 })
      expect((await request(url)).status).toBe(404)
      expect((await request(`${server.url}/files/${'a'.repeat(32)}`)).status).toBe(404)
    })
  })

  describe('health, request ids and logs', () => {
    test('/healthz and /readyz answer 200', async () => {
      expect((await request(`${server.url}/healthz`)).status).toBe(200)
      const ready = await request(`${server.url}/readyz`)
      expect(ready.status).toBe(200)
      expect(JSON.parse(ready.body.toString()).status).toBe('ready')
    })

    test('a request id is returned, a plain client id is kept, and the log line has the fields', async () => {
      const url = await createUpload(server.url, { 'Upload-Length': 4 })
      const res = await patch(url, 0, 'abcd', { 'X-Request-Id': 'trace-123' })
      expect(res.headers['x-request-id']).toBe('trace-123')
      const generated = await request(url, { method: 'HEAD', headers: { ...TUS, 'X-Request-Id': 'bad id with spaces' } })
      expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
      const line = server.logs.find((l) => l.message === 'request' && l.requestId === 'trace-123')
      expect(line).toMatchObject({
        method: 'PATCH',
        path: new URL(url).pathname,
        status: 204,
        uploadId: url.split('/').pop(),
        bytes: 4,
      })
      expect(typeof line?.durationMs).toBe('number')
      expect(server.logs.some((l) => l.message === 'upload finished' && l.uploadId === url.split('/').pop())).toBe(true)
    })
  })
})

describe('failures inside a store', () => {
  const server = useServer()

  test('answer 500 without internals and are logged with the request and upload ids', async () => {
    const url = await createUpload(server.url, { 'Upload-Length': 4 })
    const { datastore } = server.app.store
    const write = datastore.write
    // Fault injection on the real store: the disk failing mid-write.
    datastore.write = async () => {
      throw new Error('disk on fire')
    }
    try {
      const res = await patch(url, 0, 'abcd', { 'X-Request-Id': 'fault-1' })
      expect(res.status).toBe(500)
      expect(res.body.toString()).not.toMatch(/fire/)
    } finally {
      datastore.write = write
    }
    const id = url.split('/').pop()
    const error = server.logs.find((l) => l.level === 'error' && l.requestId === 'fault-1')
    expect(error).toMatchObject({ uploadId: id })
    expect(JSON.stringify(error)).toMatch(/disk on fire/)
    expect((await patch(url, 0, 'abcd')).status).toBe(204)
  })
})

describe('Location behind a proxy', () => {
  test.each([
    ['1', 'https://uploads.example.com/files/'],
    ['false', 'http://127.0.0.1:'],
  ])('TRUST_PROXY=%s builds Location from %s', async (trust, prefix) => {
    const server = await startServer({ TRUST_PROXY: trust })
    try {
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...TUS, 'Upload-Length': 1, 'X-Forwarded-Host': 'uploads.example.com', 'X-Forwarded-Proto': 'https' },
      })
      expect(res.status).toBe(201)
      expect(res.headers.location?.startsWith(prefix)).toBe(true)
    } finally {
      await server.stop()
    }
  })
})

describe('CORS with an origin list', () => {
  const server = useServer({ CORS_ORIGINS: 'https://app.example.com' })

  test('an allowed origin is echoed, on tus responses and on early rejections alike', async () => {
    const origin = { Origin: 'https://app.example.com' }
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, ...origin, 'Upload-Length': 1 } })
    expect(created.headers['access-control-allow-origin']).toBe('https://app.example.com')
    expect(created.headers['access-control-expose-headers']).toMatch(/Upload-Offset/)
    expect(created.headers['access-control-expose-headers']).toMatch(/Upload-Expires/)
    const rejected = await request(`${server.url}/files`, { method: 'POST', headers: { ...origin, 'Upload-Length': 1 } })
    expect(rejected.status).toBe(412)
    expect(rejected.headers['access-control-allow-origin']).toBe('https://app.example.com')
    const other = await request(`${server.url}/files`, { method: 'POST', headers: { Origin: 'https://evil.example', 'Upload-Length': 1 } })
    expect(other.headers['access-control-allow-origin']).toBeUndefined()
  })
})
