import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './redis.js'

/** Debian's nginx (`apt-get install nginx-light`; `npm test` installs it). */
export const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx'

interface ComposeWithNginx {
  services: Record<string, { configs?: { source: string; target: string }[] }>
  configs?: Record<string, { content?: string }>
}

/** The server-level nginx config the compose file mounts into the `lb` service, as nginx reads it. */
export function nginxConfig(compose: ComposeWithNginx): string {
  const mount = compose.services.lb?.configs?.find((c) => c.target === '/etc/nginx/conf.d/default.conf')
  const content = mount && compose.configs?.[mount.source]?.content
  if (!content) throw new Error('docker-compose.yml: the lb service mounts no nginx config at /etc/nginx/conf.d/default.conf')
  // Compose turns '$$' into a literal '$' when it interpolates the file.
  return content.replaceAll('$$', '$')
}

export interface Nginx {
  /** The published address (as Docker's port mapping: another port, forwarded to nginx's). */
  port: number
  url: string
  /** The port nginx itself listens on (the container's port 80). */
  listenPort: number
  /** nginx's error log so far, for failure messages. */
  errors(): string
  stop(): Promise<void>
}

/**
 * Debian's nginx running `serverConfig` (an http-level config such as conf.d/default.conf) in the
 * foreground as its own master process, with every file in a temporary folder, listening where the
 * config's `listen 80;` is rewritten to (127.0.0.1 and a free port).
 */
export async function startNginx(serverConfig: string): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tusgate-nginx-'))
  // Workers run as nobody when the master is root.
  chmodSync(dir, 0o777)
  const port = await freePort()
  if (!/^\s*listen 80;$/m.test(serverConfig)) throw new Error('the nginx config has no `listen 80;` line to rewrite')
  const server = serverConfig.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`)
  const temp = (name: string) => `${name}_temp_path ${path.join(dir, name)};`
  const main = [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} info;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log ${path.join(dir, 'access.log')};`,
    `  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}`,
    server,
    '}',
  ].join('\n')
  const conf = path.join(dir, 'nginx.conf')
  writeFileSync(conf, main)
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (c) => (out += c))
  child.stderr?.on('data', (c) => (out += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const errors = () => {
    try {
      return out + readFileSync(path.join(dir, 'error.log'), 'utf8')
    } catch {
      return out
    }
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
    rmSync(dir, { recursive: true, force: true })
  }
  // Up once it accepts a connection; bounded.
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${errors()}`)
    if (await accepts(port)) break
    if (i >= 200) {
      await stop()
      throw new Error(`nginx did not listen on ${port} within 10 s`)
    }
    await sleep(50)
  }
  const published = await forward(port)
  return {
    port: published.port,
    url: `http://127.0.0.1:${published.port}`,
    listenPort: port,
    errors,
    async stop() {
      await published.close()
      await stop()
    },
  }
}

/** A TCP port forwarded to 127.0.0.1:`target`, as Docker publishes a container's port on another. */
async function forward(target: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect({ port: target, host: '127.0.0.1' })
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      sockets.add(from)
      from.pipe(to)
      from.on('error', () => to.destroy())
      from.on('close', () => {
        sockets.delete(from)
        to.destroy()
      })
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
