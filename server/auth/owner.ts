import type { Upload } from '@tus/utils'
import { requestContext } from '../requestContext.js'
import type { ReservedStamp } from '../tus/reservedMetadata.js'

/** The metadata key that records who created an upload (a token's `sub`); reserved (reservedMetadata.ts). */
export const OWNER_KEY = 'tusgate-owner'

/** The principal that created an upload, or undefined for one created with authentication off. */
export function ownerOf(upload: Pick<Upload, 'metadata'>): string | undefined {
  return upload.metadata?.[OWNER_KEY] ?? undefined
}

/** Records the request's principal, if any, as the upload's owner. */
export const ownerStamp: ReservedStamp = (): Record<string, string> => {
  const principal = requestContext.current()?.principal
  return principal === undefined ? {} : { [OWNER_KEY]: principal }
}
