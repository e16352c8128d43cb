import { writeFileSync } from 'node:fs'
import { ConfigError, loadConfig } from '../server/config.js'
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
      TRUST_PROXY: false,
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
      TRUST_PROXY: 'true',
    })
    expect(config.MAX_SIZE).toBe(10 * 1024 ** 3)
    expect(config.UPLOAD_EXPIRES_AFTER).toBe(90 * 60 * 1000)
    expect(config.SHUTDOWN_TIMEOUT).toBe(2500)
    expect(config.LOG_FORMAT).toBe('json')
    expect(config.CORS_ORIGINS).toEqual(['https://a.example', 'http://localhost:3000'])
    expect(config.TRUST_PROXY).toBe(true)
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
    ['HEADERS_TIMEOUT', '10 parsecs'],
    ['UPLOAD_IDLE_TIMEOUT', 'x'],
    ['CORS_ORIGINS', 'not an origin'],
    ['CORS_ORIGINS', ','],
    ['TRUST_PROXY', 'maybe'],
    ['FILE_FSYNC', 'yes please'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'xml'],
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
