// The pre-access hook against a real receiver: every request on an existing upload (tus, IETF, downloads,
// final concatenation) is asked about first, refused as the hook says before any lock or byte, cached on request.
import { setTimeout as sleep } from 'node:timers/promises'
import type { HookRequest } from '../server/hooks/types.js'
import { useHookedServer } from './helpers/hookedServer.js'
import type { Answer } from './helpers/hookReceiver.js'
import { createUpload, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'

const ENABLED = 'pre-create,pre-access,post-receive,post-finish,post-terminate'
const IETF = { 'Upload-Draft-Interop-Version': '8' }

const { receiver, start } = useHookedServer({ HOOKS_ENABLED: ENABLED, HOOKS_BACKOFF: '50ms' })

const idOf = (url: string) => url.split('/').pop() as string
const accesses = (id?: string) => receiver.of('pre-access', id)
const modes = (id: string) => accesses(id).map((hook) => `${hook.Event.HTTPRequest.Method} ${hook.Event.Access?.Mode}`)
const who = (hook: HookRequest) => hook.Event.HTTPRequest.Header.Authorization?.[0]

/** writer: everything; reader: reading only; anyone else: refused with the hook's own answer. */
const policy = (hook: HookRequest): Answer => {
  if (hook.Type !== 'pre-access') return {}
  if (who(hook) === 'Bearer writer' || (who(hook) === 'Bearer reader' && hook.Event.Access?.Mode === 'read')) return {}
  return { RejectAccess: true, HTTPResponse: { StatusCode: 401, Body: 'not yours', Header: { 'WWW-Authenticate': 'Bearer realm="app"' } } }
}

test('HEAD and GET ask to read, PATCH and DELETE to write, with the upload as it is and the request', async () => {
  const { url, dir } = await start()
  const location = await createUpload(url, { 'Upload-Length': 3 })
  const id = idOf(location)
  expect(accesses()).toHaveLength(0)

  expect((await request(location, { method: 'HEAD', headers: TUS })).status).toBe(200)
  expect((await patch(location, 0, 'abc')).status).toBe(204)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256('abc'), bytes: 3 })
  expect((await request(location, { method: 'DELETE', headers: TUS })).status).toBe(204)
  expect(modes(id)).toEqual(['HEAD read', 'PATCH write', 'GET read', 'DELETE write'])

  const [head, append] = accesses(id)
  expect(Object.keys(head)).toEqual(['Type', 'Event'])
  expect(Object.keys(head.Event)).toEqual(['Upload', 'HTTPRequest', 'Access'])
  expect(head.Event.Upload).toEqual({
    ID: id,
    Size: 3,
    SizeIsDeferred: false,
    Offset: 0,
    MetaData: {},
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: { Type: 'filestore', Path: `${dir}/${id}`, InfoPath: `${dir}/${id}.json` },
  })
  expect(head.Event.HTTPRequest.URI).toBe(`/files/${id}`)
  // The PATCH was asked about before its bytes arrived.
  expect(append.Event.Upload.Offset).toBe(0)
})

test('a refusal answers the hook status, body and headers, and the upload is left as it was', async () => {
  const { url } = await start()
  receiver.answer(policy)
  const location = await createUpload(url, { 'Upload-Length': 3 })
  const id = idOf(location)
  const as = (token: string) => ({ ...TUS, Authorization: `Bearer ${token}` })

  for (const method of ['HEAD', 'DELETE']) {
    const refused = await request(location, { method, headers: as('stranger') })
    expect([method, refused.status, refused.headers['www-authenticate']]).toEqual([method, 401, 'Bearer realm="app"'])
    if (method !== 'HEAD') expect(refused.body.toString()).toBe('not yours')
  }
  const append = await patch(location, 0, 'abc', { Authorization: 'Bearer reader' })
  expect(append.status).toBe(401)
  expect(append.body.toString()).toBe('not yours')
  expect(receiver.of('post-receive', id)).toHaveLength(0)

  const state = await request(location, { method: 'HEAD', headers: as('reader') })
  expect([state.status, state.headers['upload-offset']]).toEqual([200, '0'])
  expect((await patch(location, 0, 'abc', { Authorization: 'Bearer writer' })).status).toBe(204)
  const download = await request(location, { headers: { Authorization: 'Bearer stranger' } })
  expect([download.status, download.body.toString()]).toEqual([401, 'not yours'])
  expect((await request(location, { headers: { Authorization: 'Bearer reader' } })).body.toString()).toBe('abc')
})

test('RejectAccess without an HTTPResponse answers 403 with tusd-style text', async () => {
  const { url } = await start()
  receiver.answer((hook) => (hook.Type === 'pre-access' ? { RejectAccess: true } : {}))
  const location = await createUpload(url, { 'Upload-Length': 3 })
  const refused = await patch(location, 0, 'abc')
  expect([refused.status, refused.body.toString()]).toEqual([403, 'ERR_ACCESS_REJECTED: upload access has been rejected by server\n'])
  const download = await request(location)
  expect(download.status).toBe(403)
})

