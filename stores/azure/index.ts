import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import type { Config } from '../../server/config.js'
import type { StoreModule } from '../types.js'
import { AzureDatastore, azureErrorCode } from './AzureDatastore.js'

// Readiness answers within this even when the account does not (the SDK retries for much longer).
const HEALTH_TIMEOUT_MS = 5_000
const STARTUP_TIMEOUT_MS = 30_000
// A blob keeps at most 8 KiB of metadata; the upload's info (its Upload-Metadata and ~350 bytes more) must fit.
const MAX_METADATA_SIZE = 7 * 1024

/** The account from AZURE_CONNECTION_STRING, or AZURE_ACCOUNT_NAME and AZURE_ACCOUNT_KEY at AZURE_ENDPOINT. */
export function azureServiceClient(config: Config): BlobServiceClient {
  if (config.AZURE_CONNECTION_STRING) return BlobServiceClient.fromConnectionString(config.AZURE_CONNECTION_STRING)
  const account = config.AZURE_ACCOUNT_NAME as string
  const endpoint = config.AZURE_ENDPOINT ?? `https://${account}.blob.core.windows.net`
  return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, config.AZURE_ACCOUNT_KEY as string))
}

/** Uploads as append blobs in an Azure Storage container (AZURE_CONTAINER, created if missing). */
export const azureStore: StoreModule = {
  name: 'azure',
  async create(config) {
    if (config.MAX_METADATA_SIZE > MAX_METADATA_SIZE) {
      throw new Error(`MAX_METADATA_SIZE above ${MAX_METADATA_SIZE} bytes cannot fit Azure's 8 KiB of blob metadata (STORE=azure)`)
    }
    const container = azureServiceClient(config).getContainerClient(config.AZURE_CONTAINER as string)
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
    const datastore = new AzureDatastore({ container, expirationMs: config.UPLOAD_EXPIRES_AFTER })
    return {
      datastore,
      health: () => datastore.checkContainer(HEALTH_TIMEOUT_MS),
      expiredUploadIds: () => datastore.expiredIds(),
      download: (id, range) => datastore.readRange(id, range),
      // The SDK holds no connection or timer that outlives a request.
      close: async () => {},
    }
  },
}
