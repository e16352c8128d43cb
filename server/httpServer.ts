import cluster from 'node:cluster'
import http from 'node:http'
import https from 'node:https'
import net, { type AddressInfo } from 'node:net'
import type { App } from './app.js'
import type { Config } from './config.js'
import type { Logger } from './logger.js'
import { type CertificateWatch, readCertificate, watchCertificates } from './tlsCertificates.js'

/** Listening sockets per process (one in a cluster worker). */
const LISTENERS = 4

export interface RunningServer {
  /** The listening servers on the port (see LISTENERS), one app. */
  servers: Array<http.Server | https.Server>
  port: number
  /** With TLS: reads the certificate files again for new connections (SIGHUP); false if they do not load. */
  reloadCertificates(): boolean
  /** Stops accepting, lets requests in progress finish up to SHUTDOWN_TIMEOUT, then closes the rest. */
  shutdown(): Promise<void>
}

/**
 * Listens with the timeouts that keep slow or hostile clients cheap: headers must arrive within
 * HEADERS_TIMEOUT, a socket idle for UPLOAD_IDLE_TIMEOUT is ended (a stalled PATCH keeps the bytes
 * it sent), and there is no cap on a whole request's duration, since a 20 GB upload takes hours.
 */
export async function listen(config: Config, app: App, logger: Logger): Promise<RunningServer> {
  const options: http.ServerOptions = {
    maxHeaderSize: config.MAX_HEADER_SIZE,
    headersTimeout: config.HEADERS_TIMEOUT,
    requestTimeout: 0,
    // Node checks those timeouts every 30 s by default, which would let slow sockets linger.
    connectionsCheckingInterval: Math.max(100, Math.min(1000, config.HEADERS_TIMEOUT)),
  }
  // HTTP/1.1 only: the tus handlers, Express and the interim 104 work on HTTP/1.1 messages (docs/deployment.md).
  const files = config.TLS_CERT_FILE && config.TLS_KEY_FILE ? { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE } : undefined
  const make = () => {
    const server = files ? https.createServer({ ...options, ...readCertificate(files) }, app.app) : http.createServer(options, app.app)
    server.timeout = config.UPLOAD_IDLE_TIMEOUT
    // Longer than the idle timeouts of clients and proxies (Node's agent keeps idle sockets 5 s, nginx and
    // cloud load balancers 60 s): the server closing a socket just as a client reuses it shows as ECONNRESET.
    server.keepAliveTimeout = 65_000
    return server
  }
  // libuv accepts one connection per event-loop iteration: under a burst of a thousand connections a new
  // one waited behind hundreds in the accept queue, seconds while iterations are busy. Several listening
  // sockets on the port (SO_REUSEPORT, the kernel spreading connections over them) accept as many per
  // iteration. A cluster worker listens on the primary's socket, so it keeps one.
  const count = process.platform === 'linux' && !cluster.isWorker ? LISTENERS : 1
  const servers = Array.from({ length: count }, make)
  const certificates: CertificateWatch | undefined = files && watchCertificates(servers as https.Server[], files, logger)
  app.metrics.openConnections(servers)
  // Node's default backlog (511) overflows when a thousand clients connect at once; the kernel caps this.
  const listenOn = (server: http.Server, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port, host: config.HOST, backlog: 4096, reusePort: count > 1 }, () => {
        server.off('error', reject)
        resolve()
      })
    })
  // Sockets that share a port would as well share it with another tusgate started on it by mistake (same
  // user): a plain bind first, so that one still fails with EADDRINUSE. PORT=0 needs none: the kernel picks
  // a port no socket shares, and a probe's port could be taken by a client's connection before it is bound.
  const port = count > 1 && config.PORT !== 0 ? await bindable(config.HOST, config.PORT) : config.PORT
  await listenOn(servers[0], port)
  const bound = (servers[0].address() as AddressInfo).port
  await Promise.all(servers.slice(1).map((server) => listenOn(server, bound)))
  logger.info('listening', { host: config.HOST, port: bound, path: config.TUS_PATH, store: config.STORE, tls: files !== undefined })

  let stopping: Promise<void> | undefined
  const shutdown = () => {
    stopping ??= (async () => {
      logger.info('shutting down', { timeoutMs: config.SHUTDOWN_TIMEOUT })
      certificates?.stop()
      const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
      // Kept-alive connections go as soon as they are idle; busy ones get until the deadline.
      const sweepIdle = setInterval(() => {
        for (const server of servers) server.closeIdleConnections()
      }, 100)
      let deadline: NodeJS.Timeout | undefined
      const timedOut = new Promise<boolean>((resolve) => {
        deadline = setTimeout(() => resolve(true), config.SHUTDOWN_TIMEOUT)
      })
      if (await Promise.race([closed.then(() => false), timedOut])) {
        logger.warn('shutdown timeout: closing connections in progress')
        for (const server of servers) server.closeAllConnections()
      }
      clearInterval(sweepIdle)
      clearTimeout(deadline)
      await app.drain()
      await app.close()
      logger.info('stopped')
    })()
    return stopping
  }
  return { servers, port: bound, shutdown, reloadCertificates: () => certificates?.reload() ?? false }
}

/** The port, once a socket that does not share it could bind it (then closed); rejects with EADDRINUSE if taken. */
function bindable(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen({ port, host, exclusive: true }, () => {
      const { port: free } = probe.address() as AddressInfo
      probe.close(() => resolve(free))
    })
  })
}
