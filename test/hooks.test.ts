// tusd v2 compatible HTTP hooks against a real receiver: payloads, refusals, changes, StopUpload, post-finish.
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import * as tus from 'tus-js-client'
import { useHookedServer } from './helpers/hookedServer.js'
import type { Answer } from './helpers/hookReceiver.js'
import { createUpload, pacedPatch, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'

const ALL = 'pre-create,post-create,post-receive,pre-finish,post-finish,pre-terminate,post-terminate'
const b64 = (text: string) => Buffer.from(text).toString('base64')

const hooked = useHookedServer({ HOOKS_ENABLED: ALL, HOOKS_BACKOFF: '50ms', HOOKS_BACKOFF_MAX: '200ms' })
const { receiver, start } = hooked

/** Uploads a buffer with tus-js-client; resolves with the upload URL, rejects with the client's error. */
function tusUpload(endpoint: string, file: Buffer, options: tus.UploadOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(file, {
      endpoint,
      retryDelays: null,
      chunkSize: 64 * 1024,
      ...options,
      onSuccess: () => resolve(upload.url as string),
      onError: reject,
    })
    upload.start()
  })
}

const idOf = (url: string) => url.split('/').pop() as string

test('every hook type carries the tusd v2 payload, field by field', async () => {
  const { url, dir } = await start({ HOOKS_FORWARD_HEADERS: 'Authorization', HOOKS_POST_RECEIVE_INTERVAL: '100ms' })
  const metadata = `filename ${b64('a.txt')},filetype ${b64('text/plain')},empty,tusgate-owner ${b64('mallory')}`
  const location = await createUpload(url, { 'Upload-Length': 10, 'Upload-Metadata': metadata, Authorization: 'Bearer abc', 'X-Trace': 't1' })
  const id = idOf(location)
  expect((await patch(location, 0, '01234')).status).toBe(204)
  const last = await patch(location, 5, '56789')
  expect(last.status).toBe(204)
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')

  const expectedMetadata = { filename: 'a.txt', filetype: 'text/plain', empty: '' }
  const file = path.join(dir, id)
  const storage = { Type: 'filestore', Path: file, InfoPath: `${file}.json` }

  const [preCreate] = receiver.of('pre-create')
  expect(Object.keys(preCreate)).toEqual(['Type', 'Event'])
  expect(Object.keys(preCreate.Event)).toEqual(['Upload', 'HTTPRequest'])
  expect(preCreate.Event.Upload).toEqual({
    ID: '',
    Size: 10,
    SizeIsDeferred: false,
    Offset: 0,
    MetaData: expectedMetadata,
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: null,
  })
  const http = preCreate.Event.HTTPRequest
  expect(Object.keys(http)).toEqual(['Method', 'URI', 'RemoteAddr', 'Header'])
  expect(http.Method).toBe('POST')
  expect(http.URI).toBe('/files')
  expect(http.RemoteAddr).toMatch(/^127\.0\.0\.1:\d+$/)
  expect(http.Header['Tus-Resumable']).toEqual(['1.0.0'])
  expect(http.Header['Upload-Length']).toEqual(['10'])
  expect(http.Header['Upload-Metadata']).toEqual([metadata])
  expect(http.Header.Authorization).toEqual(['Bearer abc'])
  expect(http.Header['X-Trace']).toEqual(['t1'])
  expect(http.Header.Host).toEqual([new URL(url).host])

  const [postCreate] = receiver.of('post-create', id)
  expect(postCreate.Event.Upload).toEqual({ ...preCreate.Event.Upload, ID: id, Storage: storage })
  expect(postCreate.Event.HTTPRequest.Method).toBe('POST')

  const receives = receiver.of('post-receive', id)
  expect(receives.map((h) => h.Event.Upload.Offset)).toEqual([5, 10])
  for (const hook of receives) {
    expect(hook.Event.Upload).toMatchObject({ ID: id, Size: 10, MetaData: expectedMetadata, Storage: storage })
    expect(hook.Event.HTTPRequest).toMatchObject({ Method: 'PATCH', URI: `/files/${id}` })
  }

  for (const type of ['pre-finish', 'post-finish']) {
    const hooks = receiver.of(type, id)
    expect(hooks).toHaveLength(1)
    expect(hooks[0].Event.Upload).toEqual({ ...postCreate.Event.Upload, Offset: 10 })
    expect(hooks[0].Event.HTTPRequest).toMatchObject({ Method: 'PATCH', URI: `/files/${id}` })
    expect(hooks[0].Event.HTTPRequest.Header['Upload-Offset']).toEqual(['5'])
  }

  const other = await createUpload(url, { 'Upload-Length': 4 })
  expect((await patch(other, 0, 'ab')).status).toBe(204)
  expect((await request(other, { method: 'DELETE', headers: TUS })).status).toBe(204)
  await receiver.waitFor(() => receiver.of('post-terminate', idOf(other)).length === 1, 5_000, 'post-terminate')
  for (const type of ['pre-terminate', 'post-terminate']) {
    const [hook] = receiver.of(type, idOf(other))
    expect(hook.Event.Upload).toMatchObject({ ID: idOf(other), Size: 4, Offset: 2, SizeIsDeferred: false, MetaData: {} })
    expect(hook.Event.HTTPRequest).toMatchObject({ Method: 'DELETE', URI: `/files/${idOf(other)}` })
  }

  // The hook requests themselves: JSON, and the allowlisted client header forwarded as is.
  for (const { headers } of receiver.hooks) expect(headers['content-type']).toBe('application/json')
  const forwarded = receiver.hooks.filter((h) => h.body.Event.HTTPRequest.Header.Authorization)
  expect(forwarded.length).toBeGreaterThan(0)
  for (const { headers } of forwarded) expect(headers.authorization).toBe('Bearer abc')
  expect(receiver.hooks.find((h) => !h.body.Event.HTTPRequest.Header.Authorization)?.headers.authorization).toBeUndefined()
  expect(receiver.hooks.every((h) => h.headers['x-trace'] === undefined)).toBe(true)
})

