import path from 'node:path'
import { badRequests, rawStatus, tree } from './helpers/badRequests.js'
import { createUpload, request, TUS } from './helpers/http.js'
import { type InProcessServer, startServer } from './helpers/servers.js'

describe('hostile and malformed requests', () => {
  let server: InProcessServer
  let upload: string // path of an upload of length 10 at offset 0
  let port: number
  let before: string[]
  const parent = () => path.dirname(server.dir)

  beforeAll(async () => {
    server = await startServer({ MAX_SIZE: '1MB' })
    port = Number(new URL(server.url).port)
    upload = new URL(await createUpload(server.url, { 'Upload-Length': 10 })).pathname
    before = tree(parent())
  })
  afterAll(() => server.stop())

  const cases = badRequests()

  test('the table has at least 25 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(25)
  })

  test.each(cases)('$name answers $expect', async (c) => {
    const status = c.raw
      ? await rawStatus(port, c.raw)
      : (await request(`${server.url}${c.path ?? upload}`, { method: c.method, headers: c.headers, body: c.body })).status
    expect(status).toBe(c.expect)
    // The server keeps serving after each.
    expect((await request(`${server.url}/healthz`)).status).toBe(200)
  })

  test('nothing was created or changed on disk, inside FILE_DIR or beside it', async () => {
    expect(tree(parent())).toEqual(before)
    const head = await request(`${server.url}${upload}`, { method: 'HEAD', headers: TUS })
    expect(head.headers['upload-offset']).toBe('0')
    expect(server.logs.filter((l) => l.level === 'error')).toEqual([])
  })
})
