// File hooks (HOOKS_DIR) against real shell scripts run by a real server: answers, refusals, failures, the outbox, the config.
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { workerCount } from '../server/cluster.js'
import { ConfigError, loadConfig } from '../server/config.js'
import { createUpload, patch, randomData, request, sha256, sha256OfDownload, TUS } from './helpers/http.js'
import { capturedLogger, type InProcessServer, startServer, tempDir } from './helpers/servers.js'
import { until } from './helpers/wait.js'

let server: InProcessServer | undefined
const temps: Array<{ remove(): void }> = []

afterEach(async () => {
  await server?.stop()
  server = undefined
  for (const temp of temps.splice(0)) temp.remove()
})

/** A fresh hooks folder holding the given scripts (name → body after the #! line), each chmod 755. */
function hooksDir(scripts: Record<string, string>): string {
  const temp = tempDir('tusgate-filehooks-')
  temps.push(temp)
  for (const [name, body] of Object.entries(scripts)) {
    const file = path.join(temp.dir, name)
    writeFileSync(file, `#!/bin/sh\n${body}\n`)
    chmodSync(file, 0o755)
  }
  return temp.dir
}

const b64 = (text: string) => Buffer.from(text).toString('base64')
const idOf = (url: string) => url.split('/').pop() as string
const create = (url: string, headers: Record<string, string | number>) => request(`${url}/files`, { method: 'POST', headers: { ...TUS, ...headers } })
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])

/** Resolves once `check` holds, polling every 20 ms; rejects after `ms`. */
const outboxEmpty = async () =>
  ((await server?.app.metrics.registry.getSingleMetricAsString('tusgate_hook_outbox_pending')) ?? '').includes('tusgate_hook_outbox_pending 0')

/** Whether a process is gone: no /proc entry, or a zombie only waiting for its parent to read its status. */
function gone(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

/** Refuses a filename ending in .exe; renames an upload whose filename is renamed.txt; lets the rest through. */
const PRE_CREATE = `input=$(cat)
if printf '%s' "$input" | grep -q '"filename":"[^"]*\\.exe"'; then
  printf '%s' '{"RejectUpload":true,"HTTPResponse":{"StatusCode":400,"Body":"no exe"}}'
elif printf '%s' "$input" | grep -q '"filename":"renamed.txt"'; then
  printf '%s' '{"ChangeFileInfo":{"ID":"chosen-by-a-file-hook-0001"}}'
fi`

test('pre-create refuses with its own status and body, lets a normal creation through, and can choose the id', async () => {
  server = await startServer({ HOOKS_DIR: hooksDir({ 'pre-create': PRE_CREATE }), HOOKS_ENABLED: 'pre-create' })
  const { url, dir } = server

  const refused = await create(url, { 'Upload-Length': 3, 'Upload-Metadata': `filename ${b64('virus.exe')}` })
  expect([refused.status, refused.body.toString()]).toEqual([400, 'no exe'])
  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])

  const data = randomData(70_000, 5)
  const normal = await create(url, { 'Upload-Length': data.length, 'Upload-Metadata': `filename ${b64('photo.png')}` })
  expect(normal.status).toBe(201)
  const location = new URL(String(normal.headers.location), url).toString()
  expect((await patch(location, 0, data)).status).toBe(204)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

  const renamed = await create(url, { 'Upload-Length': 3, 'Upload-Metadata': `filename ${b64('renamed.txt')}` })
  expect(renamed.status).toBe(201)
  expect(idOf(String(renamed.headers.location))).toBe('chosen-by-a-file-hook-0001')
  const renamedUrl = new URL(String(renamed.headers.location), url).toString()
  expect((await patch(renamedUrl, 0, 'abc')).status).toBe(204)
  expect(await sha256OfDownload(renamedUrl)).toEqual({ status: 200, sha: sha256('abc'), bytes: 3 })
})