test('a pre-create rejection reaches the client with the hook status, body and headers, and stores nothing', async () => {
  const { url, dir } = await start()
  receiver.answer((hook) =>
    hook.Type === 'pre-create'
      ? { RejectUpload: true, HTTPResponse: { StatusCode: 403, Body: '{"message":"no quota left"}', Header: { 'X-Reason': 'quota' } } }
      : {},
  )
  const res = await request(`${url}/files`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': 3, 'Content-Type': 'application/offset+octet-stream' },
    body: 'abc',
  })
  expect(res.status).toBe(403)
  expect(res.body.toString()).toBe('{"message":"no quota left"}')
  expect(res.headers['x-reason']).toBe('quota')
  expect(res.headers.location).toBeUndefined()

  // tus-js-client sees the same refusal.
  const error = (await tusUpload(`${url}/files`, Buffer.from('hello')).catch((e) => e)) as tus.DetailedError
  expect(error.originalResponse?.getStatus()).toBe(403)
  expect(error.originalResponse?.getBody()).toBe('{"message":"no quota left"}')

  // A bare rejection answers tusd's 400.
  receiver.answer(() => ({ RejectUpload: true }))
  const bare = await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3 } })
  expect(bare.status).toBe(400)
  expect(bare.body.toString()).toBe('ERR_UPLOAD_REJECTED: upload creation has been rejected by server\n')

  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])
  expect(receiver.of('post-create')).toHaveLength(0)
})

test('a failing receiver refuses the creation with 500 after HOOKS_RETRIES retries, and stores nothing', async () => {
  const { url, dir } = await start({ HOOKS_RETRIES: '2' })
  receiver.answer(() => ({ status: 503, text: 'down for maintenance' }))
  const res = await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3 } })
  expect(res.status).toBe(500)
  expect(receiver.of('pre-create')).toHaveLength(3)
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])
  const log = hooked.server?.logs.find((l) => l.message === 'upload failed')
  expect(JSON.stringify(log)).toContain('pre-create hook failed: hook receiver answered 503')

  // A 4xx from the receiver is not retried; a non-JSON 200 is a failure too.
  receiver.hooks.length = 0
  receiver.answer(() => ({ status: 404 }))
  expect((await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3 } })).status).toBe(500)
  expect(receiver.of('pre-create')).toHaveLength(1)
})

