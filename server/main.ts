import { createApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { listen, type RunningServer } from './httpServer.js'
import { createLogger } from './logger.js'

/** Start-up failures end the process with one line and exit code 1, not a stack trace. */
function die(message: string): never {
  process.stderr.write(`tusgate: ${message}\n`)
  process.exit(1)
}

let config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  die(error.message)
}

const logger = createLogger(config)
const app = await createApp(config, logger).catch((error: Error) => die(`cannot start the ${config.STORE} store: ${error.message}`))
// The conventional signal to reread certificates (without TLS, SIGHUP keeps its default: exit). Handled
// from before the server listens, so that a SIGHUP just after start-up cannot end the process.
let running: RunningServer | undefined
if (config.TLS_CERT_FILE) process.on('SIGHUP', () => running?.reloadCertificates())
running = await listen(config, app, logger).catch((error: Error) => die(`cannot listen on ${config.HOST}:${config.PORT}: ${error.message}`))

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    running.shutdown().then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { error })
        process.exit(1)
      },
    )
  })
}
