// GET /api/uploads reads an index of finished uploads, not every upload's info: paged, kept across
// restarts, built from the store when missing, and at most UPLOAD_LIST_CONCURRENCY listings at once.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { jest } from '@jest/globals'
import { FileKvStore } from '@tus/utils'
import type { ListedUpload } from '../server/web/index.js'
import { createUpload, OFFSET_STREAM, patch, request, TUS } from './helpers/http.js'
import { type InProcessServer, startServer, tempDir } from './helpers/servers.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')

interface ListPage {
  uploads: ListedUpload[]
  next: string | null
}

async function list(base: string, query = ''): Promise<ListPage> {
  const res = await request(`${base}/api/uploads${query}`)
  expect({ status: res.status, body: res.status === 200 ? '' : res.body.toString() }).toEqual({ status: 200, body: '' })
  return JSON.parse(res.body.toString()) as ListPage
}

/** Every page of the list, `limit` at a time, following `next`; bounded. */
async function allPages(base: string, limit: number): Promise<ListPage[]> {
  const pages: ListPage[] = [await list(base, `?limit=${limit}`)]
  for (let i = 0; i < 1000 && pages[pages.length - 1].next; i++) {
    pages.push(await list(base, `?limit=${limit}&before=${pages[pages.length - 1].next}`))
  }
  return pages
}

/** A finished upload of `body` (creation-with-upload); its id. */
async function finished(base: string, body: string, filename = body): Promise<string> {
  const res = await request(`${base}/files`, {
    method: 'POST',
    headers: { ...OFFSET_STREAM, 'Upload-Length': Buffer.byteLength(body), 'Upload-Metadata': `filename ${b64(filename)}` },
    body,
  })
  expect(res.status).toBe(201)
  // Creation dates have millisecond resolution: keep uploads apart so "newest first" is unambiguous.
  await sleep(3)
  return (res.headers.location as string).split('/').pop() as string
}

/**
 * `count` finished uploads of one byte written straight into a file store's folder, as a store holding
 * them before the index existed has them; ids newest first.
 */
function uploadsOnDisk(dir: string, count: number): string[] {
  mkdirSync(dir, { recursive: true })
  const ids: string[] = []
  const start = Date.parse('2026-01-01T00:00:00.000Z')
  for (let i = 0; i < count; i++) {
    const id = i.toString(16).padStart(32, '0')
    writeFileSync(path.join(dir, id), 'x')
    const info = { id, size: 1, offset: 1, metadata: { filename: `f${i}` }, creation_date: new Date(start + i * 1000).toISOString() }
    writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(info))
    ids.unshift(id)
  }
  return ids
}

