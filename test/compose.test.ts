import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import path from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import ts from 'typescript'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../server/config.js'
import { NODE_FLAGS } from '../server/runtimeFlags.js'
import { nginxConfig } from './helpers/nginx.js'
import { ROOT, startServer } from './helpers/servers.js'

// No Docker engine here: the container files are checked statically, against the compose-spec
// schema, the config loader, tsconfig.build.json and package.json, and the health probe is run
// for real against an in-process server.

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')

// ---------- compose ----------

type Env = Record<string, string>
interface Service {
  environment?: Record<string, string | number | boolean | null> | string[]
  volumes?: (string | { type?: string; source?: string; target?: string })[]
  ports?: (string | number | { target?: number | string; published?: number | string })[]
  healthcheck?: { test?: string | string[]; disable?: boolean }
  restart?: string
  stop_grace_period?: string
  profiles?: string[]
  deploy?: { replicas?: number }
  depends_on?: Record<string, { condition?: string }>
  entrypoint?: string[]
  command?: string[]
  configs?: { source: string; target: string }[]
  build?: string | { context?: string; dockerfile?: string }
  image?: string
}
interface Compose {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
  configs?: Record<string, { content?: string }>
}

function composeValidator(): ValidateFunction {
  const schema = JSON.parse(read('node_modules/dclint/schemas/compose.schema.json'))
  // The schema names its dialect 'https://json-schema.org/draft-07/schema', which ajv does not know
  // by that spelling; ajv's default class is draft-07 already, so the declaration is dropped.
  delete schema.$schema
  const ajv = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true })
  return ajv.compile(schema)
}

/** The service's environment as the container sees it (map or KEY=VALUE list; null means unset). */
function environmentOf(service: Service): Env {
  const raw = service.environment ?? {}
  const entries: [string, unknown][] = Array.isArray(raw)
    ? raw.map((item) => {
        const at = item.indexOf('=')
        return at === -1 ? [item, null] : [item.slice(0, at), item.slice(at + 1)]
      })
    : Object.entries(raw)
  return Object.fromEntries(entries.filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, String(v)]))
}

/** Named-volume mounts of a service as [volume, container path]. */
function namedMounts(service: Service): [string, string][] {
  return (service.volumes ?? []).flatMap((volume): [string, string][] => {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':')
      // Bind mounts start with '.', '/' or '~'; anything else before ':' names a volume.
      return target && !/^[./~]/.test(source) ? [[source, target]] : []
    }
    return (volume.type ?? 'volume') === 'volume' && volume.source && volume.target ? [[volume.source, volume.target]] : []
  })
}

/** Container ports published by a service. */
function containerPorts(service: Service): number[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'object') return Number(port.target)
    const spec = String(port).split('/')[0]
    return Number(spec.split(':').at(-1))
  })
}

/** Compose durations use Go's syntax: '45s', '1m30s', '1.5h', '500ms'. Returns milliseconds. */
function composeDurationMs(value: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, µs: 1e-3, ns: 1e-6 }
  const text = String(value).trim()
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y
  let total = 0
  while (part.lastIndex < text.length) {
    const match = part.exec(text)
    if (!match) break
    total += Number(match[1]) * units[match[2]]
  }
  if (text === '' || part.lastIndex !== text.length) throw new Error(`not a compose duration: '${value}'`)
  return total
}

/** Compose env keys that the config loader does not know: zod drops unknown keys, so they are missing from its result. */
function unknownConfigKeys(env: Env): string[] {
  const loaded = loadConfig(env) as unknown as Record<string, unknown>
  return Object.keys(env).filter((key) => !(key in loaded))
}

/** The probe's argv from a healthcheck test (exec form only, so it runs without a shell). */
function probeArgv(test: string | string[] | undefined): string[] {
  if (!Array.isArray(test) || test[0] !== 'CMD') throw new Error(`expected an exec-form healthcheck ["CMD", ...], got ${JSON.stringify(test)}`)
  return test.slice(1)
}

