import type { RequestHandler } from 'express'
import { isFinalHeader } from '../core/records.js'
import { CreationSlots } from './creationSlots.js'
import type { TusDeps, TusHandler } from './deps.js'
import { deleteHandler } from './handlers/delete.js'
import { headHandler } from './handlers/head.js'
import { optionsHandler } from './handlers/options.js'
import { patchHandler } from './handlers/patch.js'
import { postHandler } from './handlers/post.js'

export interface TusRouter {
  handle: RequestHandler
  /** Creations waiting for a slot (a gauge). */
  readonly queued: number
}

/**
 * The tus methods, one handler each, after the protocol guard, authentication and limits. Creations run
 * a few at a time (CREATE_SLOTS); final uploads, whose assembly costs what their partials weigh, in
 * slots of their own (CONCAT_SLOTS), so they never hold up plain creations.
 */
export function tusRouter(deps: TusDeps): TusRouter {
  const creations = new CreationSlots(deps.config.CREATE_SLOTS)
  const assemblies = new CreationSlots(deps.config.CONCAT_SLOTS)
  const post = postHandler(deps)
  const methods: Record<string, TusHandler> = {
    OPTIONS: optionsHandler(deps),
    HEAD: headHandler(deps),
    PATCH: patchHandler(deps),
    DELETE: deleteHandler(deps),
    POST: (req, res) => {
      const slots = isFinalHeader(req.get('upload-concat')?.trim()) ? assemblies : creations
      // A client that left while its creation waited gets none.
      return slots.run(async () => (req.socket.destroyed ? undefined : post(req, res)))
    },
  }
  return {
    get queued() {
      return creations.queued + assemblies.queued
    },
    // The protocol guard let only these methods through.
    handle: (req, res, next) => void methods[req.method](req, res).catch(next),
  }
}