test('ChangeFileInfo sets the upload id and metadata (tus-js-client end to end)', async () => {
  const { url } = await start()
  const customId = `project-7-${'c0ffee'.repeat(4)}`
  receiver.answer((hook) =>
    hook.Type === 'pre-create'
      ? {
          ChangeFileInfo: { ID: customId, MetaData: { filename: hook.Event.Upload.MetaData.filename, project: '7', 'tusgate-owner': 'mallory' } },
          HTTPResponse: { Header: { 'X-Project': '7' } },
        }
      : {},
  )
  const data = randomData(300_000, 7)
  const uploadUrl = await tusUpload(`${url}/files`, data, { metadata: { filename: 'photo.jpg', filetype: 'image/jpeg' } })
  expect(uploadUrl).toBe(`${url}/files/${customId}`)

  const head = await request(uploadUrl, { method: 'HEAD', headers: TUS })
  expect(head.status).toBe(200)
  expect(head.headers['upload-offset']).toBe('300000')
  const shown = Object.fromEntries(
    String(head.headers['upload-metadata'])
      .split(',')
      .map((pair) => pair.split(' '))
      .map(([key, value]) => [key, Buffer.from(value ?? '', 'base64').toString()]),
  )
  expect(shown).toEqual({ filename: 'photo.jpg', project: '7' })
  expect(await sha256OfDownload(uploadUrl)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  await receiver.waitFor(() => receiver.of('post-finish', customId).length === 1, 5_000, 'post-finish')
  expect(receiver.of('post-finish', customId)[0].Event.Upload.MetaData).toEqual({ filename: 'photo.jpg', project: '7' })

  // An id that is not safe, or that is taken, refuses the creation rather than storing under it.
  // An id that is not ours fails the hook (500); a taken one is refused (409) and the upload that has it stays.
  for (const [ID, status] of [
    ['../escape-attempt-here', 500],
    [customId, 409],
  ] as const) {
    receiver.answer(() => ({ ChangeFileInfo: { ID } }))
    expect((await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3 } })).status).toBe(status)
  }
  expect(await sha256OfDownload(uploadUrl)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
})

test('StopUpload from post-receive stops the upload: the hook answer, the upload removed, post-terminate sent', async () => {
  const { url, dir } = await start({ HOOKS_POST_RECEIVE_INTERVAL: '100ms' })
  receiver.answer((hook) =>
    hook.Type === 'post-receive' && hook.Event.Upload.Offset > 0 ? { StopUpload: true, HTTPResponse: { StatusCode: 410, Body: 'project deleted' } } : {},
  )
  const location = await createUpload(url, { 'Upload-Length': 1_000_000 })
  const id = idOf(location)
  // The whole body would take 3 s; the hook's status can only come from a stop on the way.
  const result = await pacedPatch(location, 0, randomData(1_000_000), { piece: 16 * 1024, delayMs: 50, holdMs: 0 })
  expect(result.status).toBe(410)
  expect((await request(location, { method: 'HEAD', headers: TUS })).status).toBe(404)
  expect((await patch(location, 0, 'x')).status).toBe(404)
  expect(existsSync(path.join(dir, id))).toBe(false)
  await receiver.waitFor(() => receiver.of('post-terminate', id).length === 1, 5_000, 'post-terminate')
  expect(receiver.of('post-finish', id)).toHaveLength(0)
})