// ---------- Dockerfile ----------

interface Instruction {
  keyword: string
  args: string
}
interface Stage {
  image: string
  name?: string
  instructions: Instruction[]
}

/** Dockerfile instructions by stage, with comments dropped and line continuations joined. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = []
  let pending = ''
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue
    if (/\\\s*$/.test(line)) {
      pending += `${line.replace(/\\\s*$/, '')} `
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    if (full) logical.push(full)
  }
  const stages: Stage[] = []
  for (const line of logical) {
    const [, keyword, args] = /^(\S+)\s*(.*)$/s.exec(line) as RegExpExecArray
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() }
    if (instruction.keyword === 'FROM') {
      const [image, as, name] = instruction.args.replace(/--\S+\s+/g, '').split(/\s+/)
      stages.push({ image, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] })
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`${instruction.keyword} before the first FROM`)
    } else {
      stages.at(-1)!.instructions.push(instruction)
    }
  }
  return stages
}

const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword)
const last = (stage: Stage, keyword: string) => all(stage, keyword).at(-1)
const execForm = (args: string): string[] => {
  const parsed = JSON.parse(args)
  if (!Array.isArray(parsed)) throw new Error(`expected exec form, got ${args}`)
  return parsed
}
/** ENV key=value pairs (the legacy 'ENV KEY value' form too). */
function envOf(stage: Stage): Env {
  const env: Env = {}
  for (const { args } of all(stage, 'ENV')) {
    if (!/^\S+=/.test(args)) {
      const [key, ...value] = args.split(/\s+/)
      env[key] = value.join(' ')
      continue
    }
    for (const [, key, quoted, bare] of args.matchAll(/(\w+)=(?:"([^"]*)"|(\S*))/g)) env[key] = quoted ?? bare
  }
  return env
}
const workdirOf = (stage: Stage) => path.posix.resolve('/', last(stage, 'WORKDIR')?.args ?? '/')
/** COPY's source and destination paths (flags dropped; exec or shell form). */
function copyPaths(args: string): { from?: string; sources: string[]; dest: string } {
  const from = /--from=(\S+)/.exec(args)?.[1]
  const rest = args.replace(/--\S+/g, '').trim()
  const parts = rest.startsWith('[') ? execForm(rest) : rest.split(/\s+/)
  return { from, sources: parts.slice(0, -1), dest: parts.at(-1)! }
}

// ---------- the repository's build layout ----------

/**
 * The compiled entry point relative to the repo, as package.json's start script runs it (after its
 * prestart build), checked to be what tsconfig.build.json's outDir/rootDir make of a source file.
 */
function compiledEntry(): { entry: string; outDir: string; include: string[] } {
  const { start, prestart } = JSON.parse(read('package.json')).scripts as Record<string, string>
  const entry = start.split(/\s+/).find((word) => word.endsWith('.js'))
  if (!entry) throw new Error(`no .js entry in the start script '${start}'`)
  if (!/\bnpm run build\b/.test(prestart ?? '')) throw new Error(`the prestart script '${prestart}' does not build`)
  const file = path.join(ROOT, 'tsconfig.build.json')
  const { config, error } = ts.readConfigFile(file, ts.sys.readFile)
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'))
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, file)
  const outDir = parsed.options.outDir
  if (!outDir) throw new Error('tsconfig.build.json has no outDir')
  const rootDir = parsed.options.rootDir ?? ROOT
  const source = path.join(rootDir, path.relative(outDir, path.join(ROOT, entry))).replace(/\.js$/, '.ts')
  if (!parsed.fileNames.includes(source)) throw new Error(`${entry} is not compiled from a source of tsconfig.build.json`)
  const relative = (p: string) => path.relative(ROOT, p).split(path.sep).join('/')
  return { entry: relative(path.join(ROOT, entry)), outDir: relative(outDir), include: (config.include ?? []) as string[] }
}

