import type { Server } from '@tus/server'
import { type DataStore, ERRORS } from '@tus/utils'
import { uploadIdOf } from '../uploadUrl.js'

type Send = Server['handlers']['PATCH']['send']

/**
 * Wraps `@tus/server`'s PATCH so that a 409 for an offset mismatch carries the upload's current
 * Upload-Offset, letting a client resume without another HEAD. The server builds its error response
 * from the same `headers` object, so setting it here is enough.
 */
export function withConflictOffset(send: Send, store: DataStore): Send {
  return async (req, context, headers = new Headers()) => {
    try {
      return await send(req, context, headers)
    } catch (error) {
      const id = uploadIdOf(req)
      if (error === ERRORS.INVALID_OFFSET && id) {
        const upload = await store.getUpload(id).catch(() => undefined)
        if (upload) headers.set('Upload-Offset', String(upload.offset))
      }
      throw error
    }
  }
}
