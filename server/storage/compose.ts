import cluster from 'node:cluster'
import path from 'node:path'
import type { DataStore, Locker } from '@tus/utils'
import { CachedUploads } from '../../stores/cachedUploads.js'
import { openLocker, openStore, type StoreChoice } from '../../stores/registry.js'
import type { StoreBackend, StoreCapabilities } from '../../stores/types.js'
import { type Config, lockDirectory, lockerSettings, storeSettings } from '../config.js'
import { outboxDirectory } from '../hooks/outbox/index.js'
import { indexDirectory } from '../listing/finishedIndex.js'
import type { Logger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { InstrumentedLocker } from './instrumentedLocker.js'
import { InstrumentedStore } from './instrumentedStore.js'
import { Sweeper } from './sweeper.js'

export interface Storage {
  /** The store as the host uses it: `backend.datastore` is `datastore`. */
  backend: StoreBackend
  /** The store's uploads, cached where that is safe, instrumented. */
  datastore: DataStore
  /** Upload locks, instrumented. */
  locker: Locker
  capabilities: StoreCapabilities
  /** Removes expired uploads and leftovers, every EXPIRY_SWEEP_INTERVAL. */
  sweeper: Sweeper
  /** Stops the sweep, then closes the store and the locker. */
  close(): Promise<void>
}

export interface StorageDeps {
  metrics: Metrics
  logger: Logger
}

/**
 * The one place the storage is put together: the back end from its settings, then the upload cache
 * where this process is the only writer, then the instrumentation; the locker, instrumented; and the
 * sweep over both.
 */
export async function composeStorage(config: Config, { metrics, logger }: StorageDeps): Promise<Storage> {
  const store = await openStore(withRequestMetrics(withKeptFolders(storeSettings(config), config), metrics))
  let lockers: Awaited<ReturnType<typeof openLocker>> | undefined
  try {
    refuseUnfitMetadata(config, store.capabilities)
    if (store.partSlots) metrics.s3PartSlots(store.partSlots)
    // With the memory locker this process is the file store's only writer, so upload info can live in memory.
    const cached = config.STORE === 'file' && config.LOCKER === 'memory' ? withUploadCache(store) : store
    const instrumented = new InstrumentedStore(cached.datastore, metrics)
    const backend: StoreBackend = { ...cached, datastore: instrumented }
    lockers = await openLocker(lockerSettings(config))
    const locker = new InstrumentedLocker(lockers.locker, metrics)
    const sweeper = new Sweeper({ backend, locker, logger, metrics, orphanGraceMs: config.ORPHAN_GRACE_PERIOD })
    sweeper.start(config.EXPIRY_SWEEP_INTERVAL)
    const closeLocker = lockers.close
    return {
      backend,
      datastore: instrumented,
      locker,
      capabilities: store.capabilities,
      sweeper,
      async close() {
        await sweeper.stop()
        await Promise.all([store.close(), closeLocker()])
      },
    }
  } catch (error) {
    await Promise.all([store.close(), lockers?.close()])
    throw error
  }
}

/** The file store told of the folders the service keeps in or near FILE_DIR, where no hook may place an upload. */
function withKeptFolders(choice: StoreChoice, config: Config): StoreChoice {
  if (choice.name !== 'file') return choice
  const folders = [outboxDirectory(config), indexDirectory(config), config.CHECKSUM_STAGING_DIR]
  if (config.LOCKER === 'file') folders.push(lockDirectory(config))
  const kept = folders.map((folder) => path.resolve(folder))
  return { ...choice, settings: { ...choice.settings, kept } }
}

/** The S3 store tells the metrics of every request it sends. */
function withRequestMetrics(choice: StoreChoice, metrics: Metrics): StoreChoice {
  return choice.name === 's3' ? { ...choice, settings: { ...choice.settings, onRequest: metrics.observeS3Request } } : choice
}

/** Creations would fail on a store that cannot keep as much upload info as MAX_METADATA_SIZE allows. */
function refuseUnfitMetadata(config: Config, { maxInfoSize }: StoreCapabilities): void {
  if (maxInfoSize > 0 && config.MAX_METADATA_SIZE > maxInfoSize) {
    throw new Error(`MAX_METADATA_SIZE above ${maxInfoSize} bytes cannot fit the store's upload info (STORE=${config.STORE})`)
  }
}

/** The store with its upload info kept in memory; a change made past the cache (assembly, truncation) drops it. */
function withUploadCache(store: StoreBackend): StoreBackend {
  // Workers of one instance (WORKERS > 1) share the uploads: each reads the offset from the store.
  const offsetOf = cluster.isWorker && store.offsetOf ? store.offsetOf.bind(store) : undefined
  const cache = new CachedUploads(store.datastore, undefined, offsetOf)
  const { concatenate, truncate } = store
  return {
    ...store,
    datastore: cache,
    concatenate: concatenate && ((finalId, partials) => concatenate(finalId, partials).finally(() => cache.forget(finalId))),
    truncate: truncate && ((id, offset) => truncate(id, offset).finally(() => cache.forget(id))),
  }
}
