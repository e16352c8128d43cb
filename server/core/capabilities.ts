import type { StoreCapabilities } from '../../stores/types.js'

/**
 * Tus-Extension, derived from what the store declares once (its capabilities): creation with and without
 * a body always; creation-defer-length, termination, expiration, concatenation and concatenation-unfinished
 * where the store can;
 * checksum and checksum-trailer always, since the core verifies chunks itself (in place where the store
 * can take bytes back, staged otherwise).
 */
export function tusExtensions(capabilities: StoreCapabilities): string[] {
  return [
    'creation',
    'creation-with-upload',
    ...(capabilities.creationDeferLength ? ['creation-defer-length'] : []),
    ...(capabilities.termination ? ['termination'] : []),
    ...(capabilities.expiresAfterMs > 0 ? ['expiration'] : []),
    ...(capabilities.concatenation ? ['concatenation'] : []),
    ...(capabilities.concatenation && capabilities.concatenationUnfinished ? ['concatenation-unfinished'] : []),
    'checksum',
    'checksum-trailer',
  ]
}
