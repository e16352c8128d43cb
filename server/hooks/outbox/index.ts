import path from 'node:path'
import type { Config } from '../../config.js'
import type { Logger } from '../../logger.js'
import { FileOutbox } from './file.js'
import type { Outbox } from './types.js'

/** Where an instance keeps its outbox on disk unless HOOKS_OUTBOX_DIR says otherwise. */
export function outboxDirectory(config: Pick<Config, 'HOOKS_OUTBOX_DIR' | 'FILE_DIR'>): string {
  return config.HOOKS_OUTBOX_DIR ?? path.join(config.FILE_DIR, 'hooks-outbox')
}

/**
 * The one place that picks the outbox for post-finish and post-terminate: in Redis when REDIS_URL is
 * set (every instance delivers what any of them queued), otherwise on disk, for one instance.
 */
export async function createOutbox(config: Pick<Config, 'HOOKS_OUTBOX_DIR' | 'FILE_DIR' | 'REDIS_URL' | 'REDIS_KEY_PREFIX'>, logger: Logger): Promise<Outbox> {
  // Loaded only when used: the Redis client is a module a process without Redis need not hold.
  if (config.REDIS_URL) return (await import('./redis.js')).createRedisOutbox(config, logger)
  return new FileOutbox(outboxDirectory(config))
}