test('a hook that fails refuses the request with 500; nothing is written', async () => {
  const { url, logs } = await start({ HOOKS_RETRIES: '0' })
  const location = await createUpload(url, { 'Upload-Length': 3 })
  receiver.answer((hook): Answer => (hook.Type === 'pre-access' ? { status: 500, text: 'broken' } : {}))
  expect((await patch(location, 0, 'abc')).status).toBe(500)
  expect((await request(location)).status).toBe(500)
  receiver.answer(() => ({}))
  expect((await request(location, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('0')
  expect(logs.filter((line) => JSON.stringify(line).includes('pre-access hook failed'))).toHaveLength(2)
})

test('a refused request is answered before the lock: an append in flight is not asked to let go', async () => {
  const { url } = await start({ LOCK_DRAIN_TIMEOUT: '100ms' })
  receiver.answer(policy)
  const data = randomData(2_000, 5)
  const location = await createUpload(url, { 'Upload-Length': data.length })
  const streaming = pacedPatch(location, 0, data, { piece: 200, delayMs: 100, holdMs: 0, headers: { Authorization: 'Bearer writer' } })
  await receiver.waitFor(() => accesses(idOf(location)).length === 1, 5_000, 'the append to be let through')
  await sleep(300)
  const refused = await request(location, { method: 'HEAD', headers: { ...TUS, Authorization: 'Bearer stranger' } })
  expect(refused.status).toBe(401)
  const appended = await streaming
  expect([appended.status, appended.offset]).toEqual([204, String(data.length)])
})

test('IETF offset retrieval, append and cancellation ask the same hook and answer its refusal', async () => {
  const { url } = await start()
  receiver.answer(policy)
  const created = await request(`${url}/files`, { method: 'POST', headers: { ...IETF, 'Upload-Complete': '?0' }, body: 'ab' })
  expect(created.status).toBe(201)
  const location = new URL(created.headers.location as string, url).toString()
  const id = idOf(location)
  expect(accesses(id)).toHaveLength(0)

  const append = { ...IETF, 'Upload-Offset': '2', 'Upload-Complete': '?1', 'Content-Type': 'application/partial-upload' }
  const refused = await request(location, { method: 'PATCH', headers: { ...append, Authorization: 'Bearer reader' }, body: 'cd' })
  expect([refused.status, refused.body.toString(), refused.headers['upload-complete']]).toEqual([401, 'not yours', '?0'])
  expect((await request(location, { method: 'HEAD', headers: { ...IETF, Authorization: 'Bearer reader' } })).headers['upload-offset']).toBe('2')
  expect((await request(location, { method: 'PATCH', headers: { ...append, Authorization: 'Bearer writer' }, body: 'cd' })).status).toBe(204)
  expect((await request(location, { method: 'DELETE', headers: { ...IETF, Authorization: 'Bearer reader' } })).status).toBe(401)
  expect((await request(location, { method: 'DELETE', headers: { ...IETF, Authorization: 'Bearer writer' } })).status).toBe(204)
  expect(modes(id)).toEqual(['PATCH write', 'HEAD read', 'PATCH write', 'DELETE write', 'DELETE write'])
})

test('a final concatenation asks to write each partial upload it names; a refusal creates nothing', async () => {
  const { url } = await start()
  const partials: string[] = []
  for (const part of ['ab', 'cd']) {
    const location = await createUpload(url, { 'Upload-Length': 2, 'Upload-Concat': 'partial' })
    expect((await patch(location, 0, part)).status).toBe(204)
    partials.push(location)
  }
  const [first, second] = partials.map(idOf)
  receiver.answer((hook) => (hook.Type === 'pre-access' && hook.Event.Upload.ID === second ? { RejectAccess: true } : {}))
  const final = { ...TUS, 'Upload-Concat': `final;${partials.map((p) => new URL(p).pathname).join(' ')}` }
  const creations = receiver.of('pre-create').length
  const refused = await request(`${url}/files`, { method: 'POST', headers: final })
  expect(refused.status).toBe(403)
  expect(receiver.of('pre-create')).toHaveLength(creations)
  expect(modes(first).at(-1)).toBe('POST write')
  expect(accesses(second).at(-1)?.Event.Upload).toMatchObject({ ID: second, IsPartial: true, Offset: 2 })

  receiver.answer(() => ({}))
  const created = await request(`${url}/files`, { method: 'POST', headers: final })
  expect(created.status).toBe(201)
  expect((await request(new URL(created.headers.location as string, url).toString())).body.toString()).toBe('abcd')
})

test('answers are reused for HOOKS_ACCESS_CACHE per upload, mode and caller', async () => {
  const { url } = await start({ HOOKS_ACCESS_CACHE: '1h' })
  receiver.answer(policy)
  const location = await createUpload(url, { 'Upload-Length': 3 })
  const id = idOf(location)
  const head = (token: string) => request(location, { method: 'HEAD', headers: { ...TUS, Authorization: `Bearer ${token}` } })

  expect((await head('reader')).status).toBe(200)
  expect((await head('reader')).status).toBe(200)
  expect(accesses(id)).toHaveLength(1)
  // A refusal is reused as given.
  expect((await head('stranger')).status).toBe(401)
  expect((await head('stranger')).headers['www-authenticate']).toBe('Bearer realm="app"')
  expect(accesses(id)).toHaveLength(2)
  // Another mode is another question.
  expect((await patch(location, 0, 'abc', { Authorization: 'Bearer reader' })).status).toBe(401)
  expect(accesses(id)).toHaveLength(3)
})

test('without HOOKS_ACCESS_CACHE every request asks again', async () => {
  const { url } = await start()
  const location = await createUpload(url, { 'Upload-Length': 3 })
  for (let i = 0; i < 3; i++) expect((await request(location, { method: 'HEAD', headers: TUS })).status).toBe(200)
  expect(accesses(idOf(location))).toHaveLength(3)
})

test('pre-access is off unless listed in HOOKS_ENABLED', async () => {
  const { url } = await start({ HOOKS_ENABLED: 'pre-create,post-finish' })
  receiver.answer((hook) => (hook.Type === 'pre-access' ? { RejectAccess: true } : {}))
  const location = await createUpload(url, { 'Upload-Length': 3 })
  expect((await patch(location, 0, 'abc')).status).toBe(204)
  expect((await request(location)).status).toBe(200)
  expect(accesses()).toHaveLength(0)
})