/** Exit code of a health probe argv (['node', '-e', ...]) run with PORT set, as the container would. */
function runProbe(argv: string[], port: number): Promise<number> {
  const [command, ...args] = argv
  expect(command).toBe('node')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH, PORT: String(port) }, stdio: 'ignore' })
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve(code ?? -1)
    })
  })
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A tag that names a release (1.28.0, 4.43, 7.4.2-alpine), not a moving line (latest, 1.28, 24-slim). */
const PINNED_IMAGE = /^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$/

// ---------- tests ----------

const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as Compose
const service = compose.services?.tusgate
const composeEnv = service ? environmentOf(service) : {}
const stages = parseDockerfile(read('Dockerfile'))
const runtime = stages.at(-1)!

describe('docker-compose.yml', () => {
  const validate = composeValidator()

  test('is valid against the compose-spec schema', () => {
    const valid = validate(compose)
    expect(validate.errors ?? []).toEqual([])
    expect(valid).toBe(true)
  })

  test('dclint finds no problem in it', async () => {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(path.join(ROOT, 'node_modules/.bin/dclint'), ['docker-compose.yml'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      child.stdout?.on('data', (c) => (out += c))
      child.stderr?.on('data', (c) => (out += c))
      child.on('error', reject)
      child.on('exit', (exitCode) => (exitCode === 0 ? resolve(0) : reject(new Error(`dclint exited with ${exitCode}:\n${out}`))))
    })
    expect(code).toBe(0)
  }, 60_000)

  test('the schema validator rejects broken compose documents', () => {
    expect(validate({ services: { x: { ports: 5 } } })).toBe(false)
    expect(validate.errors?.some((e) => e.instancePath === '/services/x/ports')).toBe(true)
    expect(validate({ services: { x: { healthcheck: { test: ['CMD'], interval: 30 } } } })).toBe(false)
    expect(validate({ services: { x: { image: 'a' } }, volume: {} })).toBe(false)
  })

  test('every service has a profile (so one profile starts none of the other\'s); "single" is tusgate alone', () => {
    expect(Object.entries(compose.services).filter(([, s]) => !s.profiles?.length)).toEqual([])
    const single = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('single'))
    expect(single.map(([name]) => name)).toEqual(['tusgate'])
    expect(service.profiles).toEqual(['single'])
  })

  test('every image is pinned to a version; tusgate is built from the Dockerfile, restarting unless stopped', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.image === undefined) expect({ name, build: s.build !== undefined }).toEqual({ name, build: true })
      else expect({ name, image: s.image }).toEqual({ name, image: expect.stringMatching(PINNED_IMAGE) })
    }
    expect('nginx:1-alpine').not.toMatch(PINNED_IMAGE)
    expect('node:24-slim').not.toMatch(PINNED_IMAGE)
    expect('redis:latest').not.toMatch(PINNED_IMAGE)
    expect('minio/minio').not.toMatch(PINNED_IMAGE)
    const build = typeof service.build === 'string' ? { context: service.build } : service.build
    expect(build).toBeDefined()
    expect(path.resolve(ROOT, build!.context ?? '.', build!.dockerfile ?? 'Dockerfile')).toBe(path.join(ROOT, 'Dockerfile'))
    expect(service.restart).toBe('unless-stopped')
  })

  test('every environment variable is a config key, and the values load', () => {
    for (const key of ['PORT', 'TUS_PATH', 'FILE_DIR', 'MAX_SIZE', 'UPLOAD_EXPIRES_AFTER', 'LOG_FORMAT', 'SHUTDOWN_TIMEOUT']) {
      expect(composeEnv).toHaveProperty(key)
    }
    expect(unknownConfigKeys(composeEnv)).toEqual([])
    const config = loadConfig(composeEnv)
    expect(config.FILE_DIR).toBe('/data')
    expect(config.LOG_FORMAT).toBe('json')
    expect(config.MAX_SIZE).toBeGreaterThan(0)
  })

  test('the config-key check catches a misspelt variable, and the loader a bad value', () => {
    expect(unknownConfigKeys({ ...composeEnv, FILE_DIRECTORY: '/data' })).toEqual(['FILE_DIRECTORY'])
    expect(() => loadConfig({ ...composeEnv, SHUTDOWN_TIMEOUT: 'soon' })).toThrow(/SHUTDOWN_TIMEOUT/)
  })

  test('publishes the container port the service listens on, on every interface', () => {
    const { PORT } = loadConfig(composeEnv)
    expect(service.ports).toEqual(['0.0.0.0:1080:1080'])
    expect(containerPorts(service)).toEqual([PORT])
  })

  test('mounts the named volume tusgate-data at FILE_DIR', () => {
    expect(compose.volumes).toHaveProperty(['tusgate-data'])
    expect(namedMounts(service)).toContainEqual(['tusgate-data', loadConfig(composeEnv).FILE_DIR])
  })

  test('the healthcheck probes /healthz with node (no curl or wget in slim images)', () => {
    expect(service.healthcheck?.disable).not.toBe(true)
    const argv = probeArgv(service.healthcheck?.test)
    expect(argv[0]).toBe('node')
    expect(argv.join(' ')).toContain('/healthz')
    expect(argv.join(' ')).not.toMatch(/\b(curl|wget)\b/)
    // Compose would interpolate a bare '$' in the probe.
    expect(argv.join(' ')).not.toMatch(/\$(?!\$)/)
  })

  test('stop_grace_period outlasts SHUTDOWN_TIMEOUT, with room to drain and close the store', () => {
    const { SHUTDOWN_TIMEOUT } = loadConfig(composeEnv)
    expect(service.stop_grace_period).toBeDefined()
    expect(composeDurationMs(service.stop_grace_period!)).toBeGreaterThanOrEqual(SHUTDOWN_TIMEOUT + 5000)
    expect(composeDurationMs('1m30s')).toBe(90_000)
    expect(() => composeDurationMs('45')).toThrow()
  })
})

