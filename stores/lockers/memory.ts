import { MemoryLocker } from '@tus/server'
import type { LockerModule } from '../types.js'

/** Locks inside one process: right for a single instance, unsafe for several sharing a store. */
export const memoryLocker: LockerModule = {
  name: 'memory',
  async create(config) {
    return { locker: new MemoryLocker({ acquireLockTimeout: config.LOCK_TIMEOUT }), close: async () => {} }
  },
}
