import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import type { Server } from 'node:tls'
import type { Logger } from './logger.js'

export interface CertificateFiles {
  certFile: string
  keyFile: string
}

export interface CertificateWatch {
  /** Reads the files again and serves them to new connections; false (and a warning) if they do not load. */
  reload(): boolean
  stop(): void
}

export const readCertificate = ({ certFile, keyFile }: CertificateFiles) => ({ cert: readFileSync(certFile), key: readFileSync(keyFile) })

/**
 * Keeps a TLS server's certificate current: reloaded when either PEM file changes (polled by stat, which
 * also sees a renamed-over file or a swapped symlink) and whenever `reload` is called (SIGHUP). Only new
 * connections get the new certificate; connections in progress, and their uploads, carry on. A pair that
 * does not load (half written, or a key for another certificate while the renewal is under way) leaves
 * the current one in place.
 */
export function watchCertificates(servers: Server[], files: CertificateFiles, logger: Logger, intervalMs = 1000): CertificateWatch {
  const reload = () => {
    try {
      const context = readCertificate(files)
      for (const server of servers) server.setSecureContext(context)
      logger.info('TLS certificate loaded', { certFile: files.certFile })
      return true
    } catch (error) {
      logger.warn('TLS certificate not reloaded: keeping the current one', { certFile: files.certFile, error })
      return false
    }
  }
  const changed = (now: { mtimeMs: number }, before: { mtimeMs: number }) => {
    if (now.mtimeMs !== before.mtimeMs) reload()
  }
  for (const file of [files.certFile, files.keyFile]) watchFile(file, { interval: intervalMs, persistent: false }, changed)
  return {
    reload,
    stop() {
      for (const file of [files.certFile, files.keyFile]) unwatchFile(file, changed)
    },
  }
}