describe('docker-compose.yml, profile "scale"', () => {
  const scaled = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('scale'))
  const names = scaled.map(([name]) => name)
  const replica = compose.services['tusgate-s3']
  const env = replica ? environmentOf(replica) : {}

  test('has two or more tusgate replicas, a balancer, an S3 server (SeaweedFS) and Redis; only the balancer publishes a port', () => {
    expect(names.sort()).toEqual(['lb', 'redis', 's3', 'tusgate-s3'])
    expect(replica.deploy?.replicas).toBeGreaterThanOrEqual(2)
    expect(compose.services.lb.ports).toEqual(['0.0.0.0:8080:80'])
    for (const name of ['redis', 's3', 'tusgate-s3']) expect({ name, ports: compose.services[name].ports }).toEqual({ name, ports: undefined })
  })

  test('the replicas run on S3 with Redis locks, and their settings load', () => {
    expect(unknownConfigKeys(env)).toEqual([])
    const config = loadConfig(env)
    expect(config).toMatchObject({ STORE: 's3', LOCKER: 'redis', TRUST_PROXY: 1, S3_FORCE_PATH_STYLE: true })
    expect(new URL(config.S3_ENDPOINT as string).hostname).toBe('s3')
    expect(new URL(config.REDIS_URL as string).hostname).toBe('redis')
    // SeaweedFS serves S3 on 8333, creates the bucket at start, and knows tusgate's key.
    const s3 = compose.services.s3
    expect(new URL(config.S3_ENDPOINT as string).port).toBe('8333')
    expect(s3.command).toContain(`-bucket=${env.S3_BUCKET}`)
    const s3Config = s3.configs?.find((c) => s3.command?.includes(`-s3.config=${c.target}`))
    expect(s3Config).toBeDefined()
    const { identities } = JSON.parse(compose.configs?.[s3Config!.source]?.content ?? '{}') as {
      identities: { credentials: { accessKey: string; secretKey: string }[]; actions: string[] }[]
    }
    expect(identities).toContainEqual(
      expect.objectContaining({
        credentials: [{ accessKey: env.S3_ACCESS_KEY_ID, secretKey: env.S3_SECRET_ACCESS_KEY }],
        actions: expect.arrayContaining(['Read', 'Write', 'List', 'Tagging']),
      }),
    )
  })

  test('behind nginx (which does not relay a 1xx before 1.29) the replicas send no interim 104', () => {
    expect(compose.services.lb.image).toMatch(/^nginx:1\.(2[0-8])\./)
    expect(loadConfig(env).INTERIM_RESPONSES).toBe(false)
    expect(loadConfig({}).INTERIM_RESPONSES).toBe(true)
  })

  test('Redis keeps an append-only file, fsynced on every write, on a named volume', () => {
    const command = compose.services.redis.command ?? []
    const option = (name: string) => command[command.indexOf(name) + 1]
    expect(command[0]).toBe('redis-server')
    expect(option('--appendonly')).toBe('yes')
    expect(option('--appendfsync')).toBe('always')
    expect(namedMounts(compose.services.redis)).toContainEqual(['redis-data', '/data'])
    expect(namedMounts(compose.services.s3)).toContainEqual(['s3-data', '/data'])
  })

  test('services wait for what they need to be healthy', () => {
    expect(replica.depends_on).toEqual({
      s3: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    })
    expect(compose.services.lb.depends_on).toEqual({ 'tusgate-s3': { condition: 'service_healthy' } })
    for (const name of ['tusgate-s3', 'lb', 's3', 'redis']) expect(compose.services[name].healthcheck?.test).toBeDefined()
  })

  test('nginx streams uploads: no request buffering, no body cap, forwarded headers, the replicas upstream', () => {
    const conf = nginxConfig(compose)
    expect(conf).toMatch(/proxy_request_buffering off;/)
    expect(conf).toMatch(/client_max_body_size 0;/)
    // The Host the client sent names the published port; $server_port would be the container's (80).
    expect(conf).toMatch(/proxy_set_header X-Forwarded-Host \$http_host;/)
    expect(conf).toMatch(/listen 80;/)
    expect(conf).toMatch(/proxy_set_header X-Forwarded-Proto \$scheme;/)
    expect(conf).toMatch(new RegExp(`server tusgate-s3:${env.PORT};`))
  })
})

