import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob'
import type { StoreModule } from '../types.js'
import { AzureDatastore, azureErrorCode } from './AzureDatastore.js'

// Readiness answers within this even when the account does not.
const HEALTH_TIMEOUT_MS = 5_000
const STARTUP_TIMEOUT_MS = 30_000

export interface AzureStoreSettings {
  /** Created if missing. */
  container: string
  /** The account: a connection string, or a name and key (at `endpoint`, else Azure's own). */
  account: { connectionString: string } | { name: string; key: string; endpoint?: string }
  /** Unfinished uploads expire this long after creation; 0: never. */
  expiresAfterMs: number
  /** How the SDK retries a request that failed (unreachable, 500, 503); absent: DEFAULT_AZURE_RETRY. */
  retry?: AzureRetry
}

/** Tries of one request, spaced as the SDK does: the n-th retry after (2^(n-1) - 1) × delayMs, at most maxDelayMs. */
export interface AzureRetry {
  tries: number
  delayMs: number
  maxDelayMs: number
}

/**
 * The SDK's own (4 tries, 4 s apart and doubling) waits 16 s on an unreachable account before a request
 * fails, and the client meanwhile; this waits 2 s (retryWaitMs), then the client is told 503 and retries itself.
 */
export const DEFAULT_AZURE_RETRY: AzureRetry = { tries: 4, delayMs: 500, maxDelayMs: 2_000 }

/** The longest one request waits between its tries in all. */
export function retryWaitMs({ tries, delayMs, maxDelayMs }: AzureRetry): number {
  let total = 0
  for (let retry = 1; retry < tries; retry++) total += Math.min((2 ** (retry - 1) - 1) * delayMs, maxDelayMs)
  return total
}

export function azureServiceClient({ account, retry = DEFAULT_AZURE_RETRY }: Pick<AzureStoreSettings, 'account' | 'retry'>): BlobServiceClient {
  const options = { retryOptions: { maxTries: retry.tries, retryDelayInMs: retry.delayMs, maxRetryDelayInMs: retry.maxDelayMs } }
  if ('connectionString' in account) return BlobServiceClient.fromConnectionString(account.connectionString, options)
  const endpoint = account.endpoint ?? `https://${account.name}.blob.core.windows.net`
  return new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account.name, account.key), options)
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
      expiredUploadIds: (now) => datastore.expiredIds(now),
      download: (id, range) => datastore.readRange(id, range),
      // The SDK holds no connection or timer that outlives a request.
      close: async () => {},
    }
  },
}
