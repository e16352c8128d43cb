import cluster from 'node:cluster'
import { runPrimary, workerCount } from './cluster.js'
import { type Config, ConfigError, loadConfig } from './config.js'
import type { RunningServer } from './httpServer.js'
import { createLogger, type Logger } from './logger.js'

/** Start-up failures end the process with one line and exit code 1, not a stack trace. */
function die(message: string): never {
  process.stderr.write(`tusgate: ${message}\n`)
  process.exit(1)
}

/** One process serving the port: the whole instance (WORKERS=1), or one of its workers. */
async function serve(config: Config, logger: Logger): Promise<void> {
  // Loaded here, so that a primary of several workers never holds the app in memory.
  const [{ createApp }, { listen }] = await Promise.all([import('./app.js'), import('./httpServer.js')])
  const app = await createApp(config, logger).catch((error: Error) => die(`cannot start the ${config.STORE} store: ${error.message}`))
  // The conventional signal to reread certificates (without TLS, SIGHUP keeps its default: exit). Handled
  // from before the server listens, so that a SIGHUP just after start-up cannot end the process.
  let running: RunningServer | undefined
  if (config.TLS_CERT_FILE) process.on('SIGHUP', () => running?.reloadCertificates())
  running = await listen(config, app, logger).catch((error: Error) => die(`cannot listen on ${config.HOST}:${config.PORT}: ${error.message}`))
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      ;(running as RunningServer).shutdown().then(
        () => process.exit(0),
        (error) => {
          logger.error('shutdown failed', { error })
          process.exit(1)
        },
      )
    })
  }
}

let config: Config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  die(error.message)
}

const logger = createLogger(config)
const workers = cluster.isPrimary ? workerCount(config, logger) : 1
if (workers > 1) runPrimary(config, logger, workers)
// A worker's lines say which process wrote them.
else await serve(config, cluster.isWorker ? logger.child({ pid: process.pid }) : logger)