describe('Dockerfile', () => {
  const { entry, outDir, include } = compiledEntry()
  const build = stages[0]

  test('is a multi-stage build on the slim image of the Node.js the tests run on (package-lock.json)', () => {
    const { version } = JSON.parse(read('package-lock.json')).packages['node_modules/node'] as { version: string }
    expect(version).toMatch(/^24\./)
    expect(stages.length).toBeGreaterThanOrEqual(2)
    expect(stages.map((s) => s.image)).toEqual(stages.map(() => `node:${version}-slim`))
  })

  test('the build stage installs everything, copies what tsconfig.build.json compiles, and builds', () => {
    const runs = all(build, 'RUN').map((i) => i.args)
    expect(runs).toContainEqual(expect.stringMatching(/^npm ci(\s|$)/))
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(false)
    expect(runs.some((r) => /npm run build\b/.test(r))).toBe(true)
    const copied = all(build, 'COPY').flatMap((i) => copyPaths(i.args).sources.map((s) => path.posix.normalize(s)))
    for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', ...include]) {
      expect(copied).toContain(needed)
    }
  })

  test('the runtime stage has production dependencies only and no tsx', () => {
    const runs = all(runtime, 'RUN').map((i) => i.args)
    expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).toBe(true)
    expect(runtime.instructions.some((i) => /\btsx\b/.test(i.args))).toBe(false)
    expect(envOf(runtime).NODE_ENV).toBe('production')
  })

  test('npm start builds with tsc -b, which skips the build when dist/ is up to date', () => {
    const { build } = JSON.parse(read('package.json')).scripts as Record<string, string>
    expect(build).toMatch(/^tsc (-b|--build) tsconfig\.build\.json$/)
  })

  test(`CMD runs the compiled entry (${entry}) that the build stage produced`, () => {
    const cmd = execForm(last(runtime, 'CMD')!.args)
    expect(cmd).toEqual(['node', ...NODE_FLAGS, entry])
    expect(entry).toBe('dist/server/main.js')
    // The runtime stage copies the build stage's outDir to <WORKDIR>/<outDir>, where CMD looks for it.
    const copies = all(runtime, 'COPY')
      .map((i) => copyPaths(i.args))
      .filter((c) => c.from === (build.name ?? '0'))
    const workdir = workdirOf(runtime)
    const landed = copies.some(
      (c) =>
        c.sources.some((s) => path.posix.resolve(workdirOf(build), s) === path.posix.resolve(workdirOf(build), outDir)) &&
        path.posix.resolve(workdir, c.dest) === path.posix.resolve(workdir, outDir),
    )
    expect(landed).toBe(true)
  })

  test('runs as a non-root user owning the FILE_DIR volume', () => {
    const user = last(runtime, 'USER')?.args
    expect(user).toBeDefined()
    expect(['root', '0']).not.toContain(user!.split(':')[0])
    const fileDir = envOf(runtime).FILE_DIR
    expect(fileDir).toBe(loadConfig(composeEnv).FILE_DIR)
    const volumeAt = runtime.instructions.findIndex((i) => i.keyword === 'VOLUME')
    expect(volumeAt).toBeGreaterThanOrEqual(0)
    const volume = runtime.instructions[volumeAt].args
    expect(volume.startsWith('[') ? execForm(volume) : volume.split(/\s+/)).toContain(fileDir)
    // Ownership must be set before VOLUME: later changes to a volume path are discarded.
    const chowned = runtime.instructions
      .slice(0, volumeAt)
      .some((i) => i.keyword === 'RUN' && new RegExp(`chown\\s+(-\\S+\\s+)*${user!.split(':')[0]}\\S*\\s+.*${fileDir}(\\s|$)`).test(i.args))
    expect(chowned).toBe(true)
  })

  test('exposes the port compose publishes', () => {
    const exposed = all(runtime, 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0])))
    expect(exposed).toContain(loadConfig(composeEnv).PORT)
    expect(exposed).toContain(loadConfig({ PORT: envOf(runtime).PORT }).PORT)
  })

  test('HEALTHCHECK probes /healthz with node, like compose', () => {
    const healthcheck = last(runtime, 'HEALTHCHECK')
    expect(healthcheck).toBeDefined()
    const argv = execForm(healthcheck!.args.replace(/^(--\S+\s+)*CMD\s+/, ''))
    expect(argv[0]).toBe('node')
    expect(argv.join(' ')).toContain('/healthz')
    expect(argv).toEqual(probeArgv(service.healthcheck?.test))
  })
})

describe('.dockerignore', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))

  test('keeps local state out of the build context but not what the build copies', () => {
    for (const entry of ['node_modules', 'dist', 'data', '.git', 'test-artifacts', 'coverage']) expect(ignored).toContain(entry)
    const copied = stages.flatMap((s) => all(s, 'COPY').filter((i) => !/--from=/.test(i.args))).flatMap((i) => copyPaths(i.args).sources)
    for (const source of copied) expect(ignored).not.toContain(path.posix.normalize(source))
  })
})

describe('the health probe, run against a live server', () => {
  let server: Awaited<ReturnType<typeof startServer>>
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(() => server?.stop())

  test('exits 0 while /healthz answers and 1 when nothing listens', async () => {
    const argv = probeArgv(service.healthcheck?.test)
    const port = Number(new URL(server.url).port)
    expect(await runProbe(argv, port)).toBe(0)
    expect(await runProbe(argv, await closedPort())).toBe(1)
  })
})
