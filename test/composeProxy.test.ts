import { readFileSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import * as tus from 'tus-js-client'
import { parse as parseYaml } from 'yaml'
import { type CephCluster, startCeph, tusgateS3Env } from './helpers/ceph.js'
import { randomData, request, sha256, sha256OfDownload } from './helpers/http.js'
import { type Nginx, nginxConfig, startNginx } from './helpers/nginx.js'
import { pacedReader } from './helpers/pacedReader.js'
import { type RedisServer, startRedis } from './helpers/redis.js'
import { ROOT, type ServerProcess, startProcess } from './helpers/servers.js'

// The compose profile "scale" without Docker: its own nginx config, run by Debian's nginx, in front of two
// tusgate processes with the replicas' settings, over Ceph (S3) and a real Redis for the locks. The test
// is a client on nginx's address, as a browser would be on the published port.
const MiB = 1024 * 1024

interface Compose {
  services: Record<string, { environment?: Record<string, string>; configs?: { source: string; target: string }[] }>
  configs?: Record<string, { content?: string }>
}
const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as Compose
const replicaEnv = compose.services['tusgate-s3'].environment ?? {}

let ceph: CephCluster
let redis: RedisServer
let instances: ServerProcess[] = []
let nginx: Nginx

/** The compose nginx config with its upstream (the replicas' service name) pointed at the local instances. */
function proxyConfig(ports: number[]): string {
  const conf = nginxConfig(compose)
  const upstream = /^(\s*)server tusgate-s3:1080;$/m
  if (!upstream.test(conf)) throw new Error('the nginx config has no `server tusgate-s3:1080;` upstream line')
  return conf.replace(upstream, (_line, indent: string) => ports.map((port) => `${indent}server 127.0.0.1:${port};`).join('\n'))
}

beforeAll(async () => {
  ;[ceph, redis] = await Promise.all([startCeph(), startRedis()])
  // The replicas' environment from docker-compose.yml; only the addresses of S3 and Redis are local ones.
  const env = {
    ...replicaEnv,
    ...(await tusgateS3Env(ceph)),
    REDIS_URL: redis.url,
    PORT: '0',
    HOST: '127.0.0.1',
    // A killed instance's lock lapses within this.
    LOCK_TTL: '2s',
    SHUTDOWN_TIMEOUT: '2s',
  }
  instances = await Promise.all([startProcess(env), startProcess(env)])
  nginx = await startNginx(proxyConfig(instances.map((i) => i.port)))
}, 180_000)

afterAll(async () => {
  await nginx?.stop()
  await Promise.all(instances.map((i) => i.stop('SIGKILL')))
  await Promise.all([ceph?.stop(), redis?.dispose()])
})

/** tus-js-client (Node HTTP stack) uploading `data` to nginx; rejects on the client's error. */
function upload(data: Buffer, options: Partial<tus.UploadOptions> = {}): { upload: tus.Upload; done: Promise<string> } {
  let started!: tus.Upload
  const done = new Promise<string>((resolve, reject) => {
    started = new tus.Upload(data, {
      endpoint: `${nginx.url}/files`,
      metadata: { filename: 'proxied.bin' },
      retryDelays: null,
      ...options,
      onSuccess: () => resolve(started.url as string),
      onError: reject,
    })
  })
  started.start()
  return { upload: started, done }
}

describe('the compose nginx config, run by nginx, in front of two instances', () => {
  test('a tus-js-client upload: Location names the published address, and the download has the same SHA-256', async () => {
    const data = randomData(12 * MiB + 5, 41)
    const { done } = upload(data, { chunkSize: 5 * MiB })
    const url = await done
    expect(url.startsWith(`${nginx.url}/files/`)).toBe(true)
    const download = await sha256OfDownload(url)
    expect(download).toEqual({ status: 200, sha: sha256(data), bytes: data.length })

    // Both instances answer for it through the proxy (round robin): the same offset, the same Location.
    const created = await request(`${nginx.url}/files`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 1 } })
    expect(created.status).toBe(201)
    expect(created.headers.location).toMatch(new RegExp(`^${nginx.url}/files/[^/]+$`))
  }, 120_000)

  test('an IETF-draft creation with its content, then a HEAD on the same kept-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const send = (method: string, url: string, headers: Record<string, string | number>, body?: Buffer) =>
      new Promise<{ status: number; headers: http.IncomingHttpHeaders; reused: boolean; informational: number[] }>((resolve, reject) => {
        const informational: number[] = []
        const req = http.request(url, { method, headers, agent }, (res) => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, reused: req.reusedSocket, informational }))
        })
        req.on('information', (info) => informational.push(info.statusCode))
        // A proxy that took a 1xx for the final answer leaves the connection hanging: fail, do not wait.
        req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)))
        req.on('error', reject)
        req.end(body)
      })
    try {
      const data = randomData(3 * MiB, 42)
      const version = { 'Upload-Draft-Interop-Version': '8' }
      const created = await send('POST', `${nginx.url}/files`, { ...version, 'Upload-Complete': '?1', 'Content-Length': data.length }, data)
      expect(created).toMatchObject({ status: 201, reused: false })
      expect(created.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) })
      const url = created.headers.location as string
      expect(url).toMatch(new RegExp(`^${nginx.url}/files/[^/]+$`))
      const state = await send('HEAD', url, version)
      expect(state).toMatchObject({ status: 204, reused: true })
      expect(state.headers).toMatchObject({ 'upload-complete': '?1', 'upload-offset': String(data.length) })
      expect((await sha256OfDownload(url)).sha).toBe(sha256(data))
      // The replicas send no 104 (INTERIM_RESPONSES=false): nginx would pass it on as the final answer.
      expect(created.informational).toEqual([])
    } finally {
      agent.destroy()
    }
  }, 60_000)

  test('an upload resumes through the proxy after the instance receiving it is killed', async () => {
    const data = randomData(24 * MiB, 43)
    let progressed = 0
    const { done } = upload(data, {
      fileReader: pacedReader(256 * 1024, 40).fileReader,
      chunkSize: 12 * MiB,
      // The client's own retries: after the kill it asks the offset (HEAD) and goes on from there.
      retryDelays: [200, 500, 1000, 2000, 3000, 5000],
      onProgress: (sent) => (progressed = sent),
    })
    for (let i = 0; progressed < 7 * MiB; i++) {
      if (i > 400) throw new Error('the upload made no progress in 20 s')
      await sleep(50)
    }
    // The instance with a store write in progress is the one receiving the PATCH.
    const busy = await Promise.all(
      instances.map(async (i) => Number(/uploads_in_progress (\d+)/.exec((await request(`${i.url}/metrics`)).body.toString())?.[1] ?? 0)),
    )
    expect(busy.filter((n) => n > 0)).toHaveLength(1)
    const victim = instances[busy.findIndex((n) => n > 0)]
    victim.child.kill('SIGKILL')
    await victim.exited

    const url = await done
    expect(url.startsWith(`${nginx.url}/files/`)).toBe(true)
    expect(await sha256OfDownload(url)).toEqual({ status: 200, sha: sha256(data), bytes: data.length })
  }, 120_000)
})
