// The web page at / (Uppy from node_modules, no build step), its security headers, and GET /api/uploads.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ListedUpload } from '../server/web/index.js'
import type { StoreBackend } from '../stores/types.js'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { createUpload, OFFSET_STREAM, patch, randomData, request, sha256, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, useServer } from './helpers/servers.js'
import { bearer, hsTokens, TEST_SECRET } from './helpers/tokens.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const metadata = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([key, value]) => `${key} ${b64(value)}`)
    .join(',')

const uppyDir = path.join(path.dirname(createRequire(import.meta.url).resolve('uppy/package.json')), 'dist')

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

function expectSecurityHeaders(headers: Record<string, unknown>) {
  expect(headers).toMatchObject(SECURITY_HEADERS)
  const csp = String(headers['content-security-policy'])
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]) {
    expect(csp).toContain(directive)
  }
  expect(csp).not.toContain('unsafe-inline')
  expect(csp).not.toContain('unsafe-eval')
}

/** The URLs a page links: style sheets, module preloads and module scripts, and the root's data attributes. */
function linksOf(html: string) {
  const all = (re: RegExp) => [...html.matchAll(re)].map((m) => m[1])
  return {
    styles: all(/<link rel="stylesheet" href="([^"]+)">/g),
    preloads: all(/<link rel="modulepreload" href="([^"]+)">/g),
    scripts: all(/<script type="module" src="([^"]+)"><\/script>/g),
    endpoint: /data-endpoint="([^"]*)"/.exec(html)?.[1],
    uploads: /data-uploads="([^"]*)"/.exec(html)?.[1],
  }
}

type Listed = ListedUpload

async function listUploads(base: string): Promise<Listed[]> {
  const res = await request(`${base}/api/uploads`)
  expect(res.status).toBe(200)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  return (JSON.parse(res.body.toString()) as { uploads: Listed[] }).uploads
}

/** A finished upload of `data` (creation, then one PATCH), with a filename and type. */
async function finishedUpload(base: string, data: Buffer, filename: string, filetype = 'application/octet-stream') {
  const url = await createUpload(base, { 'Upload-Length': data.length, 'Upload-Metadata': metadata({ filename, filetype }) })
  if (data.length > 0) expect((await patch(url, 0, data)).status).toBe(204)
  // Creation dates have millisecond resolution: keep uploads apart so "newest first" is unambiguous.
  await sleep(3)
  return { url, id: url.split('/').pop() as string, data }
}

async function unfinishedUploads(base: string) {
  const half = await createUpload(base, { 'Upload-Length': 10, 'Upload-Metadata': metadata({ filename: 'half.bin' }) })
  expect((await patch(half, 0, 'abcde')).status).toBe(204)
  // A deferred length is no size at all: never finished.
  const deferred = await createUpload(base, { 'Upload-Defer-Length': 1, 'Upload-Metadata': metadata({ filename: 'deferred.bin' }) })
  expect((await patch(deferred, 0, 'abc')).status).toBe(204)
  await sleep(3)
  return [half, deferred].map((url) => url.split('/').pop() as string)
}

