import type { Upload } from '@tus/utils'
import { expiresAt } from '../../stores/expiry.js'
import type { Config } from '../config.js'
import type { Dialect } from './versions.js'

/**
 * The Upload-Limit field (a Structured Field Dictionary) for the dialect, or undefined where it has none:
 * `min-size=0` (the draft's "no limits" value, and tusgate makes every upload resumable), `max-size` from
 * MAX_SIZE, and for an unfinished upload that expires the seconds it has left.
 */
export function uploadLimit(config: Config, dialect: Dialect, expirationMs: number, upload?: Upload, now = Date.now()): Record<string, string> {
  if (!dialect.lifetimeLimit) return {}
  const limits = ['min-size=0']
  if (config.MAX_SIZE > 0) limits.push(`max-size=${config.MAX_SIZE}`)
  const expires = upload && expiresAt(upload, expirationMs)
  if (expires) limits.push(`${dialect.lifetimeLimit}=${Math.max(0, Math.floor((expires.getTime() - now) / 1000))}`)
  return { 'Upload-Limit': limits.join(', ') }
}
