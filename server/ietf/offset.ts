import type { Request, Response } from 'express'
import { callerOf } from '../http/request.js'
import type { IetfDeps } from './deps.js'
import { uploadLimit } from './limits.js'
import { completenessHeader, type Dialect } from './versions.js'

/** Offset retrieval (HEAD, and GET where the dialect allows it): 204 with the offset, whether the upload is complete, its length once known, never cached. */
export async function retrieveOffset({ config, core, reply }: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const upload = await core.settle(callerOf(req), id)
  const complete = upload.size !== undefined && upload.offset === upload.size
  res.status(204).set({
    ...reply.common(req, dialect),
    'Upload-Offset': String(upload.offset),
    ...completenessHeader(dialect, complete),
    ...(upload.size !== undefined ? { 'Upload-Length': String(upload.size) } : {}),
    ...uploadLimit(config, dialect, core.expiration, upload),
    'Cache-Control': 'no-store',
  })
  res.end()
}