test('post-finish gets the hook request on stdin, in HOOKS_DIR, with a minimal environment, exactly once', async () => {
  // Relative paths: the script runs in HOOKS_DIR.
  const hooks = hooksDir({ 'post-finish': 'cat >> events.log && echo >> events.log && env > env.txt' })
  server = await startServer({ HOOKS_DIR: hooks, HOOKS_ENABLED: 'post-finish' })
  const data = randomData(200_000, 9)
  const location = await createUpload(server.url, { 'Upload-Length': data.length })
  expect((await patch(location, 0, data.subarray(0, 100_000))).status).toBe(204)
  expect((await patch(location, 100_000, data.subarray(100_000))).status).toBe(204)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

  // Once the outbox is empty the hook has run and been completed: nothing more comes.
  await until(async () => lines(path.join(hooks, 'events.log')).length > 0 && (await outboxEmpty()), 10_000, 'post-finish')
  const events = lines(path.join(hooks, 'events.log')).map((line) => JSON.parse(line))
  expect(events).toHaveLength(1)
  expect(events[0].Type).toBe('post-finish')
  expect(events[0].Event.Upload).toMatchObject({ ID: idOf(location), Size: data.length, Offset: data.length })
  expect(events[0].Event.HTTPRequest).toMatchObject({ Method: 'PATCH', URI: `/files/${idOf(location)}` })

  const env = readFileSync(path.join(hooks, 'env.txt'), 'utf8')
  expect(env).toContain('TUSGATE_HOOK_TYPE=post-finish\n')
  expect(env).toContain(`TUS_ID=${idOf(location)}\n`)
  expect(env).toContain(`TUS_SIZE=${data.length}\n`)
  expect(env).toMatch(/^PATH=/m)
  // Nothing of tusgate's own environment (which holds its secrets).
  expect(env).not.toMatch(/^(HOME|NODE_OPTIONS|JEST_WORKER_ID)=/m)
})

test('a pre-create that exits 1, is killed, prints invalid JSON or too much, or is not executable refuses the creation with 500, as a failing HTTP hook', async () => {
  const hooks = hooksDir({ 'pre-create': 'echo run >> attempts.log\necho "quota service down" >&2\nexit 1' })
  server = await startServer({ HOOKS_DIR: hooks, HOOKS_ENABLED: 'pre-create', HOOKS_RETRIES: '2', HOOKS_BACKOFF: '10ms' })
  const { url, dir, logs } = server
  const lastFailure = () => JSON.stringify(logs.filter((l) => l.message === 'upload failed').at(-1))
  const attempts = path.join(hooks, 'attempts.log')
  const script = (body: string) => writeFileSync(path.join(hooks, 'pre-create'), `#!/bin/sh\necho run >> attempts.log\n${body}\n`)

  // A non-zero exit is the hook's answer: not tried again.
  expect((await create(url, { 'Upload-Length': 3 })).status).toBe(500)
  expect(lastFailure()).toContain('pre-create hook failed: hook')
  expect(lastFailure()).toContain('exited with code 1')
  expect(lines(attempts)).toHaveLength(1)
  expect(logs.filter((l) => l.message === 'hook stderr')).toEqual([expect.objectContaining({ type: 'pre-create', stderr: 'quota service down' })])

  // Ended by a signal: tried again, HOOKS_RETRIES times.
  script('kill -9 $$')
  expect((await create(url, { 'Upload-Length': 3 })).status).toBe(500)
  expect(lastFailure()).toContain('was ended by SIGKILL')
  expect(lines(attempts)).toHaveLength(1 + 3)

  script('echo "{not json"')
  expect((await create(url, { 'Upload-Length': 3 })).status).toBe(500)
  expect(lastFailure()).toContain('hook response is not valid JSON')

  // More than 64 KiB of blanks: an empty answer if it were read to the end.
  script("head -c 70000 /dev/zero | tr '\\0' ' '")
  expect((await create(url, { 'Upload-Length': 3 })).status).toBe(500)
  expect(lastFailure()).toContain('wrote more than 65536 bytes to stdout')

  chmodSync(path.join(hooks, 'pre-create'), 0o644)
  expect((await create(url, { 'Upload-Length': 3 })).status).toBe(500)
  expect(lastFailure()).toContain('pre-create is not executable (EACCES)')

  expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])
})

