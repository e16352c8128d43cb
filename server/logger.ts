import winston from 'winston'
import type { Config } from './config.js'

export type Logger = winston.Logger

/** JSON lines in production, one readable coloured line per event in a terminal. */
export function createLogger(config: Pick<Config, 'LOG_LEVEL' | 'LOG_FORMAT'>): Logger {
  const format =
    config.LOG_FORMAT === 'json'
      ? winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json())
      : winston.format.combine(
          winston.format.timestamp({ format: 'HH:mm:ss.SSS' }),
          winston.format.errors({ stack: true }),
          winston.format.colorize(),
          winston.format.printf(({ timestamp, level, message, stack, ...fields }) => {
            const extra = Object.entries(fields)
              .filter(([, v]) => v !== undefined)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ')
            return `${timestamp} ${level} ${message}${extra ? ` ${extra}` : ''}${stack ? `\n${stack}` : ''}`
          }),
        )
  return winston.createLogger({ level: config.LOG_LEVEL, format, transports: [new winston.transports.Console()] })
}
