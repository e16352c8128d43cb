import type { Request, Response } from 'express'
import type { Config } from '../config.js'
import type { UploadCore } from '../core/uploads.js'
import type { Logger } from '../logger.js'

/** What every tus handler is given. */
export interface TusDeps {
  config: Config
  core: UploadCore
  logger: Logger
  /** Tus-Extension, as the store's capabilities give it. */
  extensions: readonly string[]
}

/** A tus handler: one per method, answering every outcome itself. */
export type TusHandler = (req: Request, res: Response) => Promise<void>

/** The upload id of a request the protocol guard let through to a handler of an upload. */
export const idOf = (req: Request, config: Pick<Config, 'TUS_PATH'>): string => req.path.slice(config.TUS_PATH.length + 1)
