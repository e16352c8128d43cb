import path from 'node:path'
import type { Config } from '../../config.js'
import { FileOutbox } from './file.js'
import type { Outbox } from './types.js'

/** Where an instance keeps its outbox on disk unless HOOKS_OUTBOX_DIR says otherwise. */
export function outboxDirectory(config: Pick<Config, 'HOOKS_OUTBOX_DIR' | 'FILE_DIR'>): string {
  return config.HOOKS_OUTBOX_DIR ?? path.join(config.FILE_DIR, 'hooks-outbox')
}

/**
 * The one place that picks the outbox for post-finish and post-terminate: on disk, for one instance.
 * (Several instances sharing Redis will get a Redis outbox here, chosen when REDIS_URL is set.)
 */
export async function createOutbox(config: Pick<Config, 'HOOKS_OUTBOX_DIR' | 'FILE_DIR'>): Promise<Outbox> {
  return new FileOutbox(outboxDirectory(config))
}
