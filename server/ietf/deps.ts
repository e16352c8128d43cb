import type { Config } from '../config.js'
import type { UploadCore } from '../core/uploads.js'
import type { Logger } from '../logger.js'
import type { Replier } from './reply.js'

/** What every IETF-draft handler is given: the same upload core as the tus handlers, so either protocol continues what the other began. */
export interface IetfDeps {
  config: Config
  core: UploadCore
  logger: Logger
  reply: Replier
}