test('a pre-create running past HOOKS_TIMEOUT refuses the creation, and it and what it started are killed', async () => {
  // The background sleep holds no pipe of tusgate's: only a kill of the process group ends it.
  const hooks = hooksDir({ 'pre-create': 'echo $$ > pid\nsleep 30 > /dev/null 2>&1 &\necho $! > child\nwait' })
  server = await startServer({ HOOKS_DIR: hooks, HOOKS_ENABLED: 'pre-create', HOOKS_TIMEOUT: '500ms' })
  const res = await create(server.url, { 'Upload-Length': 3 })
  expect(res.status).toBe(500)
  expect(JSON.stringify(server.logs.find((l) => l.message === 'upload failed'))).toContain('gave no answer within 500 ms and was killed')
  const pid = Number(readFileSync(path.join(hooks, 'pid'), 'utf8'))
  const child = Number(readFileSync(path.join(hooks, 'child'), 'utf8'))
  expect(pid).toBeGreaterThan(1)
  // The failure is answered once the script has been reaped; its `sleep` was in its process group.
  expect(gone(pid)).toBe(true)
  await until(() => gone(child), 5_000, `the script's sleep (${child}) to be killed`)
})

test('an enabled hook type without an executable in HOOKS_DIR is skipped', async () => {
  const hooks = hooksDir({ 'post-create': 'cat > /dev/null; echo created >> post-create.log' })
  server = await startServer({ HOOKS_DIR: hooks, HOOKS_ENABLED: 'pre-create,post-create,pre-finish,pre-terminate' })
  const location = await createUpload(server.url, { 'Upload-Length': 3 })
  expect((await patch(location, 0, 'xyz')).status).toBe(204)
  expect(await sha256OfDownload(location)).toEqual({ status: 200, sha: sha256('xyz'), bytes: 3 })
  expect((await request(location, { method: 'DELETE', headers: TUS })).status).toBe(204)
  // The one script present did run.
  await until(() => lines(path.join(hooks, 'post-create.log')).length === 1, 5_000, 'post-create')
})

test('a post-finish that fails the first time is delivered again by the outbox', async () => {
  const script = `cat >> attempts.log && echo >> attempts.log
if [ ! -e failed-once ]; then : > failed-once; echo "not yet" >&2; exit 1; fi`
  const hooks = hooksDir({ 'post-finish': script })
  server = await startServer({ HOOKS_DIR: hooks, HOOKS_ENABLED: 'post-finish', HOOKS_BACKOFF: '200ms', HOOKS_BACKOFF_MAX: '1s' })
  const location = await createUpload(server.url, { 'Upload-Length': 3 })
  expect((await patch(location, 0, 'abc')).status).toBe(204)

  await until(async () => lines(path.join(hooks, 'attempts.log')).length === 2 && (await outboxEmpty()), 10_000, 'the second attempt')
  const attempts = lines(path.join(hooks, 'attempts.log')).map((line) => JSON.parse(line))
  expect(attempts.map((a) => [a.Type, a.Event.Upload.ID])).toEqual([
    ['post-finish', idOf(location)],
    ['post-finish', idOf(location)],
  ])
  const failure = server.logs.find((l) => l.message === 'hook delivery failed')
  expect(failure).toMatchObject({ uploadId: idOf(location), attempts: 1 })
  expect(String(failure?.error)).toContain('exited with code 1')
  expect(server.logs.find((l) => l.message === 'hook stderr')).toMatchObject({ type: 'post-finish', uploadId: idOf(location), stderr: 'not yet' })
  expect(server.logs.some((l) => l.message === 'hook dead-lettered')).toBe(false)
})

