import type { Request, Response } from 'express'
import type { DataStore, Upload } from '@tus/utils'
import { applyHeaders, type HookRejection, type Hooks } from '../../hooks/index.js'
import type { BodyWrite } from './bodyWrite.js'

/**
 * Writes the request's body at the upload's offset (at most `room` bytes) and moves `upload.offset` on,
 * sending post-receive while it streams. A post-receive's StopUpload cuts the body; the upload is then
 * removed, as tusd does (a stopped upload cannot be resumed), post-terminate queued, and the hook's
 * rejection thrown for the caller to answer, its headers already on the response.
 */
export async function receiveBody(
  hooks: Hooks | undefined,
  req: Request,
  res: Response,
  store: DataStore,
  lock: BodyWrite,
  upload: Upload,
  room: number,
): Promise<void> {
  let stopped: HookRejection | undefined
  const received = hooks?.receiving(req, upload, (rejection) => {
    stopped = rejection
    lock.stop()
  })
  try {
    upload.offset = await lock.write(store, upload.offset, room)
  } finally {
    received?.()
  }
  if (!stopped) return
  await store.remove(upload.id)
  await hooks?.terminated(req, upload)
  applyHeaders(res, stopped.headers)
  throw stopped
}
