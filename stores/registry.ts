import { fileStore } from './file/index.js'
import { memoryLocker } from './lockers/memory.js'
import type { LockerModule, StoreModule } from './types.js'

// A new back end is one module and one line here.
export const stores: Record<string, StoreModule> = { [fileStore.name]: fileStore }
export const lockers: Record<string, LockerModule> = { [memoryLocker.name]: memoryLocker }
