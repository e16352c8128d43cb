import type { Request, Response } from 'express'
import { callerOf } from '../http/request.js'
import type { IetfDeps } from './deps.js'
import type { Dialect } from './versions.js'

/** Upload cancellation (DELETE): removes the upload as a tus DELETE does (same hooks), and answers 204. */
export async function cancelUpload({ core, reply }: IetfDeps, dialect: Dialect, id: string, req: Request, res: Response): Promise<void> {
  const headers = await core.terminate(callerOf(req), id)
  res
    .status(204)
    .set({ ...reply.common(req, dialect), ...headers })
    .end()
}