describe('config', () => {
  test('HOOKS_DIR and HOOKS_URL are exclusive; HOOKS_DIR must be a folder that exists', () => {
    const hooks = hooksDir({})
    expect(loadConfig({ HOOKS_DIR: hooks }).HOOKS_DIR).toBe(hooks)
    expect(loadConfig({ HOOKS_DIR: path.relative(process.cwd(), hooks) }).HOOKS_DIR).toBe(hooks)
    const refusals: Array<[Record<string, string>, RegExp]> = [
      [{ HOOKS_DIR: hooks, HOOKS_URL: 'http://hooks:8081/' }, /^invalid HOOKS_DIR: give HOOKS_URL or HOOKS_DIR, not both$/],
      [{ HOOKS_DIR: path.join(hooks, 'nowhere') }, /^invalid HOOKS_DIR: '.*nowhere' does not exist$/],
      [{ HOOKS_DIR: path.join(hooksDir({ 'pre-create': 'exit 0' }), 'pre-create') }, /^invalid HOOKS_DIR: '.*pre-create' is not a folder$/],
    ]
    for (const [env, message] of refusals) {
      expect(() => loadConfig(env)).toThrow(ConfigError)
      expect(() => loadConfig(env)).toThrow(message)
    }
  })

  test('with HOOKS_DIR and a durable hook, tusgate serves from one process (the outbox has one writer)', () => {
    const { logger } = capturedLogger()
    expect(workerCount(loadConfig({ HOOKS_DIR: hooksDir({}), WORKERS: '4', HOOKS_ENABLED: 'post-finish' }), logger)).toBe(1)
    expect(workerCount(loadConfig({ HOOKS_DIR: hooksDir({}), WORKERS: '4', HOOKS_ENABLED: 'pre-create' }), logger)).toBe(4)
  })

  test('AUTH_MODE=hook works with HOOKS_DIR, which must hold pre-create and pre-access', async () => {
    expect(() => loadConfig({ AUTH_MODE: 'hook', HOOKS_DIR: hooksDir({ 'pre-create': 'exit 0' }) })).toThrow(
      /^invalid HOOKS_DIR: AUTH_MODE=hook needs an executable pre-access in it$/,
    )
    const gate = `grep -q '"Authorization":\\["Bearer good"\\]' || printf '%s' '{"RejectUpload":true,"RejectAccess":true,"HTTPResponse":{"StatusCode":401,"Body":"who are you?"}}'`
    const hooks = hooksDir({ 'pre-create': gate, 'pre-access': gate })
    server = await startServer({ AUTH_MODE: 'hook', HOOKS_DIR: hooks })
    const { url } = server
    const refused = await create(url, { 'Upload-Length': 3, Authorization: 'Bearer bad' })
    expect([refused.status, refused.body.toString()]).toEqual([401, 'who are you?'])

    const data = randomData(10_000, 2)
    const location = await createUpload(url, { 'Upload-Length': data.length, Authorization: 'Bearer good' })
    expect((await patch(location, 0, data, { Authorization: 'Bearer good' })).status).toBe(204)
    expect((await patch(location, data.length, '', { Authorization: 'Bearer bad' })).status).toBe(401)
    const download = await request(location, { headers: { Authorization: 'Bearer good' } })
    expect([download.status, sha256(download.body)]).toEqual([200, sha256(data)])
    expect((await request(location, { headers: { Authorization: 'Bearer bad' } })).status).toBe(401)

    // A gate hook gone missing while running refuses rather than lets everyone in.
    rmSync(path.join(hooks, 'pre-access'))
    expect((await request(location, { headers: { Authorization: 'Bearer good' } })).status).toBe(500)
    expect(JSON.stringify(server.logs.find((l) => l.message === 'download refused'))).toContain('pre-access is missing (needed with AUTH_MODE=hook)')
  })
})
