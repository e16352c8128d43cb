import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import path from 'node:path'
import bytes from 'bytes'
import ms from 'ms'
import { z } from 'zod'
import type { AzureStoreSettings } from '../stores/azure/index.js'
import type { FileStoreSettings } from '../stores/file/index.js'
import type { GcsStoreSettings } from '../stores/gcs/index.js'
import { type LockerChoice, lockerNames, type StoreChoice, storeNames } from '../stores/registry.js'
import type { S3StoreSettings } from '../stores/s3/index.js'
import { HOOK_TYPES, type HookType } from './hooks/types.js'
import { parseProxyTrust } from './proxyTrust.js'

// Sizes accept plain bytes or units ("10GB", "512kb"); durations plain milliseconds or units ("24h", "30s").
const size = z
  .string()
  .trim()
  .transform((text, ctx) => {
    // bytes.parse alone is lenient ('1.5.5kb' gives 1), so the shape is checked first.
    const value = /^\d+(\.\d+)?\s*(b|kb|mb|gb|tb|pb)?$/i.test(text) ? bytes.parse(text) : null
    if (value === null || !Number.isSafeInteger(value) || value < 0) {
      ctx.addIssue({ code: 'custom', message: `expected a size like 1048576 or 10GB, got '${text}'` })
      return z.NEVER
    }
    return value
  })

const duration = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const value = /^\d+$/.test(text) ? Number(text) : ms(text as ms.StringValue)
    if (value === undefined || !Number.isSafeInteger(value) || value < 0) {
      ctx.addIssue({ code: 'custom', message: `expected a duration like 30000, 30s or 24h, got '${text}'` })
      return z.NEVER
    }
    return value
  })

const flag = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

// A rate like "60/1m": so many requests per window (whole seconds, at least 1s).
const rate = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const match = /^(\d{1,9})\s*\/\s*(\S+)$/.exec(text)
    const points = match ? Number(match[1]) : 0
    const window = match ? duration.safeParse(match[2]) : undefined
    if (!match || points < 1 || !window?.success || window.data < 1000) {
      ctx.addIssue({ code: 'custom', message: `expected a rate like 60/1m (at least 1 per at least 1s), got '${text}'` })
      return z.NEVER
    }
    return { points, seconds: Math.ceil(window.data / 1000) }
  })