describe('the index of finished uploads (file store)', () => {
  const servers: InProcessServer[] = []
  const temps: Array<{ remove(): void }> = []
  const start = async (env: Record<string, string>) => {
    const server = await startServer({ UPLOAD_LIST: 'true', ...env })
    servers.push(server)
    return server
  }
  const newDir = () => {
    const temp = tempDir('tusgate-list-')
    temps.push(temp)
    return path.join(temp.dir, 'data')
  }
  afterEach(async () => {
    jest.restoreAllMocks()
    for (const server of servers.splice(0)) await server.stop().catch(() => undefined)
    for (const temp of temps.splice(0)) temp.remove()
  })

  test('lists exactly the finished uploads, newest first, in pages; terminated ones and replaced partials leave it; all of it survives a restart', async () => {
    const dir = newDir()
    let server = await start({ FILE_DIR: dir, CONCAT_REMOVE_PARTIALS: 'true' })
    const ids: string[] = []
    for (let i = 0; i < 7; i++) ids.unshift(await finished(server.url, `upload ${i}`))
    // Unfinished: never listed.
    const half = await createUpload(server.url, { 'Upload-Length': 10 })
    expect((await patch(half, 0, 'abc')).status).toBe(204)
    // Terminated: leaves the list.
    const gone = ids.splice(2, 1)[0]
    expect((await request(`${server.url}/files/${gone}`, { method: 'DELETE', headers: TUS })).status).toBe(204)
    // A final upload of two partials, which are removed once it is assembled: the final stays, the partials leave.
    const partials: string[] = []
    for (const part of ['ab', 'cd']) {
      const url = await createUpload(server.url, { 'Upload-Concat': 'partial', 'Upload-Length': 2 })
      expect((await patch(url, 0, part)).status).toBe(204)
      partials.push(new URL(url).pathname)
    }
    const concat = await request(`${server.url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${partials.join(' ')}` } })
    expect(concat.status).toBe(201)
    ids.unshift((concat.headers.location as string).split('/').pop() as string)

    const whole = await list(server.url)
    expect(whole.uploads.map((u) => u.id)).toEqual(ids)
    expect(whole.next).toBeNull()
    expect(whole.uploads[0]).toMatchObject({ size: 4, url: `/files/${ids[0]}` })
    expect(whole.uploads[1]).toMatchObject({ filename: 'upload 6', size: 8 })
    // Pages of two, following `next`, are the same list.
    const pages = await allPages(server.url, 2)
    expect(pages.map((page) => page.uploads.length)).toEqual([2, 2, 2, 1])
    expect(pages.flatMap((page) => page.uploads.map((u) => u.id))).toEqual(ids)

    await server.stop()
    server = await start({ FILE_DIR: dir })
    // After a restart the log is read: no upload's info.
    const reads = jest.spyOn(FileKvStore.prototype, 'get')
    expect((await list(server.url)).uploads.map((u) => u.id)).toEqual(ids)
    expect(reads).not.toHaveBeenCalled()
    // And it goes on being kept.
    const newest = await finished(server.url, 'after the restart')
    expect((await request(`${server.url}/files/${ids[1]}`, { method: 'DELETE', headers: TUS })).status).toBe(204)
    expect((await list(server.url)).uploads.map((u) => u.id)).toEqual([newest, ids[0], ...ids.slice(2)])
  })

  test('an expired upload never shows; a finished one is spared by the sweep and stays', async () => {
    const server = await start({ UPLOAD_EXPIRES_AFTER: '1s' })
    const kept = await finished(server.url, 'kept')
    const expiring = await createUpload(server.url, { 'Upload-Length': 10 })
    await sleep(1100)
    expect(await server.app.sweeper.sweep()).toEqual([expiring.split('/').pop()])
    expect((await list(server.url)).uploads.map((u) => u.id)).toEqual([kept])
  })

  test('a store holding 2,000 uploads before the index: built once on the first listing, then listing reads no upload info', async () => {
    const dir = newDir()
    const ids = uploadsOnDisk(dir, 2000)
    const server = await start({ FILE_DIR: dir })
    const reads = jest.spyOn(FileKvStore.prototype, 'get')
    // The first listing builds the index: each upload's info, once.
    expect((await list(server.url)).uploads.map((u) => u.id)).toEqual(ids.slice(0, 100))
    expect(reads.mock.calls.length).toBeGreaterThanOrEqual(2000)
    reads.mockClear()
    expect((await list(server.url)).uploads.map((u) => u.id)).toEqual(ids.slice(0, 100))
    expect(reads).not.toHaveBeenCalled()
    // Every page of all 2,000, newest first, without reading any.
    const pages = await allPages(server.url, 100)
    expect(pages).toHaveLength(20)
    expect(pages.flatMap((page) => page.uploads.map((u) => u.id))).toEqual(ids)
    expect(pages[19].uploads[99]).toMatchObject({ filename: 'f0', size: 1, createdAt: '2026-01-01T00:00:00.000Z' })
    expect(reads).not.toHaveBeenCalled()
    const log = readFileSync(path.join(dir, '.index', 'finished.log'), 'utf8')
      .trim()
      .split('\n')
    expect(log).toHaveLength(2001)
  })

  test('limit and before are checked: 400 with a short text', async () => {
    const server = await start({})
    for (const query of ['?limit=0', '?limit=101', '?limit=abc', '?limit=-1', '?limit=1&limit=2', '?before=', '?before=nope', `?before=${'a'.repeat(2000)}`]) {
      const res = await request(`${server.url}/api/uploads${query}`)
      expect({ query, status: res.status }).toEqual({ query, status: 400 })
      expect(res.body.length).toBeLessThan(100)
    }
  })

  test('listings beyond UPLOAD_LIST_CONCURRENCY are answered 503 with Retry-After at once; a HEAD is answered meanwhile', async () => {
    const dir = newDir()
    uploadsOnDisk(dir, 10)
    // One upload's info is a FIFO: building the index waits on it until the test writes it, so the
    // listings that build it stay in progress as long as the test needs.
    const blocked = 'f'.repeat(32)
    writeFileSync(path.join(dir, blocked), 'x')
    execFileSync('mkfifo', [path.join(dir, `${blocked}.json`)])
    const server = await start({ FILE_DIR: dir, UPLOAD_LIST_CONCURRENCY: '2', UPLOAD_EXPIRES_AFTER: '0' })
    const head = await createUpload(server.url, { 'Upload-Length': 5 })

    // Five listings at once, in whatever order the server accepts them: exactly two stay in progress
    // (blocked on the FIFO) and the other three are refused at once.
    const answered: Array<Awaited<ReturnType<typeof request>>> = []
    const listings = Array.from({ length: 5 }, () =>
      request(`${server.url}/api/uploads`).then((res) => {
        answered.push(res)
        return res
      }),
    )
    for (let i = 0; i < 500 && answered.length < 3; i++) await sleep(10)
    expect(answered.map((res) => res.status)).toEqual([503, 503, 503])
    for (const refused of answered) {
      expect(refused.headers['retry-after']).toBe('1')
      expect(refused.body.toString()).toBe('Too many listings at once\n')
    }
    const headRes = await request(head, { method: 'HEAD', headers: TUS })
    expect(headRes.status).toBe(200)
    expect(headRes.headers['upload-offset']).toBe('0')
    expect(answered).toHaveLength(3)

    const info = { id: blocked, size: 1, offset: 1, metadata: { filename: 'fifo' }, creation_date: '2027-01-01T00:00:00.000Z' }
    await writeFile(path.join(dir, `${blocked}.json`), JSON.stringify(info))
    const done = (await Promise.all(listings)).filter((res) => res.status !== 503)
    expect(done.map((res) => res.status)).toEqual([200, 200])
    const listed = JSON.parse(done[0].body.toString()) as ListPage
    expect(listed.uploads.map((u) => u.filename)).toEqual(['fifo', ...Array.from({ length: 10 }, (_, i) => `f${9 - i}`)])
    expect(existsSync(path.join(dir, '.index', 'finished.log'))).toBe(true)
    rmSync(path.join(dir, `${blocked}.json`))
  })
})
