import { execFile } from 'node:child_process'
import { statSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { createUpload, randomData, request, TUS } from './helpers/http.js'
import { ROOT, useServer } from './helpers/servers.js'

const run = promisify(execFile)
const MiB = 1024 * 1024

describe('the readable log format', () => {
  // One pretty line from the real logger, in a process of its own whose stdout is a pipe (or, through
  // script(1), a terminal).
  const program = `import { createLogger } from './server/logger.ts'; createLogger({ LOG_LEVEL: 'info', LOG_FORMAT: 'pretty' }).info('hello', { n: 1 })`
  const argv = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', program]

  test('has no colour codes when stdout is not a terminal', async () => {
    const [command, ...args] = argv
    const { stdout } = await run(command, args, { cwd: ROOT })
    expect(stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} info hello n=1\n$/)
    expect(stdout).not.toContain('\u001b[')
  }, 30_000)

  test('is coloured in a terminal', async () => {
    const quoted = argv.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ')
    const { stdout } = await run('script', ['-qec', quoted, '/dev/null'], { cwd: ROOT })
    expect(stdout).toContain('\u001b[32minfo\u001b[39m hello n=1')
  }, 30_000)
})

describe('the access-log line of an interrupted PATCH', () => {
  const server = useServer()

  test('carries the bytes the store kept, not 0', async () => {
    const data = randomData(32 * MiB, 61)
    const url = await createUpload(server.url, { 'Upload-Length': data.length })
    const id = url.split('/').pop() as string
    const req = http.request(url, {
      method: 'PATCH',
      agent: false,
      headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': 0, 'Content-Length': data.length },
    })
    req.on('error', () => {})
    req.write(data.subarray(0, 12 * MiB))
    // Cut the connection once the store has some of it on disk.
    const file = path.join(server.dir, id)
    for (let i = 0; !(statSync(file, { throwIfNoEntry: false })?.size ?? 0); i++) {
      if (i > 200) throw new Error('nothing stored within 10 s')
      await sleep(50)
    }
    req.destroy()

    const lineOf = () => server.logs.find((l) => l.message === 'request' && l.method === 'PATCH' && l.uploadId === id)
    for (let i = 0; !lineOf(); i++) {
      if (i > 200) throw new Error('no log line for the PATCH within 10 s')
      await sleep(50)
    }
    const line = lineOf()
    const offset = Number((await request(url, { method: 'HEAD', headers: TUS })).headers['upload-offset'])
    expect(offset).toBeGreaterThan(0)
    expect(line).toMatchObject({ status: 499, bytes: offset })
  }, 60_000)
})
