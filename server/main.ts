import { createApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { listen } from './httpServer.js'
import { createLogger } from './logger.js'

let config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`tusgate: ${error.message}\n`)
  process.exit(1)
}

const logger = createLogger(config)
const app = await createApp(config, logger)
const running = await listen(config, app, logger)

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