describe('web page (WEB_UI=true, the default)', () => {
  const server = useServer({ UPLOAD_LIST: 'true' })

  test('/ is HTML with the security headers, the tus endpoint and the listing as relative URLs', async () => {
    const res = await request(`${server.url}/`)
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-cache')
    expectSecurityHeaders(res.headers)
    const links = linksOf(res.body.toString())
    expect(links.endpoint).toBe('/files')
    expect(links.uploads).toBe('/api/uploads')
    // No inline script or style anywhere: the CSP would block them.
    expect(res.body.toString()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=/)
  })

  test("Uppy's module and style sheet and the page's own script and styles resolve, with the right types", async () => {
    const links = linksOf((await request(`${server.url}/`)).body.toString())
    const uppyVersion = (JSON.parse(readFileSync(path.join(uppyDir, '..', 'package.json'), 'utf8')) as { version: string }).version
    const uppyModule = `/ui/uppy-${uppyVersion}/uppy.min.mjs`
    const uppyCss = `/ui/uppy-${uppyVersion}/uppy.min.css`
    expect(links.preloads).toEqual([uppyModule])
    expect(links.styles).toHaveLength(2)
    expect(links.styles[0]).toBe(uppyCss)
    expect(links.styles[1]).toMatch(/^\/ui\/app-[0-9a-f]{16}\.css$/)
    expect(links.scripts).toHaveLength(1)
    expect(links.scripts[0]).toMatch(/^\/ui\/app-[0-9a-f]{16}\.js$/)

    const get = async (url: string, type: string) => {
      const res = await request(`${server.url}${url}`)
      expect({ url, status: res.status }).toEqual({ url, status: 200 })
      expect(res.headers['content-type']).toBe(`${type}; charset=utf-8`)
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable')
      expectSecurityHeaders(res.headers)
      return res.body
    }
    const module = await get(uppyModule, 'text/javascript')
    expect(sha256(module)).toBe(sha256(readFileSync(path.join(uppyDir, 'uppy.min.mjs'))))
    expect(module.toString()).toMatch(/export\{[^}]*\bas Dashboard\b[^}]*\bas Tus\b[^}]*\bas Uppy\b/)
    const css = await get(uppyCss, 'text/css')
    expect(sha256(css)).toBe(sha256(readFileSync(path.join(uppyDir, 'uppy.min.css'))))

    const app = (await get(links.scripts[0], 'text/javascript')).toString()
    expect(app).toContain(`import { Dashboard, Tus, Uppy } from '${uppyModule}'`)
    expect(app).toContain('chunkSize: 5 * MiB')
    expect(app).toContain('removeFingerprintOnSuccess: true')
    expect((await get(links.styles[1], 'text/css')).length).toBeGreaterThan(100)
    // HEAD works too (Express answers it from the GET route).
    expect((await request(`${server.url}${uppyModule}`, { method: 'HEAD' })).status).toBe(200)
  })

  test('nothing else under /ui/ or node_modules is reachable', async () => {
    for (const url of [
      '/ui/uppy-0.0.0/uppy.min.mjs',
      '/ui/package.json',
      '/ui/uppy-6.0.1/../package.json',
      '/ui/uppy-6.0.1/%2e%2e/package.json',
      '/ui/app.js',
    ]) {
      expect({ url, status: (await request(`${server.url}${url}`)).status }).toEqual({ url, status: 404 })
    }
  })

  test("the tus routes keep their own headers, without the page's", async () => {
    const options = await request(`${server.url}/files`, { method: 'OPTIONS' })
    expect(options.status).toBe(200)
    const created = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 1 } })
    expect(created.status).toBe(201)
    for (const res of [options, created]) {
      expect(res.headers['content-security-policy']).toBeUndefined()
      expect(res.headers['x-frame-options']).toBeUndefined()
    }
  })
})

describe('GET /api/uploads', () => {
  let server: InProcessServer
  beforeEach(async () => {
    server = await startServer({ UPLOAD_LIST: 'true' })
  })
  afterEach(() => server?.stop())

  test('lists finished uploads only, newest first, with names, types, sizes and URLs that download their bytes', async () => {
    const first = await finishedUpload(server.url, randomData(300_000, 1), 'first.bin')
    const unfinished = await unfinishedUploads(server.url)
    const empty = await finishedUpload(server.url, Buffer.alloc(0), 'empty.txt', 'text/plain')
    const last = await finishedUpload(server.url, randomData(70_000, 2), 'résumé final.pdf', 'application/pdf')

    const res = await request(`${server.url}/api/uploads`)
    expect(res.status).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expectSecurityHeaders(res.headers)
    // Same origin only: no CORS headers.
    expect(res.headers['access-control-allow-origin']).toBeUndefined()

    const uploads = await listUploads(server.url)
    expect(uploads.map((u) => u.id)).toEqual([last.id, empty.id, first.id])
    expect(uploads.some((u) => unfinished.includes(u.id))).toBe(false)
    expect(uploads[0]).toEqual({
      id: last.id,
      filename: 'résumé final.pdf',
      filetype: 'application/pdf',
      size: 70_000,
      url: `/files/${last.id}`,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    })
    expect(uploads.map((u) => [u.filename, u.size])).toEqual([
      ['résumé final.pdf', 70_000],
      ['empty.txt', 0],
      ['first.bin', 300_000],
    ])
    expect(Date.parse(uploads[0].createdAt as string)).toBeGreaterThan(Date.parse(uploads[2].createdAt as string))

    for (const [listed, upload] of [
      [uploads[0], last],
      [uploads[1], empty],
      [uploads[2], first],
    ] as const) {
      const download = await request(new URL(listed.url, server.url).toString())
      expect(download.status).toBe(200)
      expect(download.body.equals(upload.data)).toBe(true)
    }

    // Finishing an upload puts it in the list.
    const half = `${server.url}/files/${unfinished[0]}`
    expect((await patch(half, 5, 'fghij')).status).toBe(204)
    const now = await listUploads(server.url)
    expect(now.map((u) => u.id)).toEqual([last.id, empty.id, unfinished[0], first.id])
    expect(now[2]).toMatchObject({ filename: 'half.bin', filetype: null, size: 10 })
  })

  test('at most the newest 100, whatever the number of uploads', async () => {
    const ids: string[] = []
    for (let i = 0; i < 103; i++) {
      // creation-with-upload: the one byte comes with the POST.
      const res = await request(`${server.url}/files`, {
        method: 'POST',
        headers: { ...OFFSET_STREAM, 'Upload-Length': 1, 'Upload-Metadata': metadata({ filename: `n${i}` }) },
        body: 'x',
      })
      expect(res.status).toBe(201)
      ids.push((res.headers.location as string).split('/').pop() as string)
      await sleep(2)
    }
    const uploads = await listUploads(server.url)
    expect(uploads).toHaveLength(100)
    expect(uploads.map((u) => u.id)).toEqual(ids.slice(3).reverse())
    // The store itself takes any limit.
    expect((await server.app.store.listFinished?.(2))?.map((u) => u.id)).toEqual([ids[102], ids[101]])
  })

  test('a store that cannot list answers 501 with a short text', async () => {
    delete (server.app.store as Partial<StoreBackend>).listFinished
    const res = await request(`${server.url}/api/uploads`)
    expect(res.status).toBe(501)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.body.toString()).toBe('This store cannot list uploads\n')
  })
})

