import type { DataStore } from '@tus/utils'
import type { Request, RequestHandler, Response } from 'express'
import type { RateLimiterAbstract } from 'rate-limiter-flexible'
import { parseMetadata } from '../../stores/metadata.js'
import type { Config } from '../config.js'
import { hasBody } from '../http/request.js'
import type { Logger } from '../logger.js'
import { requestContext } from '../requestContext.js'
import { tusReply } from '../tus/reply.js'
import { typeAllowed } from './fileTypes.js'
import { MemorySets, RedisSets } from './principalSets.js'
import { type Settle, unfinishedLimit } from './unfinished.js'

export interface UploadLimits {
  /** For the tus routes, after authentication and the protocol guard: refuses what breaks a limit before anything is stored. */
  uploads: RequestHandler
  close(): Promise<void>
}

type LimitsConfig = Pick<
  Config,
  | 'TUS_PATH'
  | 'CORS_ORIGINS'
  | 'CORS_CREDENTIALS'
  | 'REDIS_URL'
  | 'REDIS_KEY_PREFIX'
  | 'ALLOWED_TYPES'
  | 'MAGIC_BYTES_CHECK'
  | 'MAX_UNFINISHED_PER_PRINCIPAL'
  | 'CREATE_RATE_LIMIT_IP'
  | 'CREATE_RATE_LIMIT_PRINCIPAL'
>

const filetypeOf = (req: Request): string | undefined => {
  const header = req.get('upload-metadata')
  // The protocol guard has checked the header's grammar.
  return header ? (parseMetadata(header)?.filetype ?? undefined) : undefined
}

/**
 * The upload limits beyond sizes: creations per client address and per principal (429 with Retry-After),
 * the `filetype` allowlist (415), the first bytes' type (415) and unfinished uploads per principal (403).
 * Counters and sets live in Redis when REDIS_URL is set, so that every instance shares them. Should
 * Redis fail, creations go on (logged): these limits protect, no upload depends on them.
 */
export async function uploadLimits(config: LimitsConfig, datastore: DataStore, logger: Logger): Promise<UploadLimits> {
  const { CREATE_RATE_LIMIT_IP: perIp, CREATE_RATE_LIMIT_PRINCIPAL: perPrincipal, MAX_UNFINISHED_PER_PRINCIPAL: maxUnfinished } = config
  const shared = config.REDIS_URL !== undefined && (perIp !== undefined || perPrincipal !== undefined || maxUnfinished > 0)
  // The Redis client, the rate limiter and file-type load only when a limit needs them: a process holds
  // (and its collector walks) only the modules it uses.
  const redisClient = shared ? await import('../../stores/redis/client.js') : undefined
  const redis = redisClient?.createRedisClient(config, { connectionName: 'tusgate-limits' })
  if (redis) await redisClient?.connectRedis(redis, 5000)
  const rateLimits = perIp || perPrincipal ? await import('./rateLimit.js') : undefined
  const magicBytes = config.MAGIC_BYTES_CHECK ? await import('./magicBytes.js') : undefined
  const prefix = `${config.REDIS_KEY_PREFIX}limits:`
  const rates: Array<{ limiter: RateLimiterAbstract; key: (req: Request) => string | undefined; who: string }> = []
  if (rateLimits && perIp) rates.push({ limiter: rateLimits.rateLimiter(perIp, `${prefix}ip`, redis), key: (req) => req.ip, who: 'from this address' })
  if (rateLimits && perPrincipal) {
    const key = () => requestContext.current()?.principal
    rates.push({ limiter: rateLimits.rateLimiter(perPrincipal, `${prefix}principal`, redis), key, who: 'by this user' })
  }
  const unfinished =
    maxUnfinished > 0 ? unfinishedLimit(maxUnfinished, redis ? new RedisSets(redis, `${prefix}unfinished:`) : new MemorySets(), datastore) : undefined

  const degraded = (what: string, error: unknown) => logger.warn(`${what} not checked`, { requestId: requestContext.current()?.requestId, error })

  /** A refusal for the creation rate, or undefined. */
  const rateRefusal = async (req: Request): Promise<[number, string] | undefined> => {
    for (const { limiter, key, who } of rates) {
      const id = key(req)
      if (id === undefined) continue
      const wait = await rateLimits?.retryAfter(limiter, id).catch((error) => void degraded('creation rate', error))
      if (wait !== undefined) return [wait, `Too many uploads created ${who}; retry in ${wait} s`]
    }
    return undefined
  }

  /** Whether the first bytes of the body fit `filetype`; answers 415 itself when not. Undefined when the client left. */
  const firstBytesFit = async (req: Request, res: Response, filetype: string): Promise<boolean | undefined> => {
    if (!magicBytes) return true
    const head = await magicBytes.peekBody(req)
    if (head === undefined) return undefined
    const problem = await magicBytes.contentProblem(head, filetype, config.ALLOWED_TYPES)
    if (problem) tusReply(config, req, res, 415, problem)
    return problem === undefined
  }

  const creation: RequestHandler = async (req, res, next) => {
    const refusal = await rateRefusal(req)
    if (refusal) return tusReply(config, req, res, 429, refusal[1], { 'Retry-After': String(refusal[0]) })
    const filetype = filetypeOf(req)
    if (config.ALLOWED_TYPES && !(filetype && typeAllowed(filetype, config.ALLOWED_TYPES))) {
      return tusReply(config, req, res, 415, `Only uploads whose filetype metadata is ${config.ALLOWED_TYPES.join(', ')} are accepted`)
    }
    if (config.MAGIC_BYTES_CHECK && filetype && hasBody(req) && !(await firstBytesFit(req, res, filetype))) return

    const context = requestContext.current()
    if (unfinished && context?.principal !== undefined) {
      const principal = context.principal
      const unchecked: Settle = async () => undefined
      const settle = await unfinished.reserve(principal, context.requestId).catch((error) => {
        degraded('unfinished uploads', error)
        return unchecked
      })
      if (settle === undefined) {
        return tusReply(config, req, res, 403, `At most ${unfinished.limit} unfinished uploads at a time: finish or terminate one first`)
      }
      // The upload's id is known once @tus/server has named it; a failed creation named none, or one the set drops later.
      res.once('close', () => void settle(context.uploadId).catch((error) => degraded('unfinished uploads', error)))
    }
    next()
  }

  /** A PATCH at offset 0 carries an upload's first bytes: they must fit its filetype. */
  const firstPatch: RequestHandler = async (req, res, next) => {
    const id = req.path.slice(config.TUS_PATH.length + 1)
    const upload = await datastore.getUpload(id).catch(() => undefined)
    const filetype = upload?.metadata?.filetype
    // Anything else is the PATCH handler's to answer (unknown upload, offset mismatch).
    if (upload?.offset !== 0 || !filetype) return next()
    const fits = await firstBytesFit(req, res, filetype)
    if (fits) next()
  }

  const uploads: RequestHandler = (req, res, next) => {
    const atCollection = req.path.slice(config.TUS_PATH.length).replace(/^\//, '') === ''
    if (req.method === 'POST' && atCollection) return creation(req, res, next)
    if (req.method === 'PATCH' && config.MAGIC_BYTES_CHECK && req.get('upload-offset') === '0') return firstPatch(req, res, next)
    next()
  }

  return {
    uploads,
    async close() {
      if (redis) await redisClient?.closeRedis(redis)
    },
  }
}
