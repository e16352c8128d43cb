import type { AzureStoreSettings } from './azure/index.js'
import type { FileStoreSettings } from './file/index.js'
import type { GcsStoreSettings } from './gcs/index.js'
import type { FileLockerSettings } from './lockers/file.js'
import type { MemoryLockerSettings } from './lockers/memory.js'
import type { RedisLockerSettings } from './lockers/redis.js'
import type { S3StoreSettings } from './s3/index.js'
import type { LockerBackend, StoreBackend } from './types.js'

/** A store back end by name, with its settings. */
export type StoreChoice =
  | { name: 'file'; settings: FileStoreSettings }
  | { name: 's3'; settings: S3StoreSettings }
  | { name: 'azure'; settings: AzureStoreSettings }
  | { name: 'gcs'; settings: GcsStoreSettings }

export type LockerChoice =
  | { name: 'memory'; settings: MemoryLockerSettings }
  | { name: 'file'; settings: FileLockerSettings }
  | { name: 'redis'; settings: RedisLockerSettings }

export const storeNames = ['file', 's3', 'azure', 'gcs'] as const satisfies readonly StoreChoice['name'][]
export const lockerNames = ['memory', 'file', 'redis'] as const satisfies readonly LockerChoice['name'][]

// A new back end is one module, one line in each list above and one case below. Modules load on
// first use, so the file store never pays for the cloud SDKs.
export async function openStore(choice: StoreChoice): Promise<StoreBackend> {
  switch (choice.name) {
    case 'file':
      return (await import('./file/index.js')).fileStore.create(choice.settings)
    case 's3':
      return (await import('./s3/index.js')).s3Store.create(choice.settings)
    case 'azure':
      return (await import('./azure/index.js')).azureStore.create(choice.settings)
    case 'gcs':
      return (await import('./gcs/index.js')).gcsStore.create(choice.settings)
  }
}

export async function openLocker(choice: LockerChoice): Promise<LockerBackend> {
  switch (choice.name) {
    case 'memory':
      return (await import('./lockers/memory.js')).memoryLocker.create(choice.settings)
    case 'file':
      return (await import('./lockers/file.js')).fileLocker.create(choice.settings)
    case 'redis':
      return (await import('./lockers/redis.js')).redisLocker.create(choice.settings)
  }
}