describe('WEB_UI=false', () => {
  const server = useServer({ WEB_UI: 'false' })

  test('no page, no assets, no listing; tus as usual', async () => {
    for (const url of ['/', '/api/uploads', '/ui/uppy-6.0.1/uppy.min.mjs']) {
      const res = await request(`${server.url}${url}`)
      expect({ url, status: res.status }).toEqual({ url, status: 404 })
      // Express's own 404, with the security headers of every non-tus route, not the page's policy.
      expect(res.headers['x-frame-options']).toBe('DENY')
      expect(res.headers['content-security-policy']).not.toContain("script-src 'self'")
    }
    const url = await createUpload(server.url, { 'Upload-Length': 3 })
    expect((await patch(url, 0, 'abc')).status).toBe(204)
    expect((await request(url)).body.toString()).toBe('abc')
  })
})

test('another TUS_PATH shows in the page and in the listed URLs', async () => {
  const server = await startServer({ TUS_PATH: '/api/v1/uploads', UPLOAD_LIST: 'true' })
  try {
    expect(linksOf((await request(`${server.url}/`)).body.toString()).endpoint).toBe('/api/v1/uploads')
    const res = await request(`${server.url}/api/v1/uploads`, {
      method: 'POST',
      headers: { ...OFFSET_STREAM, 'Upload-Length': 2, 'Upload-Metadata': metadata({ filename: 'two.txt' }) },
      body: 'hi',
    })
    expect(res.status).toBe(201)
    const [listed] = await listUploads(server.url)
    expect(listed.url).toBe(new URL(res.headers.location as string).pathname)
    expect(listed.url).toMatch(/^\/api\/v1\/uploads\/[0-9a-f]{32}$/)
    expect((await request(new URL(listed.url, server.url).toString())).body.toString()).toBe('hi')
  } finally {
    await server.stop()
  }
})

describe('GET /api/uploads on S3 (Ceph radosgw), under a key prefix', () => {
  let ceph: CephCluster
  let server: InProcessServer
  beforeAll(async () => {
    ceph = await startCeph()
    server = await startServer(await tusgateS3Env(ceph, { S3_KEY_PREFIX: 'web/', UPLOAD_LIST: 'true' }))
  }, 120_000)
  afterAll(async () => {
    await server?.stop()
    await ceph?.stop()
  })

  test('finished uploads only (multipart and empty), newest first, downloading their bytes', async () => {
    const first = await finishedUpload(server.url, randomData(6 * 1024 * 1024 + 5, 3), 'two-parts.bin')
    const unfinished = await unfinishedUploads(server.url)
    const empty = await finishedUpload(server.url, Buffer.alloc(0), 'empty.txt', 'text/plain')
    // Finished with tags on: its info object is rewritten, later than the unfinished ones'.
    const last = await finishedUpload(server.url, randomData(1000, 4), 'small.txt', 'text/plain')

    const uploads = await listUploads(server.url)
    expect(uploads.map((u) => u.id)).toEqual([last.id, empty.id, first.id])
    expect(uploads.some((u) => unfinished.includes(u.id))).toBe(false)
    expect(uploads.map((u) => [u.filename, u.filetype, u.size, u.url])).toEqual([
      ['small.txt', 'text/plain', 1000, `/files/${last.id}`],
      ['empty.txt', 'text/plain', 0, `/files/${empty.id}`],
      ['two-parts.bin', 'application/octet-stream', first.data.length, `/files/${first.id}`],
    ])
    for (const [listed, upload] of [
      [uploads[0], last],
      [uploads[1], empty],
      [uploads[2], first],
    ] as const) {
      const download = await request(new URL(listed.url, server.url).toString())
      if (download.status !== 200) console.log(server.logs.filter((l) => l.level === 'error'))
      expect({ url: listed.url, status: download.status }).toEqual({ url: listed.url, status: 200 })
      expect(sha256(download.body)).toBe(sha256(upload.data))
    }
    expect((await server.app.store.listFinished?.(1))?.map((u) => u.id)).toEqual([last.id])
  }, 60_000)
})

