import { readFileSync } from 'node:fs'
import type { RequestHandler } from 'express'
import type { Config } from '../config.js'
import { hasBody } from '../http/request.js'
import { tusReply } from '../tus/reply.js'

// File descriptors kept for what is not a body: listening, logs, creations, HEADs, the store's other files.
const RESERVED_FDS = 128
// A body holds its socket and the upload's open file, and a store may open one more (staging, info).
const FDS_PER_BODY = 3
const MAX_DEFAULT_PER_CLIENT = 100

/** How long a client refused for lack of room is asked to wait, in seconds. */
const RETRY_AFTER_SECONDS = 5

/** The soft limit on open files (RLIMIT_NOFILE), on Linux; null where it cannot be read. */
export function openFileLimit(limits = '/proc/self/limits'): number | null {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(limits, 'latin1'))
    return match ? Number(match[1]) : null
  } catch {
    return null
  }
}

/**
 * The limits MAX_BODIES and MAX_BODIES_PER_CLIENT give, or when unset: in all, what the open-file limit
 * leaves room for (none where it is unknown); per client, a quarter of that, at most 100, so that one
 * address cannot take every place.
 */
export function bodyLimitsOf(config: Pick<Config, 'MAX_BODIES' | 'MAX_BODIES_PER_CLIENT'>, fileLimit = openFileLimit()): { total: number; perClient: number } {
  const total = config.MAX_BODIES ?? (fileLimit === null ? 0 : Math.max(1, Math.floor((fileLimit - RESERVED_FDS) / FDS_PER_BODY)))
  const perClient =
    config.MAX_BODIES_PER_CLIENT ?? (total === 0 ? MAX_DEFAULT_PER_CLIENT : Math.max(1, Math.min(MAX_DEFAULT_PER_CLIENT, Math.floor(total / 4))))
  return { total, perClient }
}

/**
 * Counts the request bodies being received, per client address and in all, so that clients that
 * trickle their bodies (a byte now and then) cannot hold every socket and open file of the process.
 */
export class BodyCounts {
  private total = 0
  private readonly perClient = new Map<string, number>()

  constructor(readonly limits: { perClient: number; total: number }) {}

  /** Counts one more body from `client`: a release function, or which limit it would break. */
  admit(client: string): (() => void) | 'client' | 'total' {
    const mine = this.perClient.get(client) ?? 0
    if (this.limits.perClient > 0 && mine >= this.limits.perClient) return 'client'
    if (this.limits.total > 0 && this.total >= this.limits.total) return 'total'
    this.perClient.set(client, mine + 1)
    this.total++
    let released = false
    return () => {
      if (released) return
      released = true
      this.total--
      const left = (this.perClient.get(client) ?? 1) - 1
      if (left === 0) this.perClient.delete(client)
      else this.perClient.set(client, left)
    }
  }

  get inProgress(): number {
    return this.total
  }
}

/**
 * For the upload routes, before anything reads a body: a request with a body beyond MAX_BODIES_PER_CLIENT
 * bodies of its client address is answered 429, beyond MAX_BODIES bodies in all 503 (see bodyLimitsOf), both with
 * Retry-After, and its connection closed (its body unread). The client address is Express's `req.ip`
 * (TRUST_PROXY decides which hop that is). A body counts until its response is over.
 */
export function bodyLimits(config: Pick<Config, 'MAX_BODIES_PER_CLIENT' | 'MAX_BODIES' | 'CORS_ORIGINS' | 'CORS_CREDENTIALS'>): RequestHandler {
  const counts = new BodyCounts(bodyLimitsOf(config))
  const retry = { 'Retry-After': String(RETRY_AFTER_SECONDS) }
  return (req, res, next) => {
    if (!hasBody(req)) return next()
    const admitted = counts.admit(req.ip ?? req.socket.remoteAddress ?? '')
    if (admitted === 'client') {
      return tusReply(config, req, res, 429, `Too many uploads in progress from this address; retry in ${RETRY_AFTER_SECONDS} s`, retry)
    }
    if (admitted === 'total') {
      return tusReply(config, req, res, 503, `Too many uploads in progress; retry in ${RETRY_AFTER_SECONDS} s`, retry)
    }
    res.once('close', admitted)
    next()
  }
}