test('a creation-with-upload POST sends post-receive as its body streams; a StopUpload cuts it and leaves no upload', async () => {
  const { url, dir } = await start({ HOOKS_POST_RECEIVE_INTERVAL: '100ms' })
  const data = randomData(400_000, 7)
  // About 1.2 s of body: several post-receives on the way, then the last offset at its end.
  const whole = await pacedPatch(`${url}/files`, undefined, data, {
    piece: 16 * 1024,
    delayMs: 50,
    holdMs: 0,
    method: 'POST',
    headers: { 'Upload-Length': String(data.length) },
  })
  expect(whole.status).toBe(201)
  expect(whole.offset).toBe(String(data.length))
  const location = whole.headers?.location as string
  const id = idOf(location)
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
  const offsets = receiver
    .of('post-receive', id)
    .map((h) => h.Event.Upload.Offset)
    .sort((a, b) => a - b)
  expect(new Set(offsets.filter((o) => o > 0 && o < data.length)).size).toBeGreaterThanOrEqual(2)
  expect(offsets.at(-1)).toBe(data.length)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

  receiver.answer((hook) =>
    hook.Type === 'post-receive' && hook.Event.Upload.Offset > 0 ? { StopUpload: true, HTTPResponse: { StatusCode: 410, Body: 'project deleted' } } : {},
  )
  const before = readdirSync(dir).length
  const stopped = await pacedPatch(`${url}/files`, undefined, randomData(1_000_000, 8), {
    piece: 16 * 1024,
    delayMs: 50,
    holdMs: 0,
    method: 'POST',
    headers: { 'Upload-Length': '1000000' },
  })
  expect(stopped.status).toBe(410)
  expect(stopped.body).toBe('project deleted')
  const created = receiver
    .of('post-create')
    .map((h) => h.Event.Upload.ID)
    .filter((other) => other !== id)
  expect(created).toHaveLength(1)
  await receiver.waitFor(() => receiver.of('post-terminate', created[0]).length === 1, 5_000, 'post-terminate')
  expect((await request(`${url}/files/${created[0]}`, { method: 'HEAD', headers: TUS })).status).toBe(404)
  expect(readdirSync(dir).length).toBe(before)
  expect(receiver.of('post-finish', created[0])).toHaveLength(0)
})

