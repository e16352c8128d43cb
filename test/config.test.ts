import { writeFileSync } from 'node:fs'
import { ConfigError, loadConfig, lockerSettings, storeSettings } from '../server/config.js'
import { startProcess, tempDir } from './helpers/servers.js'

describe('config', () => {
  test('defaults give a file store on port 1080 at /files', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      PORT: 1080,
      TUS_PATH: '/files',
      STORE: 'file',
      FILE_DIR: './data',
      MAX_SIZE: 0,
      UPLOAD_EXPIRES_AFTER: 24 * 3600 * 1000,
      CORS_ORIGINS: '*',
      TRUST_PROXY: 0,
      LOG_FORMAT: 'pretty',
    })
  })

  test('sizes and durations take units; JSON logs in production; origin lists split', () => {
    const config = loadConfig({
      MAX_SIZE: '10GB',
      UPLOAD_EXPIRES_AFTER: '90m',
      SHUTDOWN_TIMEOUT: '2500',
      NODE_ENV: 'production',
      CORS_ORIGINS: 'https://a.example, http://localhost:3000',
      TRUST_PROXY: '10.0.0.0/8, ::1,loopback',
    })
    expect(config.MAX_SIZE).toBe(10 * 1024 ** 3)
    expect(config.UPLOAD_EXPIRES_AFTER).toBe(90 * 60 * 1000)
    expect(config.SHUTDOWN_TIMEOUT).toBe(2500)
    expect(config.LOG_FORMAT).toBe('json')
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:3000'])
    expect(config.TRUST_PROXY).toEqual(['10.0.0.0/8', '::1', 'loopback'])
    expect(loadConfig({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1)
  })

  test('TRUST_PROXY=true, which would let a client choose its own address, is refused with the forms to use instead', () => {
    expect(() => loadConfig({ TRUST_PROXY: 'true' })).toThrow(/^invalid TRUST_PROXY: 'true' would trust every hop.*number of proxies .*\(e\.g\. 1\).*addresses/)
    expect(loadConfig({ PUBLIC_URL: 'https://uploads.example.com/' }).PUBLIC_URL).toBe('https://uploads.example.com')
  })

  test('UPLOAD_EXPIRES_AFTER=0 disables expiry', () => {
    expect(loadConfig({ UPLOAD_EXPIRES_AFTER: '0' }).UPLOAD_EXPIRES_AFTER).toBe(0)
  })

  test.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['TUS_PATH', 'files'],
    ['TUS_PATH', '/files/'],
    ['TUS_PATH', '/fi les'],
    ['STORE', 'floppy'],
    ['LOCKER', 'carrier-pigeon'],
    ['MAX_SIZE', 'ten gigs'],
    ['MAX_SIZE', '-5'],
    ['MAX_METADATA_SIZE', '1.5.5kb'],
    ['UPLOAD_EXPIRES_AFTER', 'tomorrow'],
    ['UPLOAD_EXPIRES_AFTER', '-1h'],
    ['SHUTDOWN_TIMEOUT', 'soon'],
    ['EXPIRY_SWEEP_INTERVAL', '0'],
    ['ORPHAN_GRACE_PERIOD', 'a while'],
    ['UPLOAD_LIST', 'maybe'],
    ['HEADERS_TIMEOUT', '10 parsecs'],
    ['UPLOAD_IDLE_TIMEOUT', 'x'],
    ['CORS_ORIGINS', 'not an origin'],
    ['CORS_ORIGINS', ','],
    ['TRUST_PROXY', 'maybe'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', '10.0.0.0/33'],
    ['TRUST_PROXY', '10.0.0.1,nowhere'],
    ['PUBLIC_URL', 'uploads.example.com'],
    ['PUBLIC_URL', 'https://uploads.example.com/?a=b'],
    ['MAX_BODIES', '-1'],
    ['FILE_FSYNC', 'yes please'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'xml'],
    ['MAX_METADATA_KEYS', '0'],
    ['MAX_METADATA_VALUE_SIZE', 'big'],
    ['ALLOWED_TYPES', 'images'],
    ['ALLOWED_TYPES', '*/png'],
    ['ALLOWED_TYPES', ','],
    ['MAGIC_BYTES_CHECK', 'sure'],
    ['CREATE_RATE_LIMIT_IP', '60'],
    ['CREATE_RATE_LIMIT_IP', '60/500ms'],
    ['CREATE_RATE_LIMIT_IP', '0/1m'],
    ['CORS_CREDENTIALS', 'yes'],
    ['S3_CONCURRENT_PARTS', '0'],
    ['S3_CONCURRENT_PARTS', '2.5'],
    ['S3_CONCURRENT_PARTS', 'many'],
    ['S3_CONCURRENT_PARTS', '1001'],
  ])('%s=%j is refused with a message naming it', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError)
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid ${name}: `))
  })

  test('the service refuses to start on a bad variable: one line on stderr, exit code 1', async () => {
    const temp = tempDir()
    try {
      const start = startProcess({ FILE_DIR: temp.dir, MAX_SIZE: 'lots' }, { waitMs: 10_000 })
      await expect(start).rejects.toThrow(/server exited with 1:\s*tusgate: invalid MAX_SIZE: expected a size like 1048576 or 10GB, got 'lots'\s*$/)
    } finally {
      temp.remove()
    }
  })

  test('a store that cannot start, or a port in use, is one line and exit code 1', async () => {
    const temp = tempDir()
    const first = await startProcess({ FILE_DIR: temp.dir })
    try {
      const taken = startProcess({ FILE_DIR: temp.dir, PORT: String(first.port) })
      await expect(taken).rejects.toThrow(/server exited with 1:\s*tusgate: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE.*\s*$/)
      // FILE_DIR below a regular file cannot be created.
      writeFileSync(`${temp.dir}/${first.port}.file`, '')
      const broken = startProcess({ FILE_DIR: `${temp.dir}/${first.port}.file/data` })
      await expect(broken).rejects.toThrow(/server exited with 1:\s*tusgate: cannot start the file store: .*ENOTDIR.*\s*$/)
    } finally {
      await first.stop()
      temp.remove()
    }
  })
})

describe('config: authentication', () => {
  const SECRET = 'x'.repeat(32)
  const JWKS = 'https://idp.example.com/.well-known/jwks.json'

  test('AUTH_MODE defaults to none; jwt takes a secret or a JWKS URL, with issuer, audience and JWKS timings', () => {
    expect(loadConfig({}).AUTH_MODE).toBe('none')
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_ISSUER: 'https://idp', JWT_AUDIENCE: 'uploads' })).toMatchObject({
      AUTH_MODE: 'jwt',
      JWT_SECRET: SECRET,
      JWT_ISSUER: 'https://idp',
      JWT_AUDIENCE: 'uploads',
    })
    const remote = loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: JWKS })
    expect(remote).toMatchObject({ JWT_JWKS_URL: JWKS, JWT_JWKS_COOLDOWN: 30_000, JWT_JWKS_MAX_AGE: 600_000 })
    expect(remote.JWT_SECRET).toBeUndefined()
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_JWKS_URL: JWKS, JWT_JWKS_COOLDOWN: '5s', JWT_JWKS_MAX_AGE: '1h' })).toMatchObject({
      JWT_JWKS_COOLDOWN: 5_000,
      JWT_JWKS_MAX_AGE: 3_600_000,
    })
    // 32 bytes, not 32 characters: 11 three-byte characters are enough.
    expect(loadConfig({ AUTH_MODE: 'jwt', JWT_SECRET: '€'.repeat(11) }).JWT_SECRET).toBe('€'.repeat(11))
  })

  test.each<[Record<string, string>, string, RegExp]>([
    [{ AUTH_MODE: 'basic' }, 'AUTH_MODE', /^invalid AUTH_MODE: /],
    [{ AUTH_MODE: 'hook' }, 'AUTH_MODE', /^invalid AUTH_MODE: AUTH_MODE=hook needs HOOKS_URL or HOOKS_DIR, and pre-create and pre-access in HOOKS_ENABLED$/],
    [{ AUTH_MODE: 'hook', HOOKS_URL: 'http://hooks:8081/', HOOKS_ENABLED: 'pre-create' }, 'AUTH_MODE', /^invalid AUTH_MODE: AUTH_MODE=hook needs/],
    [{ AUTH_MODE: 'hook', HOOKS_URL: 'http://hooks:8081/', HOOKS_ENABLED: 'post-finish' }, 'AUTH_MODE', /^invalid AUTH_MODE: AUTH_MODE=hook needs/],
    [{ AUTH_MODE: 'jwt' }, 'JWT_SECRET', /^invalid JWT_SECRET: AUTH_MODE=jwt needs JWT_SECRET \(HS256\) or JWT_JWKS_URL \(RS256\/ES256\)$/],
    [{ AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET', /^invalid JWT_SECRET: expected at least 32 bytes$/],
    [{ AUTH_MODE: 'jwt', JWT_SECRET: '€'.repeat(10) }, 'JWT_SECRET', /^invalid JWT_SECRET: expected at least 32 bytes$/],
    [{ AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_JWKS_URL: JWKS }, 'JWT_JWKS_URL', /^invalid JWT_JWKS_URL: give JWT_SECRET or JWT_JWKS_URL, not both$/],
    [{ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'not a url' }, 'JWT_JWKS_URL', /^invalid JWT_JWKS_URL: /],
    [{ AUTH_MODE: 'jwt', JWT_JWKS_URL: 'ftp://idp.example.com/jwks' }, 'JWT_JWKS_URL', /^invalid JWT_JWKS_URL: /],
    [{ AUTH_MODE: 'jwt', JWT_JWKS_URL: JWKS, JWT_JWKS_COOLDOWN: 'soon' }, 'JWT_JWKS_COOLDOWN', /^invalid JWT_JWKS_COOLDOWN: /],
    [{ AUTH_MODE: 'jwt', JWT_JWKS_URL: JWKS, JWT_JWKS_MAX_AGE: '500' }, 'JWT_JWKS_MAX_AGE', /^invalid JWT_JWKS_MAX_AGE: expected at least 1s$/],
    // A key with authentication off is someone believing the service protected: refused, not ignored.
    [{ JWT_SECRET: SECRET }, 'AUTH_MODE', /^invalid AUTH_MODE: JWT_SECRET is set but AUTH_MODE=none; set AUTH_MODE=jwt or unset JWT_SECRET$/],
    [{ AUTH_MODE: 'none', JWT_JWKS_URL: JWKS }, 'AUTH_MODE', /^invalid AUTH_MODE: JWT_JWKS_URL is set but AUTH_MODE=none/],
  ])('%j is refused with a message naming %s', (env, _name, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(message)
  })

  test('AUTH_MODE=jwt without a key stops start-up with one line and exit code 1', async () => {
    const temp = tempDir()
    try {
      const start = startProcess({ FILE_DIR: temp.dir, AUTH_MODE: 'jwt' }, { waitMs: 10_000 })
      await expect(start).rejects.toThrow(
        /server exited with 1:\s*tusgate: invalid JWT_SECRET: AUTH_MODE=jwt needs JWT_SECRET \(HS256\) or JWT_JWKS_URL \(RS256\/ES256\)\s*$/,
      )
    } finally {
      temp.remove()
    }
  })
})

test('UPLOAD_LIST with AUTH_MODE=hook is refused: no principal narrows the list', () => {
  expect(() => loadConfig({ UPLOAD_LIST: 'true', AUTH_MODE: 'hook', HOOKS_URL: 'http://127.0.0.1:1/hooks' })).toThrow(
    'invalid UPLOAD_LIST: not available with AUTH_MODE=hook',
  )
})

test('UPLOAD_LIST with AUTH_MODE=jwt is allowed: each principal sees its own uploads', () => {
  expect(loadConfig({ UPLOAD_LIST: 'true', AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32) }).UPLOAD_LIST).toBe(true)
})

describe('limits and CORS config', () => {
  test('rates, type lists and limits are parsed', () => {
    const config = loadConfig({
      CREATE_RATE_LIMIT_IP: '60/1m',
      CREATE_RATE_LIMIT_PRINCIPAL: '5 / 1500ms',
      ALLOWED_TYPES: 'Image/*, application/pdf',
      MAX_METADATA_VALUE_SIZE: '1kb',
      MAX_UNFINISHED_PER_PRINCIPAL: '3',
      AUTH_MODE: 'jwt',
      JWT_SECRET: 'x'.repeat(32),
      CORS_ORIGINS: 'https://app.example',
      CORS_CREDENTIALS: 'true',
    })
    expect(config).toMatchObject({
      CREATE_RATE_LIMIT_IP: { points: 60, seconds: 60 },
      // Windows are whole seconds, rounded up.
      CREATE_RATE_LIMIT_PRINCIPAL: { points: 5, seconds: 2 },
      ALLOWED_TYPES: ['image/*', 'application/pdf'],
      MAX_METADATA_VALUE_SIZE: 1024,
      MAX_UNFINISHED_PER_PRINCIPAL: 3,
      CORS_CREDENTIALS: true,
    })
    expect(loadConfig({})).toMatchObject({ MAX_METADATA_KEYS: 32, MAX_METADATA_KEY_LENGTH: 128, MAX_METADATA_VALUE_SIZE: 2048, MAGIC_BYTES_CHECK: false })
    expect(loadConfig({}).ALLOWED_TYPES).toBeUndefined()
  })

  test.each<[Record<string, string>, RegExp]>([
    [{ CORS_CREDENTIALS: 'true' }, /^invalid CORS_CREDENTIALS: not allowed with CORS_ORIGINS=\*; list the origins$/],
    [{ CORS_CREDENTIALS: 'true', CORS_ORIGINS: 'https://a.example,*' }, /^invalid CORS_CREDENTIALS: /],
    // Per-principal limits without a principal would limit nothing.
    [{ MAX_UNFINISHED_PER_PRINCIPAL: '2' }, /^invalid MAX_UNFINISHED_PER_PRINCIPAL: needs AUTH_MODE=jwt$/],
    [{ CREATE_RATE_LIMIT_PRINCIPAL: '10/1m' }, /^invalid CREATE_RATE_LIMIT_PRINCIPAL: needs AUTH_MODE=jwt$/],
  ])('%j is refused', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })
})

describe('config: hooks', () => {
  test("hooks are off without HOOKS_URL; the defaults are tusd's", () => {
    expect(loadConfig({}).HOOKS_URL).toBeUndefined()
    expect(loadConfig({ HOOKS_URL: 'http://hooks:8081/tus' })).toMatchObject({
      HOOKS_ENABLED: ['pre-create', 'post-create', 'post-receive', 'post-finish', 'post-terminate'],
      HOOKS_TIMEOUT: 15_000,
      HOOKS_RETRIES: 3,
      HOOKS_BACKOFF: 1_000,
      HOOKS_BACKOFF_MAX: 300_000,
      HOOKS_MAX_ATTEMPTS: 20,
      HOOKS_POST_RECEIVE_INTERVAL: 1_000,
    })
    expect(
      loadConfig({ HOOKS_URL: 'http://hooks', HOOKS_ENABLED: ' pre-finish , post-finish,pre-finish', HOOKS_FORWARD_HEADERS: 'Authorization, X-Tenant' }),
    ).toMatchObject({
      HOOKS_ENABLED: ['pre-finish', 'post-finish'],
      HOOKS_FORWARD_HEADERS: ['authorization', 'x-tenant'],
    })
    expect(loadConfig({ AUTH_MODE: 'hook', HOOKS_URL: 'https://hooks.example.com/tus' })).toMatchObject({
      AUTH_MODE: 'hook',
      HOOKS_ENABLED: ['pre-create', 'post-create', 'post-receive', 'post-finish', 'post-terminate', 'pre-access'],
    })
    expect(loadConfig({ HOOKS_URL: 'http://hooks' })).toMatchObject({ HOOKS_ACCESS_CACHE: 0, IDEMPOTENCY_TTL: 86_400_000 })
  })

  test.each<[Record<string, string>, RegExp]>([
    [{ HOOKS_URL: 'ftp://hooks' }, /^invalid HOOKS_URL: /],
    [{ HOOKS_ENABLED: 'pre-create,post-upload' }, /^invalid HOOKS_ENABLED: expected a comma-separated list of pre-create, .*, got 'post-upload'$/],
    [{ HOOKS_ENABLED: ' , ' }, /^invalid HOOKS_ENABLED: /],
    [{ HOOKS_TIMEOUT: '10' }, /^invalid HOOKS_TIMEOUT: expected at least 100ms$/],
    [{ HOOKS_RETRIES: '-1' }, /^invalid HOOKS_RETRIES: /],
    [{ HOOKS_MAX_ATTEMPTS: '0' }, /^invalid HOOKS_MAX_ATTEMPTS: /],
    [{ HOOKS_FORWARD_HEADERS: 'Authorization, bad header' }, /^invalid HOOKS_FORWARD_HEADERS: expected a comma-separated list of header names$/],
    [{ HOOKS_POST_RECEIVE_INTERVAL: '5ms' }, /^invalid HOOKS_POST_RECEIVE_INTERVAL: /],
  ])('%j is refused', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message)
  })
})

describe('config: each store and locker gets its own settings', () => {
  test('the file store: its folder, fsync and expiry; the memory locker: its timeout', () => {
    const config = loadConfig({ FILE_DIR: '/srv/up', FILE_FSYNC: 'false', UPLOAD_EXPIRES_AFTER: '2h', LOCK_TIMEOUT: '5s' })
    expect(storeSettings(config)).toEqual({ name: 'file', settings: { directory: '/srv/up', fsync: false, expiresAfterMs: 2 * 3600_000 } })
    expect(lockerSettings(config)).toEqual({ name: 'memory', settings: { timeoutMs: 5000 } })
    expect(config.ORPHAN_GRACE_PERIOD).toBe(3600_000)
  })

  test('S3: credentials only when both are given; the Redis info cache with REDIS_URL; the redis locker', () => {
    const base = { STORE: 's3', S3_BUCKET: 'ups', S3_ENDPOINT: 'http://s3.local:7480', S3_FORCE_PATH_STYLE: 'true', S3_KEY_PREFIX: 'p/' }
    expect(storeSettings(loadConfig(base))).toEqual({
      name: 's3',
      settings: {
        bucket: 'ups',
        region: 'us-east-1',
        endpoint: 'http://s3.local:7480',
        forcePathStyle: true,
        credentials: undefined,
        partSize: 8 * 1024 * 1024,
        concurrentParts: 60,
        useTags: true,
        keyPrefix: 'p/',
        expiresAfterMs: 24 * 3600_000,
        infoCache: undefined,
      },
    })
    const shared = loadConfig({
      ...base,
      S3_ACCESS_KEY_ID: 'id',
      S3_SECRET_ACCESS_KEY: 'secret',
      LOCKER: 'redis',
      REDIS_URL: 'redis://r:6379',
      REDIS_KEY_PREFIX: 'x:',
      LOCK_TTL: '4s',
      LOCK_TIMEOUT: '9s',
      S3_PART_SIZE: '32MB',
      S3_CONCURRENT_PARTS: '4',
    })
    expect(storeSettings(shared).settings).toMatchObject({
      partSize: 32 * 1024 * 1024,
      concurrentParts: 4,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
      infoCache: { redisUrl: 'redis://r:6379', keyPrefix: 'x:' },
    })
    expect(lockerSettings(shared)).toEqual({ name: 'redis', settings: { url: 'redis://r:6379', keyPrefix: 'x:', ttlMs: 4000, timeoutMs: 9000 } })
  })

  test('the file locker: `.locks` in FILE_DIR by default, or LOCK_DIR, which another store requires', () => {
    expect(lockerSettings(loadConfig({ LOCKER: 'file', FILE_DIR: '/srv/up', LOCK_TTL: '3s', LOCK_TIMEOUT: '7s' }))).toEqual({
      name: 'file',
      settings: { dir: '/srv/up/.locks', ttlMs: 3000, timeoutMs: 7000 },
    })
    expect(lockerSettings(loadConfig({ LOCKER: 'file', LOCK_DIR: '/shared/locks' })).settings).toMatchObject({ dir: '/shared/locks' })
    expect(() => loadConfig({ LOCKER: 'file', STORE: 's3', S3_BUCKET: 'ups' })).toThrow('invalid LOCK_DIR: required when LOCKER=file and STORE=s3')
    const s3 = loadConfig({ LOCKER: 'file', STORE: 's3', S3_BUCKET: 'ups', LOCK_DIR: '/shared/locks' })
    expect(lockerSettings(s3)).toEqual({ name: 'file', settings: { dir: '/shared/locks', ttlMs: 10_000, timeoutMs: 30_000 } })
    expect(() => loadConfig({ LOCKER: 'file', LOCK_TTL: '500ms' })).toThrow(/^invalid LOCK_TTL: /)
  })

  test('Azure: a connection string, or an account name and key at an endpoint; GCS: its client options', () => {
    expect(storeSettings(loadConfig({ STORE: 'azure', AZURE_CONTAINER: 'box', AZURE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }))).toEqual({
      name: 'azure',
      settings: { container: 'box', account: { connectionString: 'UseDevelopmentStorage=true' }, expiresAfterMs: 24 * 3600_000 },
    })
    const keyed = loadConfig({
      STORE: 'azure',
      AZURE_CONTAINER: 'box',
      AZURE_ACCOUNT_NAME: 'acct',
      AZURE_ACCOUNT_KEY: 'k',
      AZURE_ENDPOINT: 'http://az:10000/acct',
    })
    expect(storeSettings(keyed).settings).toMatchObject({ account: { name: 'acct', key: 'k', endpoint: 'http://az:10000/acct' } })
    expect(storeSettings(loadConfig({ STORE: 'gcs', GCS_BUCKET: 'gbk', GCS_PROJECT_ID: 'p', UPLOAD_EXPIRES_AFTER: '0' }))).toEqual({
      name: 'gcs',
      settings: { bucket: 'gbk', projectId: 'p', keyFile: undefined, apiEndpoint: undefined, expiresAfterMs: 0 },
    })
  })
})