describe("AUTH_MODE=jwt: the page takes a token, the list shows its principal's own uploads", () => {
  let server: InProcessServer
  const token = hsTokens()
  beforeAll(async () => {
    server = await startServer({ AUTH_MODE: 'jwt', JWT_SECRET: TEST_SECRET, UPLOAD_LIST: 'true' })
  })
  afterAll(() => server?.stop())

  /** A finished upload of `who`, created and written with its token. */
  async function finishedOf(who: string, data: Buffer, filename: string) {
    const headers = bearer(await token({ sub: who }))
    const url = await createUpload(server.url, { ...headers, 'Upload-Length': data.length, 'Upload-Metadata': metadata({ filename }) })
    expect((await patch(url, 0, data, headers)).status).toBe(204)
    await sleep(3)
    return { url, id: url.split('/').pop() as string, data }
  }

  test('the page has a token field and its script sends the token on tus requests and on the list', async () => {
    const page = await request(`${server.url}/`)
    expect(page.status).toBe(200)
    const html = page.body.toString()
    expect(html).toContain('data-auth="jwt"')
    expect(html).toMatch(/<input id="token" type="password"/)
    const app = (await request(`${server.url}${linksOf(html).scripts[0]}`)).body.toString()
    expect(app).toContain('headers: () => authHeaders()')
    expect(app).toContain("fetch(uploadsUrl, { headers: { Accept: 'application/json', ...authHeaders() }")
    expect(app).toContain('sessionStorage')
  })

  test('no token or a bad one: 401; with a token, only its own finished uploads, which download with it', async () => {
    const alice = await finishedOf('alice', randomData(5000, 11), 'alice.bin')
    const bob = await finishedOf('bob', randomData(3000, 12), 'bob.bin')
    // Unfinished: not listed.
    await createUpload(server.url, { ...bearer(await token({ sub: 'alice' })), 'Upload-Length': 10 })

    const anonymous = await request(`${server.url}/api/uploads`)
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="tusgate"')
    const forged = await request(`${server.url}/api/uploads`, { headers: bearer(await token({ sub: 'alice' }, 'another-secret-that-is-long-enough-too')) })
    expect(forged.status).toBe(401)
    expect(JSON.stringify(forged.body.toString())).not.toContain(alice.id)

    for (const [who, upload] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const headers = bearer(await token({ sub: who }))
      const res = await request(`${server.url}/api/uploads`, { headers })
      expect(res.status).toBe(200)
      const uploads = (JSON.parse(res.body.toString()) as { uploads: Listed[] }).uploads
      expect(uploads.map((u) => [u.id, u.filename])).toEqual([[upload.id, `${who}.bin`]])
      const download = await request(new URL(uploads[0].url, server.url).toString(), { headers })
      expect(sha256(download.body)).toBe(sha256(upload.data))
    }
    // Carol has none.
    const carol = await request(`${server.url}/api/uploads`, { headers: bearer(await token({ sub: 'carol' })) })
    expect(JSON.parse(carol.body.toString())).toEqual({ uploads: [], next: null })
  })
})

describe('the upload list is opt-in', () => {
  test('without UPLOAD_LIST the page is served but /api/uploads answers 404 and lists nothing', async () => {
    const server = await startServer()
    try {
      const url = await createUpload(server.url, { 'Upload-Length': 1 })
      await patch(url, 0, 'x')
      expect((await request(`${server.url}/`)).status).toBe(200)
      const list = await request(`${server.url}/api/uploads`)
      expect(list.status).toBe(404)
      expect(list.body.toString()).not.toContain(url.split('/').pop() as string)
    } finally {
      await server.stop()
    }
  })
})