// MIME patterns like "image/*,application/pdf" (exact, type/* or */*), lower case.
const mimePatterns = z.string().transform((text, ctx) => {
  const patterns = text
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean)
  const bad = patterns.find((p) => !/^([a-z0-9!#$&^_.+-]+|\*)\/([a-z0-9!#$&^_.+-]+|\*)$/.test(p) || p.startsWith('*/') !== (p === '*/*'))
  if (patterns.length === 0 || bad !== undefined) {
    ctx.addIssue({ code: 'custom', message: `expected MIME types like image/*,application/pdf, got '${bad ?? text}'` })
    return z.NEVER
  }
  return patterns
})

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(1080),
  HOST: z.string().min(1).default('0.0.0.0'),
  // Processes serving the port (Node runs JavaScript on one core per process); 1: a single process.
  WORKERS: z.coerce.number().int().min(1).max(1024).default(availableParallelism()),
  TUS_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$/, "expected a path like /files (leading '/', no trailing '/')")
    .default('/files'),
  STORE: z.enum(storeNames).default('file'),
  FILE_DIR: z.string().min(1).default('./data'),
  FILE_FSYNC: flag.prefault('true'),
  S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  S3_BUCKET: z.string().min(3).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: flag.prefault('false'),
  // S3 refuses parts under 5 MiB (but the last), and allows 10,000 parts: 8 MiB parts reach 78 GiB.
  S3_PART_SIZE: size.refine((v) => v >= 5 * 1024 * 1024, 'expected at least 5MB').prefault('8MB'),
  // Parts spooled or being sent at once per process, across uploads; each holds a temporary file of S3_PART_SIZE.
  S3_CONCURRENT_PARTS: z.coerce.number().int('expected a whole number').min(1, 'expected at least 1').max(1000, 'expected at most 1000').default(60),
  S3_USE_TAGS: flag.prefault('true'),
  S3_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'expected safe S3 key characters')
    .default(''),
  AZURE_CONNECTION_STRING: z.string().optional(),
  AZURE_ACCOUNT_NAME: z.string().optional(),
  AZURE_ACCOUNT_KEY: z.string().optional(),
  AZURE_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  AZURE_CONTAINER: z
    .string()
    .regex(/^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/, 'expected a container name (3-63 of a-z, 0-9, -)')
    .optional(),
  GCS_BUCKET: z.string().min(3).optional(),
  GCS_PROJECT_ID: z.string().optional(),
  GCS_KEY_FILE: z.string().optional(),
  GCS_API_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  LOCKER: z.enum(lockerNames).default('memory'),
  LOCK_TIMEOUT: duration.prefault('30s'),
  // How long a request asked to release its lock gets to finish before it is cut.
  LOCK_DRAIN_TIMEOUT: duration.prefault('3s'),
  // A Redis or file lock lapses this long after its holder stops renewing it (a dead instance).
  LOCK_TTL: duration.refine((v) => v >= 1000, 'expected at least 1s').prefault('10s'),
  // The file locker's folder, shared by the instances; default: `.locks` in FILE_DIR with the file store.
  LOCK_DIR: z.string().min(1).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_KEY_PREFIX: z.string().default('tusgate:'),
  // Where a checksummed chunk waits until verified, on stores that cannot take bytes back (S3, Azure, GCS).
  CHECKSUM_STAGING_DIR: z.string().min(1).default(tmpdir()),
  MAX_SIZE: size.prefault('0'),
  MAX_METADATA_SIZE: size.prefault('4kb'),
  MAX_HEADER_SIZE: size.prefault('16kb'),
  MAX_METADATA_KEYS: z.coerce.number().int().min(1).default(32),
  MAX_METADATA_KEY_LENGTH: z.coerce.number().int().min(1).default(128),
  // Of one decoded value.
  MAX_METADATA_VALUE_SIZE: size.prefault('2kb'),
  // Unset: any type. Set: the `filetype` metadata must match one pattern at creation.
  ALLOWED_TYPES: mimePatterns.optional(),
  // The first bytes of an upload must be of the type its `filetype` declares.
  MAGIC_BYTES_CHECK: flag.prefault('false'),
  // 0: no limit. Needs AUTH_MODE=jwt (the principal is a token's sub).
  MAX_UNFINISHED_PER_PRINCIPAL: z.coerce.number().int().min(0).default(0),
  CREATE_RATE_LIMIT_IP: rate.optional(),
  CREATE_RATE_LIMIT_PRINCIPAL: rate.optional(),
  UPLOAD_EXPIRES_AFTER: duration.prefault('24h'),
  // How often the sweep runs: expired uploads, and what failed creations left behind.
  EXPIRY_SWEEP_INTERVAL: duration.refine((v) => v >= 1000, 'expected at least 1s').prefault('10m'),
  // A leftover (data without info, a temporary info file, an S3 multipart upload without info) is removed once this old.
  ORPHAN_GRACE_PERIOD: duration.prefault('1h'),
  UPLOAD_IDLE_TIMEOUT: duration.prefault('60s'),
  // How many request bodies are read at once (in turns, round-robin); 0: all at once.
  READ_SLOTS: z.coerce.number().int().min(0).default(16),
  // How many creations (POST) run at once; the others wait their turn. 0: no limit.
  CREATE_SLOTS: z.coerce.number().int().min(0).default(16),
  // How many final uploads of concatenation are assembled at once, apart from the creation slots. 0: no limit.
  CONCAT_SLOTS: z.coerce.number().int().min(0).default(2),
  HEADERS_TIMEOUT: duration.prefault('10s'),
  CORS_ORIGINS: z.string().default('*'),
  CORS_CREDENTIALS: flag.prefault('false'),
  // Which proxies may report the client's address and URL: false (none), how many hops, or their addresses.
  TRUST_PROXY: z
    .string()
    .transform((text, ctx) => {
      try {
        return parseProxyTrust(text)
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message })
        return z.NEVER
      }
    })
    .prefault('false'),
  // The service's public base URL (a proxy's): Location is built from it, never from request headers.
  PUBLIC_URL: z
    .url({ protocol: /^https?$/ })
    .refine((url) => !/[?#]/.test(url), 'expected a base URL like https://uploads.example.com, without query or fragment')
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  // Request bodies received at once, in all (503 beyond) and from one client address (429 beyond); 0: no
  // limit. By default MAX_BODIES is what the open-file limit leaves room for (a body holds a socket and a
  // file), and MAX_BODIES_PER_CLIENT a quarter of it, at most 100 (limits/bodies.ts).
  MAX_BODIES: z.coerce.number().int().min(0).optional(),
  MAX_BODIES_PER_CLIENT: z.coerce.number().int().min(0).optional(),
  // The IETF draft's interim 104 before the final answer; off behind a proxy that does not relay 1xx (nginx < 1.29).
  INTERIM_RESPONSES: flag.prefault('true'),
  // PEM files: both set, the service speaks HTTPS, and reloads them on SIGHUP or when they change.
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  WEB_UI: flag.prefault('true'),
  // The list of finished uploads: everyone's with AUTH_MODE=none (opt-in, where that is fine), each principal's own with jwt.
  UPLOAD_LIST: flag.prefault('false'),
  // The folder of the index of finished uploads the list reads; empty: `.index` in FILE_DIR.
  UPLOAD_LIST_INDEX_DIR: z.string().default(''),
  // Listings answered at once; more are refused with 503 and Retry-After.
  UPLOAD_LIST_CONCURRENCY: z.coerce.number().int().min(1).max(1024).default(4),
  CONCAT_REMOVE_PARTIALS: flag.prefault('false'),
  METRICS: flag.prefault('true'),
  // When set, /metrics wants `Authorization: Bearer <token>`.
  METRICS_TOKEN: z.string().min(16, 'expected at least 16 characters').optional(),
  // Who may upload: 'none' (anyone), 'jwt' (a bearer token signed with JWT_SECRET or a key of JWT_JWKS_URL)
  // or 'hook' (the pre-create hook decides each creation, the pre-access hook every other request on an upload).
  AUTH_MODE: z.enum(['none', 'jwt', 'hook']).default('none'),
  // HS256; never trimmed or echoed in an error.
  JWT_SECRET: z
    .string()
    .refine((v) => Buffer.byteLength(v) >= 32, 'expected at least 32 bytes')
    .optional(),
  // RS256/ES256 public keys, refetched for an unknown kid (not within JWT_JWKS_COOLDOWN of the last fetch)
  // and when older than JWT_JWKS_MAX_AGE (so a key removed from the set is refused within it).
  JWT_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  JWT_JWKS_COOLDOWN: duration.prefault('30s'),
  JWT_JWKS_MAX_AGE: duration.refine((v) => v >= 1000, 'expected at least 1s').prefault('10m'),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  // tusd v2 compatible hooks, sent to HOOKS_URL or run from HOOKS_DIR (one or the other); off without both.
  HOOKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  // A folder of executables named after hook types, as tusd's -hooks-dir; made absolute at start.
  HOOKS_DIR: z.string().min(1).optional(),
  HOOKS_ENABLED: z
    .string()
    .transform((text, ctx) => {
      const types = text
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)
      const unknown = types.find((t) => !(HOOK_TYPES as readonly string[]).includes(t))
      if (unknown !== undefined || types.length === 0) {
        ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${HOOK_TYPES.join(', ')}${unknown ? `, got '${unknown}'` : ''}` })
        return z.NEVER
      }
      return [...new Set(types)] as HookType[]
    })
    // tusd's default: the two blocking hooks that most receivers never expect stay off.
    .prefault('pre-create,post-create,post-receive,post-finish,post-terminate'),
  HOOKS_TIMEOUT: duration.refine((v) => v >= 100, 'expected at least 100ms').prefault('15s'),
  HOOKS_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  HOOKS_BACKOFF: duration.refine((v) => v >= 10, 'expected at least 10ms').prefault('1s'),
  HOOKS_BACKOFF_MAX: duration.refine((v) => v >= 10, 'expected at least 10ms').prefault('5m'),
  HOOKS_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(20),
  HOOKS_FORWARD_HEADERS: z
    .string()
    .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/, 'expected a comma-separated list of header names')
    .transform((text) => text.split(',').map((h) => h.trim().toLowerCase()))
    .optional(),
  HOOKS_POST_RECEIVE_INTERVAL: duration.refine((v) => v >= 100, 'expected at least 100ms').prefault('1s'),
  HOOKS_OUTBOX_DIR: z.string().min(1).optional(),
  // How long a pre-access answer is reused for the same upload, mode and caller; 0: ask every time.
  HOOKS_ACCESS_CACHE: duration.prefault('0'),
  // How long a creation's Idempotency-Key is remembered (in Redis with REDIS_URL); 0: the header is ignored.
  IDEMPOTENCY_TTL: duration.prefault('24h'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  SHUTDOWN_TIMEOUT: duration.prefault('30s'),
  NODE_ENV: z.string().optional(),
})

export type RawConfig = z.infer<typeof schema>
/** Every setting's name, in the schema's order; docs/configuration.md lists exactly these (test/docs.test.ts). */
export const CONFIG_KEYS = Object.keys(schema.shape) as (keyof RawConfig)[]

const REQUIRED_BY_STORE: Record<string, (keyof RawConfig)[]> = {
  s3: ['S3_BUCKET'],
  azure: ['AZURE_CONTAINER'],
  gcs: ['GCS_BUCKET'],
}
const REQUIRED_BY_LOCKER: Record<string, (keyof RawConfig)[]> = { redis: ['REDIS_URL'] }

export interface Config extends Omit<RawConfig, 'CORS_ORIGINS' | 'LOG_FORMAT'> {
  /** '*' means any origin; otherwise the exact origins allowed. */
  CORS_ORIGINS: '*' | string[]
  LOG_FORMAT: 'json' | 'pretty'
}

export class ConfigError extends Error {}

/** Reads the config from an environment; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty variables count as unset, as docker-compose passes `FOO=` through.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const result = schema.safeParse(present)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new ConfigError(`invalid ${String(issue.path[0])}: ${issue.message}`)
  }
  const raw = result.data
  const missing = (names: (keyof RawConfig)[], when: string) => {
    for (const name of names) if (raw[name] === undefined) throw new ConfigError(`invalid ${name}: required when ${when}`)
  }
  missing(REQUIRED_BY_STORE[raw.STORE] ?? [], `STORE=${raw.STORE}`)
  missing(REQUIRED_BY_LOCKER[raw.LOCKER] ?? [], `LOCKER=${raw.LOCKER}`)
  if (raw.LOCKER === 'file' && raw.STORE !== 'file') missing(['LOCK_DIR'], `LOCKER=file and STORE=${raw.STORE}`)
  if ((raw.S3_ACCESS_KEY_ID === undefined) !== (raw.S3_SECRET_ACCESS_KEY === undefined)) {
    throw new ConfigError('invalid S3_ACCESS_KEY_ID: give both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither')
  }
  if (raw.STORE === 'azure' && !raw.AZURE_CONNECTION_STRING && !(raw.AZURE_ACCOUNT_NAME && raw.AZURE_ACCOUNT_KEY)) {
    throw new ConfigError('invalid AZURE_CONNECTION_STRING: STORE=azure needs it, or AZURE_ACCOUNT_NAME and AZURE_ACCOUNT_KEY')
  }
  // Under AUTH_MODE=hook requests carry no principal, so the list could not be narrowed to one.
  if (raw.UPLOAD_LIST && raw.AUTH_MODE === 'hook') throw new ConfigError('invalid UPLOAD_LIST: not available with AUTH_MODE=hook')
  // AUTH_MODE=hook checks creation and access: by default the pre-access hook joins tusd's defaults.
  if (raw.AUTH_MODE === 'hook' && present.HOOKS_ENABLED === undefined) raw.HOOKS_ENABLED = [...raw.HOOKS_ENABLED, 'pre-access']
  if (raw.HOOKS_URL !== undefined && raw.HOOKS_DIR !== undefined) throw new ConfigError('invalid HOOKS_DIR: give HOOKS_URL or HOOKS_DIR, not both')
  if (raw.HOOKS_DIR !== undefined) raw.HOOKS_DIR = hooksFolder(raw.HOOKS_DIR)
  // The gate's hooks: a folder without them would let everyone in, as a missing file hook is skipped.
  const gate =
    raw.AUTH_MODE === 'hook' && raw.HOOKS_DIR !== undefined
      ? ['pre-create', 'pre-access'].find((type) => !existsSync(path.join(raw.HOOKS_DIR as string, type)))
      : undefined
  if (gate) throw new ConfigError(`invalid HOOKS_DIR: AUTH_MODE=hook needs an executable ${gate} in it`)
  if (raw.AUTH_MODE === 'hook' && (!hooksConfigured(raw) || !raw.HOOKS_ENABLED.includes('pre-create') || !raw.HOOKS_ENABLED.includes('pre-access'))) {
    throw new ConfigError('invalid AUTH_MODE: AUTH_MODE=hook needs HOOKS_URL or HOOKS_DIR, and pre-create and pre-access in HOOKS_ENABLED')
  }
  if (raw.AUTH_MODE === 'jwt') {
    if (raw.JWT_SECRET === undefined && raw.JWT_JWKS_URL === undefined) {
      throw new ConfigError('invalid JWT_SECRET: AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_JWKS_URL (RS256/ES256)')
    }
    if (raw.JWT_SECRET !== undefined && raw.JWT_JWKS_URL !== undefined) {
      throw new ConfigError('invalid JWT_JWKS_URL: give JWT_SECRET or JWT_JWKS_URL, not both')
    }
  } else {
    // A key without AUTH_MODE=jwt is a service someone believes protected: refuse rather than run open.
    const key = (['JWT_SECRET', 'JWT_JWKS_URL'] as const).find((name) => raw[name] !== undefined)
    if (key) throw new ConfigError(`invalid AUTH_MODE: ${key} is set but AUTH_MODE=${raw.AUTH_MODE}; set AUTH_MODE=jwt or unset ${key}`)
    // Limits per principal would silently limit nothing: there is no principal without a token.
    if (raw.MAX_UNFINISHED_PER_PRINCIPAL > 0) throw new ConfigError('invalid MAX_UNFINISHED_PER_PRINCIPAL: needs AUTH_MODE=jwt')
    if (raw.CREATE_RATE_LIMIT_PRINCIPAL) throw new ConfigError('invalid CREATE_RATE_LIMIT_PRINCIPAL: needs AUTH_MODE=jwt')
  }
  if ((raw.TLS_CERT_FILE === undefined) !== (raw.TLS_KEY_FILE === undefined)) {
    throw new ConfigError('invalid TLS_CERT_FILE: give both TLS_CERT_FILE and TLS_KEY_FILE, or neither')
  }
  if (raw.MAX_SIZE > Number.MAX_SAFE_INTEGER) throw new ConfigError('invalid MAX_SIZE: too large')
  const origins = raw.CORS_ORIGINS.split(',')
    .map((o) => o.trim())
    .filter(Boolean)
  if (origins.length === 0) throw new ConfigError("invalid CORS_ORIGINS: expected '*' or a comma-separated list of origins")
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`invalid CORS_ORIGINS: '${origin}' is not an origin like https://app.example.com`)
    }
  }
  // Browsers refuse credentials with a wildcard origin; echoing any origin instead would open every user's uploads.
  if (raw.CORS_CREDENTIALS && origins.includes('*')) {
    throw new ConfigError('invalid CORS_CREDENTIALS: not allowed with CORS_ORIGINS=*; list the origins')
  }
  return {
    ...raw,
    CORS_ORIGINS: origins.includes('*') ? '*' : origins,
    LOG_FORMAT: raw.LOG_FORMAT ?? (raw.NODE_ENV === 'production' ? 'json' : 'pretty'),
  }
}

/** Whether hooks are on: sent to HOOKS_URL or run from HOOKS_DIR. */
export function hooksConfigured(config: Pick<RawConfig, 'HOOKS_URL' | 'HOOKS_DIR'>): boolean {
  return config.HOOKS_URL !== undefined || config.HOOKS_DIR !== undefined
}

/** HOOKS_DIR made absolute, once it is known to be a folder tusgate can list and enter; a ConfigError otherwise. */
function hooksFolder(dir: string): string {
  const absolute = path.resolve(dir)
  let isFolder: boolean
  try {
    isFolder = statSync(absolute).isDirectory()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new ConfigError(`invalid HOOKS_DIR: '${dir}' ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`)
  }
  if (!isFolder) throw new ConfigError(`invalid HOOKS_DIR: '${dir}' is not a folder`)
  try {
    accessSync(absolute, constants.R_OK | constants.X_OK)
  } catch {
    throw new ConfigError(`invalid HOOKS_DIR: '${dir}' cannot be read (no permission)`)
  }
  return absolute
}

/** The store back end the config names, with its settings. */
export function storeSettings(config: Config): StoreChoice {
  switch (config.STORE) {
    case 'file':
      return { name: 'file', settings: fileStoreSettings(config) }
    case 's3':
      return { name: 's3', settings: s3StoreSettings(config) }
    case 'azure':
      return { name: 'azure', settings: azureStoreSettings(config) }
    case 'gcs':
      return { name: 'gcs', settings: gcsStoreSettings(config) }
  }
}

function fileStoreSettings(config: Config): FileStoreSettings {
  return { directory: config.FILE_DIR, fsync: config.FILE_FSYNC, expiresAfterMs: config.UPLOAD_EXPIRES_AFTER }
}

function s3StoreSettings(config: Config): S3StoreSettings {
  const { S3_ACCESS_KEY_ID: accessKeyId, S3_SECRET_ACCESS_KEY: secretAccessKey } = config
  return {
    bucket: config.S3_BUCKET as string,
    region: config.S3_REGION,
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    partSize: config.S3_PART_SIZE,
    concurrentParts: config.S3_CONCURRENT_PARTS,
    useTags: config.S3_USE_TAGS,
    keyPrefix: config.S3_KEY_PREFIX,
    expiresAfterMs: config.UPLOAD_EXPIRES_AFTER,
    infoCache: config.REDIS_URL ? { redisUrl: config.REDIS_URL, keyPrefix: config.REDIS_KEY_PREFIX } : undefined,
  }
}

function azureStoreSettings(config: Config): AzureStoreSettings {
  return {
    container: config.AZURE_CONTAINER as string,
    account: config.AZURE_CONNECTION_STRING
      ? { connectionString: config.AZURE_CONNECTION_STRING }
      : { name: config.AZURE_ACCOUNT_NAME as string, key: config.AZURE_ACCOUNT_KEY as string, endpoint: config.AZURE_ENDPOINT },
    expiresAfterMs: config.UPLOAD_EXPIRES_AFTER,
  }
}

function gcsStoreSettings(config: Config): GcsStoreSettings {
  return {
    bucket: config.GCS_BUCKET as string,
    projectId: config.GCS_PROJECT_ID,
    keyFile: config.GCS_KEY_FILE,
    apiEndpoint: config.GCS_API_ENDPOINT,
    expiresAfterMs: config.UPLOAD_EXPIRES_AFTER,
  }
}

/** The locker the config names, with its settings. */
export function lockerSettings(config: Config): LockerChoice {
  if (config.LOCKER === 'memory') return { name: 'memory', settings: { timeoutMs: config.LOCK_TIMEOUT } }
  if (config.LOCKER === 'file') {
    return { name: 'file', settings: { dir: lockDirectory(config), ttlMs: config.LOCK_TTL, timeoutMs: config.LOCK_TIMEOUT } }
  }
  return {
    name: 'redis',
    settings: { url: config.REDIS_URL as string, keyPrefix: config.REDIS_KEY_PREFIX, ttlMs: config.LOCK_TTL, timeoutMs: config.LOCK_TIMEOUT },
  }
}

/** The file locker's folder: LOCK_DIR, else `.locks` in the file store's folder (a dot: never an upload's name). */
export function lockDirectory(config: Config): string {
  return config.LOCK_DIR ?? path.join(config.FILE_DIR, '.locks')
}
