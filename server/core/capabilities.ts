import type { StoreBackend } from '../../stores/types.js'

/** The extensions the core adds to any store: it verifies checksums itself, in place or staged. */
export const CHECKSUM_EXTENSIONS = ['checksum', 'checksum-trailer'] as const

/** Tus-Extension for a store: what it declares, concatenation where it can assemble, and what the core adds. */
export function tusExtensions(store: Pick<StoreBackend, 'datastore' | 'concatenate'>, added: readonly string[]): string[] {
  const extensions = [...store.datastore.extensions, ...added]
  if (store.concatenate) extensions.push('concatenation')
  return [...new Set(extensions)]
}
