import type { StoreCapabilities } from './types.js'

/**
 * The tus extensions a store's DataStore implements itself, as `@tus/utils`' DataStore lists them in
 * `extensions`. Concatenation and checksums are the host's work over the store, so not among them.
 */
export function dataStoreExtensions(capabilities: StoreCapabilities): string[] {
  const extensions = ['creation', 'creation-with-upload']
  if (capabilities.creationDeferLength) extensions.push('creation-defer-length')
  if (capabilities.termination) extensions.push('termination')
  if (capabilities.expiresAfterMs > 0) extensions.push('expiration')
  return extensions
}

/** A store's capabilities from what it states it supports; anything it does not state it lacks. */
export function capabilities(supported: Partial<StoreCapabilities>): StoreCapabilities {
  return {
    creationDeferLength: false,
    termination: false,
    expiresAfterMs: 0,
    concatenation: false,
    concatenationUnfinished: false,
    truncate: false,
    listing: false,
    maxSize: 0,
    maxInfoSize: 0,
    placement: false,
    ...supported,
  }
}
