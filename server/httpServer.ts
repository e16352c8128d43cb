import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { App } from './app.js'
import type { Config } from './config.js'
import type { Logger } from './logger.js'
import { type CertificateWatch, readCertificate, watchCertificates } from './tlsCertificates.js'

export interface RunningServer {
  server: http.Server | https.Server
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
  const server = files ? https.createServer({ ...options, ...readCertificate(files) }, app.app) : http.createServer(options, app.app)
  const certificates: CertificateWatch | undefined = files && watchCertificates(server as https.Server, files, logger)
  app.metrics.openConnections(server)
  server.timeout = config.UPLOAD_IDLE_TIMEOUT
  // Longer than the idle timeouts of clients and proxies (Node's agent keeps idle sockets 5 s, nginx and
  // cloud load balancers 60 s): the server closing a socket just as a client reuses it shows as ECONNRESET.
  server.keepAliveTimeout = 65_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    // Node's default backlog (511) overflows when a thousand clients connect at once; the kernel caps this.
    server.listen({ port: config.PORT, host: config.HOST, backlog: 4096 }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  logger.info('listening', { host: config.HOST, port, path: config.TUS_PATH, store: config.STORE, tls: files !== undefined })

  let stopping: Promise<void> | undefined
  const shutdown = () => {
    stopping ??= (async () => {
      logger.info('shutting down', { timeoutMs: config.SHUTDOWN_TIMEOUT })
      certificates?.stop()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // Kept-alive connections go as soon as they are idle; busy ones get until the deadline.
      const sweepIdle = setInterval(() => server.closeIdleConnections(), 100)
      let deadline: NodeJS.Timeout | undefined
      const timedOut = new Promise<boolean>((resolve) => {
        deadline = setTimeout(() => resolve(true), config.SHUTDOWN_TIMEOUT)
      })
      if (await Promise.race([closed.then(() => false), timedOut])) {
        logger.warn('shutdown timeout: closing connections in progress')
        server.closeAllConnections()
      }
      clearInterval(sweepIdle)
      clearTimeout(deadline)
      await app.drain()
      await app.close()
      logger.info('stopped')
    })()
    return stopping
  }
  return { server, port, shutdown, reloadCertificates: () => certificates?.reload() ?? false }
}
