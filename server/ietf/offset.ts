import type { Request, Response } from 'express'
import { settledUpload } from '../tus/handlers/head.js'
import type { IetfDeps } from './deps.js'
import { uploadLimit } from './limits.js'
import { completenessHeader, type Dialect } from './versions.js'

/** Offset retrieval (HEAD): 204 with the offset, whether the upload is complete, its length once known, never cached. */
export async function retrieveOffset(deps: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const { config, store, locker } = deps
  const gone = new AbortController()
  const onClose = () => gone.abort()
  req.once('close', onClose)
  const upload = await settledUpload(store, locker, id, gone.signal).finally(() => req.off('close', onClose))
  const complete = upload.size !== undefined && upload.offset === upload.size
  res.status(204).set({
    ...deps.reply.common(req, dialect),
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, complete),
    ...(upload.size !== undefined ? { 'Upload-Length': String(upload.size) } : {}),
    ...uploadLimit(config, dialect, store.getExpiration(), upload),
    'Cache-Control': 'no-store',
  })
  res.end()
}
