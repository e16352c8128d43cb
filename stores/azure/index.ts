import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import type { StoreModule } from '../types.js'
import { AzureDatastore, azureErrorCode } from './AzureDatastore.js'

// Readiness answers within this even when the account does not (the SDK retries for much longer).
const HEALTH_TIMEOUT_MS = 5_000
const STARTUP_TIMEOUT_MS = 30_000

export interface AzureStoreSettings {
  /** Created if missing. */
  container: string
  /** The account: a connection string, or a name and key (at `endpoint`, else Azure's own). */
  account: { connectionString: string } | { name: string; key: string; endpoint?: string }
  /** Unfinished uploads expire this long after creation; 0: never. */
  expiresAfterMs: number
}

export function azureServiceClient({ account }: Pick<AzureStoreSettings, 'account'>): BlobServiceClient {
  if ('connectionString' in account) return BlobServiceClient.fromConnectionString(account.connectionString)
  const endpoint = account.endpoint ?? `https://${account.name}.blob.core.windows.net`
  return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account.name, account.key))
}

/** Uploads as append blobs in an Azure Storage container. */
export const azureStore: StoreModule<AzureStoreSettings> = {
  name: 'azure',
  async create(settings) {
    const container = azureServiceClient(settings).getContainerClient(settings.container)
    try {
      await container.createIfNotExists({ abortSignal: AbortSignal.timeout(STARTUP_TIMEOUT_MS) })
    } catch (error) {
      // Credentials that may use a container but not create one (a SAS, a narrow role) are fine if it exists.
      const exists = await container.exists({ abortSignal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) }).catch(() => false)
      if (!exists) {
        const reason = azureErrorCode(error) ?? (error as Error).message
        throw new Error(`Azure container '${container.containerName}' could not be created: ${reason}`)
      }
    }
    const datastore = new AzureDatastore({ container, expirationMs: settings.expiresAfterMs })
    return {
      datastore,
      capabilities: datastore.capabilities,
      health: () => datastore.checkContainer(HEALTH_TIMEOUT_MS),
      expiredUploadIds: () => datastore.expiredIds(),
      download: (id, range) => datastore.readRange(id, range),
      // The SDK holds no connection or timer that outlives a request.
      close: async () => {},
    }
  },
}