test('pre-finish changes the final response; pre-terminate can refuse a termination', async () => {
  const { url } = await start()
  receiver.answer((hook) => {
    if (hook.Type === 'pre-finish')
      return { HTTPResponse: { StatusCode: 200, Body: 'processed', Header: { Link: '<https://example.com/f/1>; rel="related"' } } }
    if (hook.Type === 'pre-terminate') return { RejectTermination: true, HTTPResponse: { Body: 'keep it' } }
    return {}
  })
  const location = await createUpload(url, { 'Upload-Length': 3 })
  const done = await patch(location, 0, 'abc')
  expect(done.status).toBe(200)
  expect(done.body.toString()).toBe('processed')
  expect(done.headers.link).toBe('<https://example.com/f/1>; rel="related"')
  expect(done.headers['upload-offset']).toBe('3')

  const refused = await request(location, { method: 'DELETE', headers: TUS })
  expect(refused.status).toBe(400)
  expect(refused.body.toString()).toBe('keep it')
  expect((await request(location, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('3')
  expect(receiver.of('post-terminate')).toHaveLength(0)
})

test('post-finish is delivered once per upload', async () => {
  const { url } = await start({ HOOKS_ENABLED: 'post-finish' })
  const urls = await Promise.all([0, 1, 2].map((i) => tusUpload(`${url}/files`, randomData(100_000 + i, i + 1))))
  // An empty upload and a creation-with-upload finish in their POST.
  urls.push(await createUpload(url, { 'Upload-Length': 0 }))
  const withBody = await request(`${url}/files`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Length': 3, 'Content-Type': 'application/offset+octet-stream' },
    body: 'xyz',
  })
  expect(withBody.status).toBe(201)
  urls.push(new URL(String(withBody.headers.location), url).toString())
  // A repeated empty PATCH at the end does not finish the upload again.
  expect((await patch(urls[0], 100_000, '')).status).toBe(204)

  await receiver.waitFor(() => receiver.of('post-finish').length >= urls.length, 5_000, 'post-finishes')
  await new Promise((resolve) => setTimeout(resolve, 500))
  const ids = receiver.of('post-finish').map((h) => h.Event.Upload.ID)
  expect(ids.sort()).toEqual(urls.map(idOf).sort())
  expect(await hooked.server?.app.metrics.registry.getSingleMetricAsString('tusgate_hook_invocations_total')).toContain(
    'tusgate_hook_invocations_total{type="post-finish",outcome="ok"} 5',
  )
})

test('AUTH_MODE=hook: the pre-create hook decides every creation from the client request', async () => {
  const { url, dir } = await start({ AUTH_MODE: 'hook', HOOKS_ENABLED: 'pre-create,pre-access' })
  receiver.answer((hook) =>
    hook.Event.HTTPRequest.Header.Authorization?.[0] === 'Bearer good'
      ? {}
      : { RejectUpload: true, HTTPResponse: { StatusCode: 401, Body: 'who are you?', Header: { 'WWW-Authenticate': 'Bearer realm="app"' } } },
  )
  const refused = await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Length': 3, Authorization: 'Bearer bad' } })
  expect(refused.status).toBe(401)
  expect(refused.body.toString()).toBe('who are you?')
  expect(refused.headers['www-authenticate']).toBe('Bearer realm="app"')
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])

  const data = randomData(5_000, 3)
  const uploadUrl = await tusUpload(`${url}/files`, data, { headers: { Authorization: 'Bearer good' } })
  expect(await sha256OfDownload(uploadUrl)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
})

test('a failing pre-finish answers 500, yet the upload is complete and its post-finish is sent', async () => {
  const { url } = await start({ HOOKS_RETRIES: '0' })
  receiver.answer((hook): Answer => (hook.Type === 'pre-finish' ? { status: 500, text: 'broken' } : {}))
  const location = await createUpload(url, { 'Upload-Length': 3 })
  expect((await patch(location, 0, 'abc')).status).toBe(500)
  expect((await request(location, { method: 'HEAD', headers: TUS })).headers['upload-offset']).toBe('3')
  await receiver.waitFor(() => receiver.of('post-finish', idOf(location)).length === 1, 5_000, 'post-finish')
  expect(hooked.server?.logs.some((l) => l.message === 'upload finished' && l.uploadId === idOf(location))).toBe(true)
})

test('IETF draft requests run the same hooks: pre-create may refuse, post-finish and post-terminate are delivered', async () => {
  const { url, dir } = await start()
  const ietf = { 'Upload-Draft-Interop-Version': '8' }
  receiver.answer((hook) => (hook.Type === 'pre-create' && hook.Event.Upload.MetaData?.filetype === 'application/x-msdownload' ? { RejectUpload: true } : {}))
  const refused = await request(`${url}/files`, {
    method: 'POST',
    headers: { ...ietf, 'Upload-Complete': '?1', 'Content-Type': 'application/x-msdownload' },
    body: 'MZ',
  })
  expect(refused.status).toBe(400)
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])

  const body = randomData(1000)
  const created = await request(`${url}/files`, { method: 'POST', headers: { ...ietf, 'Upload-Complete': '?1', 'Content-Type': 'image/png' }, body })
  expect(created.status).toBe(201)
  const id = idOf(created.headers.location as string)
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish of an IETF upload')
  expect(receiver.of('pre-create').at(-1)?.Event.Upload.MetaData).toEqual({ filetype: 'image/png' })
  expect(receiver.of('pre-finish', id)).toHaveLength(1)
  expect(receiver.of('post-finish', id)[0].Event.Upload).toMatchObject({ ID: id, Size: 1000, Offset: 1000 })
  expect((await sha256OfDownload(created.headers.location as string)).sha).toBe(sha256(body))

  // An upload finished by an IETF append, then cancelled.
  const open = await request(`${url}/files`, { method: 'POST', headers: { ...ietf, 'Upload-Complete': '?0', 'Upload-Length': 4 }, body: 'ab' })
  const location = open.headers.location as string
  const appended = await request(location, {
    method: 'PATCH',
    headers: { ...ietf, 'Content-Type': 'application/partial-upload', 'Upload-Offset': 2, 'Upload-Complete': '?1' },
    body: 'cd',
  })
  expect(appended.status).toBe(204)
  await receiver.waitFor(() => receiver.of('post-finish', idOf(location)).length === 1, 5_000, 'post-finish after an IETF append')
  expect((await request(location, { method: 'DELETE', headers: ietf })).status).toBe(204)
  await receiver.waitFor(() => receiver.of('post-terminate', idOf(location)).length === 1, 5_000, 'post-terminate of an IETF cancellation')
  expect(receiver.of('pre-terminate', idOf(location))).toHaveLength(1)
})

