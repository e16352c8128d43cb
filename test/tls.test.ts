import { execFile } from 'node:child_process'
import { copyFileSync, readFileSync, renameSync, utimesSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import { promisify } from 'node:util'
import * as tus from 'tus-js-client'
import { loadConfig } from '../server/config.js'
import { randomData, sha256 } from './helpers/http.js'
import { processPool } from './helpers/servers.js'

// tusgate as its own process with TLS_CERT_FILE/TLS_KEY_FILE: HTTPS, https Locations, and certificates
// replaced under a running upload (SIGHUP, or the files changing) without cutting it.
const run = promisify(execFile)
const MiB = 1024 * 1024
const { newDir, launch, cleanup } = processPool('tusgate-tls-')
afterEach(() => cleanup())

interface Pair {
  cert: string
  key: string
  name: string
}

/** A self-signed certificate for 127.0.0.1 named `name` (openssl, from Debian). */
async function certificate(dir: string, name: string): Promise<Pair> {
  const cert = path.join(dir, `${name}.crt`)
  const key = path.join(dir, `${name}.key`)
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ])
  return { cert, key, name }
}

/** Puts a pair in place the way renewals do: written beside, then renamed over. */
function install(pair: Pair, certFile: string, keyFile: string) {
  copyFileSync(pair.key, `${keyFile}.new`)
  copyFileSync(pair.cert, `${certFile}.new`)
  renameSync(`${keyFile}.new`, keyFile)
  renameSync(`${certFile}.new`, certFile)
}

/** The CN of the certificate a new TLS connection is given. */
function servedName(port: number, ca: Buffer[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: undefined }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN))
      socket.end()
    })
    socket.on('error', reject)
  })
}

async function waitForName(port: number, ca: Buffer[], name: string): Promise<void> {
  for (let i = 0; ; i++) {
    if ((await servedName(port, ca)) === name) return
    if (i >= 100) throw new Error(`the server did not serve ${name} within 10 s`)
    await sleep(100)
  }
}

function httpsRequest(url: string, ca: Buffer[], options: https.RequestOptions = {}, body?: Buffer) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const req = https.request(url, { ca, agent: false, ...options }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** A PATCH over HTTPS that sends the first half of its body, waits for `gate`, then the rest; resolves with the response. */
function gatedPatch(url: string, ca: Buffer[], offset: number, data: Buffer, gate: Promise<void>) {
  return new Promise<{ status: number; offset?: string }>((resolve, reject) => {
    const req = https.request(url, {
      method: 'PATCH',
      ca,
      agent: false,
      headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': offset, 'Content-Length': data.length },
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, offset: res.headers['upload-offset'] as string | undefined }))
    })
    req.on('error', reject)
    const half = Math.floor(data.length / 2)
    req.write(data.subarray(0, half))
    void gate.then(() => req.end(data.subarray(half)))
  })
}

describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
  test('come as a pair', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: '/x.crt' })).toThrow(/TLS_CERT_FILE: give both/)
    expect(() => loadConfig({ TLS_KEY_FILE: '/x.key' })).toThrow(/TLS_CERT_FILE: give both/)
    expect(loadConfig({ TLS_CERT_FILE: '/x.crt', TLS_KEY_FILE: '/x.key' })).toMatchObject({ TLS_CERT_FILE: '/x.crt' })
  })

  test('tus-js-client uploads over HTTPS: an https Location, and the download has the same SHA-256; h2 is not offered', async () => {
    const dir = newDir()
    const pair = await certificate(dir, 'tusgate-a')
    const ca = [readFileSync(pair.cert)]
    const server = await launch(dir, { TLS_CERT_FILE: pair.cert, TLS_KEY_FILE: pair.key })
    const base = `https://127.0.0.1:${server.port}`
    expect((await httpsRequest(`${base}/healthz`, ca)).status).toBe(200)

    const data = randomData(6 * MiB + 7, 51)
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: `${base}/files`,
        httpStack: new tus.DefaultHttpStack({ ca }),
        chunkSize: 4 * MiB,
        retryDelays: null,
        onSuccess: () => resolve(upload.url as string),
        onError: reject,
      })
      upload.start()
    })
    expect(url).toMatch(new RegExp(`^${base}/files/[^/]+$`))
    const download = await httpsRequest(url, ca)
    expect(download.status).toBe(200)
    expect(sha256(download.body)).toBe(sha256(data))

    // A client asking for HTTP/2 is answered on HTTP/1.1 (ALPN offers no h2; docs/deployment.md says why).
    const curl = await run('curl', ['-sS', '--http2', '--cacert', pair.cert, '-o', '/dev/null', '-w', '%{http_version}', `${base}/healthz`])
    expect(curl.stdout).toBe('1.1')
  }, 60_000)

  test('SIGHUP, then a change of the files, serve new certificates while an upload in progress carries on', async () => {
    const dir = newDir()
    const [a, b] = await Promise.all([certificate(dir, 'tusgate-a'), certificate(dir, 'tusgate-b')])
    const certFile = path.join(dir, 'live.crt')
    const keyFile = path.join(dir, 'live.key')
    // Whole seconds, so that the files' times can be put back exactly.
    const keepTimes = () => {
      for (const file of [certFile, keyFile]) utimesSync(file, 1_700_000_000, 1_700_000_000)
    }
    install(a, certFile, keyFile)
    keepTimes()
    const ca = [readFileSync(a.cert), readFileSync(b.cert)]
    const server = await launch(dir, { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile })
    const base = `https://127.0.0.1:${server.port}`
    expect(await servedName(server.port, ca)).toBe('tusgate-a')

    const data = randomData(6 * MiB, 52)
    const created = await httpsRequest(`${base}/files`, ca, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': data.length } })
    expect(created.status).toBe(201)
    const url = created.headers.location as string
    // The PATCH sends half its body, and the rest only once both reloads are done.
    let reloaded!: () => void
    const patching = gatedPatch(url, ca, 0, data, new Promise<void>((resolve) => (reloaded = resolve)))

    // SIGHUP rereads the files: b is served from now on. (Their times are kept, so that only the signal
    // can have reloaded them.)
    install(b, certFile, keyFile)
    keepTimes()
    await sleep(1500)
    expect(await servedName(server.port, ca)).toBe('tusgate-a')
    server.child.kill('SIGHUP')
    await waitForName(server.port, ca, 'tusgate-b')
    // The files changing is enough too.
    install(a, certFile, keyFile)
    await waitForName(server.port, ca, 'tusgate-a')
    reloaded()

    expect(await patching).toEqual({ status: 204, offset: String(data.length) })
    expect(server.child.exitCode).toBeNull()
    const download = await httpsRequest(url, ca)
    expect(sha256(download.body)).toBe(sha256(data))
  }, 60_000)

  test('a pair that does not load (a key for another certificate) leaves the current one served', async () => {
    const dir = newDir()
    const [a, b] = await Promise.all([certificate(dir, 'tusgate-a'), certificate(dir, 'tusgate-b')])
    const certFile = path.join(dir, 'live.crt')
    const keyFile = path.join(dir, 'live.key')
    install(a, certFile, keyFile)
    const ca = [readFileSync(a.cert), readFileSync(b.cert)]
    const server = await launch(dir, { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile })
    writeFileSync(certFile, readFileSync(b.cert))
    server.child.kill('SIGHUP')
    for (let i = 0; !server.output().includes('TLS certificate not reloaded'); i++) {
      if (i >= 100) throw new Error(`no warning within 10 s:\n${server.output()}`)
      await sleep(100)
    }
    expect(await servedName(server.port, ca)).toBe('tusgate-a')
    expect((await httpsRequest(`https://127.0.0.1:${server.port}/healthz`, ca)).status).toBe(200)
  }, 60_000)
})
