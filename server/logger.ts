import winston from 'winston'
import type { Config } from './config.js'

export type Logger = winston.Logger

// Errors passed as fields (`{ error }`) would serialize as {}: keep what explains them.
const errorFields = winston.format((info) => {
  for (const [key, value] of Object.entries(info)) {
    if (value instanceof Error) {
      const { code, status_code } = value as Error & { code?: string; status_code?: number }
      info[key] = { name: value.name, message: value.message, code, status_code, stack: value.stack }
    }
  }
  return info
})

/** JSON lines in production, one readable line per event otherwise, coloured only when stdout is a terminal. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_FORMAT'>, transport: winston.transport = new winston.transports.Console()): Logger {
  const format =
    config.LOG_FORMAT === 'json'
      ? winston.format.combine(winston.format.timestamp(), errorFields(), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          errorFields(),
          // Colour codes would litter a file or a log collector.
          ...(process.stdout.isTTY ? [winston.format.colorize()] : []),
          winston.format.printf(({ timestamp, level, message, ...fields }) => {
            const extra = Object.entries(fields)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ')
            return `${timestamp} ${level} ${message}${extra ? ` ${extra}` : ''}`
          }),
        )
  return winston.createLogger({ level: config.LOG_LEVEL, format, transports: [transport] })
}
