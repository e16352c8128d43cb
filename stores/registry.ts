import type { LockerModule, StoreModule } from './types.js'

// A new back end is one module and one line here. Modules load on first use, so the file store
// never pays for the cloud SDKs.
export const stores: Record<string, () => Promise<StoreModule>> = {
  file: async () => (await import('./file/index.js')).fileStore,
  s3: async () => (await import('./s3/index.js')).s3Store,
  azure: async () => (await import('./azure/index.js')).azureStore,
  gcs: async () => (await import('./gcs/index.js')).gcsStore,
}
export const lockers: Record<string, () => Promise<LockerModule>> = {
  memory: async () => (await import('./lockers/memory.js')).memoryLocker,
  redis: async () => (await import('./lockers/redis.js')).redisLocker,
}
