import type { Upload } from '@tus/utils'

/**
 * `Upload.storage.type` of an upload handed to `create` with the place a pre-create hook chose for its
 * bytes (`storage.path`: the hook's Path or Key). The store replaces it with where it put them.
 */
export const REQUESTED = 'requested'

/** The place asked for the upload about to be created, if any. */
export function requestedPlace(upload: Upload): string | undefined {
  return upload.storage?.type === REQUESTED ? upload.storage.path : undefined
}

/** A place a store refuses to put an upload at (it leaves the store's root, names the store's own files, is too long). */
export class PlacementError extends Error {
  override name = 'PlacementError'
}

// Control characters (NUL included) have no business in a file name or an object key.
// biome-ignore lint/suspicious/noControlCharactersInRegex: they are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * The place's segments once it is checked to be relative and normalised: no leading '/', no '' (a
 * doubled or trailing '/'), '.' or '..' segment, no control character, at most `maxBytes` in UTF-8.
 */
export function relativeSegments(place: string, maxBytes: number): string[] {
  const refuse = (why: string) => new PlacementError(`storage place '${place.slice(0, 200)}' ${why}`)
  if (place === '') throw refuse('is empty')
  if (CONTROL.test(place)) throw refuse('holds a control character')
  if (place.startsWith('/')) throw refuse('is absolute')
  if (Buffer.byteLength(place) > maxBytes) throw refuse(`is longer than ${maxBytes} bytes`)
  const segments = place.split('/')
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) throw refuse("has an empty, '.' or '..' segment")
  return segments
}
