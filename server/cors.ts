import { EXPOSED_HEADERS } from '@tus/utils'
import { REQUEST_ID_HEADER } from './accessLog.js'
import type { Config } from './config.js'
import { IETF_FIELDS } from './http/fields.js'

/** Headers a browser may read beyond tus's own list. */
export const EXTRA_EXPOSED_HEADERS = ['Upload-Expires', 'Tus-Checksum-Algorithm', REQUEST_ID_HEADER, ...IETF_FIELDS]

/** The Access-Control-Allow-Origin value for a request's Origin, or undefined for none. */
export function allowedOrigin(config: Pick<Config, 'CORS_ORIGINS'>, origin: string | undefined): string | undefined {
  if (config.CORS_ORIGINS === '*') return '*'
  return origin && config.CORS_ORIGINS.includes(origin) ? origin : undefined
}

/** CORS headers for a response to a request from `origin`. */
export function corsHeaders(config: Pick<Config, 'CORS_ORIGINS' | 'CORS_CREDENTIALS'>, origin: string | undefined): Record<string, string> {
  const allow = allowedOrigin(config, origin)
  if (!allow) return {}
  return {
    'Access-Control-Allow-Origin': allow,
    'Access-Control-Expose-Headers': [EXPOSED_HEADERS, ...EXTRA_EXPOSED_HEADERS].join(', '),
    // Never with '*': the config refuses CORS_CREDENTIALS with CORS_ORIGINS=*.
    ...(config.CORS_CREDENTIALS ? { 'Access-Control-Allow-Credentials': 'true' } : {}),
    ...(allow === '*' ? {} : { Vary: 'Origin' }),
  }
}
