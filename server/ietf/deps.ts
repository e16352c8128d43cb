import type { Server } from '@tus/server'
import type { DataStore, Locker } from '@tus/utils'
import type { Config } from '../config.js'
import type { UploadLifecycle } from '../tus/createTusServer.js'
import type { Hooks } from '../hooks/index.js'
import type { Logger } from '../logger.js'
import type { Replier } from './reply.js'

/** What the IETF handlers share with the tus endpoint: one store, one locker, one event source. */
export interface IetfDeps {
  config: Config
  /** The tus server: its termination callbacks and events, which hooks and metrics listen to. */
  server: Server
  /** What happens around every creation and finish, as for tus uploads. */
  lifecycle: UploadLifecycle
  store: DataStore
  locker: Locker
  logger: Logger
  reply: Replier
  /** The tus endpoint's tusd-style hooks, for post-receive while content streams; undefined without HOOKS_URL. */
  hooks?: Hooks
}