test('a pre-create ChangeFileInfo.ID names IETF and final uploads too: their Location, content and hooks use the new id', async () => {
  const { url } = await start()
  let n = 0
  receiver.answer((hook) => (hook.Type === 'pre-create' ? { ChangeFileInfo: { ID: `renamed-${++n}-${'ab12'.repeat(4)}` } } : {}))
  const body = randomData(5000, 3)
  const created = await request(`${url}/files`, { method: 'POST', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' }, body })
  expect(created.status).toBe(201)
  const location = new URL(created.headers.location as string, url).toString()
  expect(location).toBe(`${url}/files/renamed-1-${'ab12'.repeat(4)}`)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256(body), bytes: body.length })
  await receiver.waitFor(() => receiver.of('post-finish', idOf(location)).length === 1, 5_000, 'post-finish under the new id')

  // A final upload (concatenation) renamed as well: assembled under the new id.
  const partial = await createUpload(url, { 'Upload-Length': 3, 'Upload-Concat': 'partial' })
  expect((await patch(partial, 0, 'xyz')).status).toBe(204)
  const final = await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${new URL(partial).pathname}` } })
  expect(final.status).toBe(201)
  expect(final.headers.location).toBe(`${url}/files/renamed-3-${'ab12'.repeat(4)}`)
  expect(await sha256OfDownload(final.headers.location as string)).toEqual({ status: 200, sha: sha256('xyz'), bytes: 3 })
})

const MiB = 1024 * 1024
const IETF = { 'Upload-Draft-Interop-Version': '8' }
const IETF_APPEND = { ...IETF, 'Content-Type': 'application/partial-upload' }

test('IETF draft uploads send post-receive: for a creation with content, and while an append streams', async () => {
  const { url } = await start({ HOOKS_POST_RECEIVE_INTERVAL: '100ms' })
  const data = randomData(3 * MiB, 7)
  const head = 1000
  const created = await request(`${url}/files`, {
    method: 'POST',
    headers: { ...IETF, 'Upload-Complete': '?0', 'Upload-Length': data.length },
    body: data.subarray(0, head),
  })
  expect(created.status).toBe(201)
  const location = new URL(created.headers.location as string, url).toString()
  const id = idOf(location)
  await receiver.waitFor(() => receiver.of('post-receive', id).length === 1, 5_000, 'post-receive of the creation')
  const [creation] = receiver.of('post-receive', id)
  expect(creation.Event.Upload).toMatchObject({ ID: id, Offset: head, Size: data.length })
  expect(creation.Event.HTTPRequest).toMatchObject({ Method: 'POST', URI: '/files' })

  // 64 KiB every 25 ms: the append streams for more than a second, a dozen intervals.
  const appended = await pacedPatch(location, head, data.subarray(head), {
    piece: 64 * 1024,
    delayMs: 25,
    holdMs: 0,
    headers: { ...IETF_APPEND, 'Upload-Complete': '?1' },
  })
  expect(appended.status).toBe(204)
  expect(appended.headers?.['upload-complete']).toBe('?1')
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish')
  await receiver.waitFor(() => receiver.of('post-receive', id).some((h) => h.Event.Upload.Offset === data.length), 5_000, 'the last post-receive')
  const receives = receiver.of('post-receive', id).slice(1)
  for (const hook of receives) expect(hook.Event.HTTPRequest).toMatchObject({ Method: 'PATCH', URI: `/files/${id}` })
  // Sent only when the offset moved, so each is further on (they travel on their own connections: sorted).
  const offsets = receives.map((h) => h.Event.Upload.Offset).sort((a, b) => a - b)
  expect(offsets.length).toBeGreaterThanOrEqual(4)
  expect(new Set(offsets).size).toBe(offsets.length)
  expect(offsets[0]).toBeGreaterThan(head)
  expect(offsets.at(-1)).toBe(data.length)
  expect((await sha256OfDownload(location)).sha).toBe(sha256(data))
})

test('StopUpload from post-receive stops an IETF append: the hook answer in the IETF shape, the upload removed, post-terminate sent', async () => {
  const { url, dir } = await start({ HOOKS_POST_RECEIVE_INTERVAL: '100ms' })
  receiver.answer((hook) =>
    hook.Type === 'post-receive' && hook.Event.Upload.Offset > 0
      ? { StopUpload: true, HTTPResponse: { StatusCode: 410, Body: 'project deleted', Header: { 'X-Reason': 'quota' } } }
      : {},
  )
  const data = randomData(2 * MiB, 8)
  const created = await request(`${url}/files`, { method: 'POST', headers: { ...IETF, 'Upload-Complete': '?0', 'Upload-Length': data.length } })
  expect(created.status).toBe(201)
  const location = new URL(created.headers.location as string, url).toString()
  const id = idOf(location)
  // The whole body would take 6 s; the hook's status can only come from a stop on the way.
  const started = Date.now()
  const result = await pacedPatch(location, 0, data, { piece: 16 * 1024, delayMs: 50, holdMs: 0, headers: { ...IETF_APPEND, 'Upload-Complete': '?1' } })
  expect(Date.now() - started).toBeLessThan(5_000)
  expect(result.status).toBe(410)
  expect(result.body).toBe('project deleted')
  expect(result.headers).toMatchObject({ 'x-reason': 'quota', 'upload-draft-interop-version': '8', 'upload-complete': '?0' })

  expect((await request(location, { method: 'HEAD', headers: IETF })).status).toBe(404)
  expect((await request(location, { method: 'HEAD', headers: TUS })).status).toBe(404)
  const resumed = await request(location, { method: 'PATCH', headers: { ...IETF_APPEND, 'Upload-Offset': 0, 'Upload-Complete': '?1' }, body: 'x' })
  expect(resumed.status).toBe(404)
  expect(existsSync(path.join(dir, id))).toBe(false)
  await receiver.waitFor(() => receiver.of('post-terminate', id).length === 1, 5_000, 'post-terminate')
  expect(receiver.of('post-terminate', id)[0].Event.HTTPRequest.Method).toBe('PATCH')
  expect(receiver.of('post-finish', id)).toHaveLength(0)
})

test('concatenation in the payload: IsPartial for partial uploads, IsFinal and PartialUploads for the final one', async () => {
  const { url } = await start()
  const partial = async (body: string) => {
    const location = await createUpload(url, { 'Upload-Length': body.length, 'Upload-Concat': 'partial' })
    expect((await patch(location, 0, body)).status).toBe(204)
    return location
  }
  const [a, b] = [await partial('abc'), await partial('defg')]
  const final = await request(`${url}/files`, { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${new URL(a).pathname} ${b}` } })
  expect(final.status).toBe(201)
  const id = idOf(final.headers.location as string)
  await receiver.waitFor(() => receiver.of('post-finish', id).length === 1, 5_000, 'post-finish of the final upload')

  expect(receiver.of('pre-create').map((hook) => [hook.Event.Upload.IsPartial, hook.Event.Upload.IsFinal])).toEqual([
    [true, false],
    [true, false],
    [false, true],
  ])
  expect(receiver.of('post-finish', idOf(a))[0].Event.Upload).toMatchObject({ IsPartial: true, IsFinal: false, PartialUploads: null })
  expect(receiver.of('post-finish', id)[0].Event.Upload).toMatchObject({
    IsPartial: false,
    IsFinal: true,
    PartialUploads: [idOf(a), idOf(b)],
    Size: 7,
    Offset: 7,
  })
  // The recorded Upload-Concat stays the server's: not in MetaData.
  expect(receiver.of('post-finish', id)[0].Event.Upload.MetaData).toEqual({})
})
