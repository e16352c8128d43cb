import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfileSummary {
  file: string
  what?: string
  seconds?: number
  /** Whether only the samples inside the given window (the PATCH) were counted. */
  windowed: boolean
  totalMs: number
  idleMs: number
  gcMs: number
  programMs: number
  topFunctions: { name: string; where: string; selfMs: number; pct: number }[]
  byModule: { module: string; selfMs: number; pct: number }[]
  byCategory: { category: string; selfMs: number; pct: number }[]
}

const FS_NATIVE = new Set([
  'writeBuffer',
  'writeBuffers',
  'writeString',
  'openFileHandle',
  'close',
  'mkdir',
  'stat',
  'fstat',
  'lstat',
  'read',
  'open',
  'fsync',
  'fdatasync',
  'rename',
  'unlink',
  'FSReqCallback',
  'readFileUtf8',
  'writeFileUtf8',
  'internalModuleStat',
])
const TCP_NATIVE = new Set([
  'writeLatin1String',
  'writeUtf8String',
  'writeAsciiString',
  'writev',
  'execute',
  'shutdown',
  'readStart',
  'readStop',
  'setNoDelay',
  'setKeepAlive',
  'TCPWrap',
  'WriteWrap',
])
const GROUPS: [RegExp, string][] = [
  [/^node:(internal\/)?fs/, 'file I/O (fs)'],
  [/^node:(_http_|internal\/http|net$|internal\/stream_base_commons|internal\/net)/, 'HTTP and TCP (node:http, net)'],
  [/^(srvx|node:internal\/deps\/undici|node:internal\/webstreams)/, 'web Request/Response bridge (srvx, undici, web streams)'],
  [
    /^(express|router|path-to-regexp|parseurl|finalhandler|send|serve-static|on-finished|type-is|mime-types|mime-db|content-type|encodeurl|escape-html|proxy-addr|qs|accepts|negotiator|vary|fresh|etag|cookie|depd|statuses|http-errors|range-parser|content-disposition)$/,
    'Express and its helpers',
  ],
  [/^@tus\//, '@tus/server, @tus/utils, @tus/file-store'],
  [
    /^(winston|logform|winston-transport|safe-stable-stringify|@colors\/colors|colors|fecha|triple-beam|readable-stream|@dabh\/diagnostics|one-time|kuler|fn\.name|text-hex|simple-swizzle|color|color-string|color-convert|stack-trace|is-stream|async)$/,
    'logging (winston)',
  ],
  [/^(prom-client|tdigest|bintrees)$/, 'metrics (prom-client)'],
  [/^(server|stores)\//, "tusgate's own code (server/, stores/)"],
  [
    /^node:internal\/(streams|process\/task_queues|async_hooks|timers|event_target|abort_controller|per_context|util|validators|errors|linkedlist|priority_queue)|^node:(events|async_hooks|stream|timers|buffer|internal\/buffer)$/,
    'Node streams, events, async context, timers, abort signals',
  ],
]

function categoryOf(name: string, module: string): string {
  if (module === '(idle)') return 'idle'
  if (module === '(garbage collector)') return 'garbage collector'
  if (module === '(program)') return '(program): V8/libuv outside JS'
  if (module === '(native/V8)') return FS_NATIVE.has(name) ? 'file I/O (fs)' : TCP_NATIVE.has(name) ? 'HTTP and TCP (node:http, net)' : 'native, other'
  for (const [pattern, category] of GROUPS) if (pattern.test(module)) return category
  if (module.startsWith('node:')) return 'Node internals, other'
  return `other JS (${module})`
}

/** Where a script lives, shortened: `pkg` for node_modules, `node:<module>` for Node's own, a project path else. */
function moduleOf(url: string, root: string): string {
  if (!url) return '(native/V8)'
  if (url.startsWith('node:')) return url
  const path = url.replace(/^file:\/\//, '')
  const nm = path.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = path.slice(nm + '/node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  return path.startsWith(root) ? path.slice(root.length) : path
}

/**
 * Self time per function and per module of a V8 .cpuprofile (as `node --cpu-prof` writes). With a
 * window (CLOCK_MONOTONIC microseconds, as process.hrtime gives in any process on Linux, and as V8
 * stamps its samples), only the samples inside it count; if it does not overlap the profile, all do.
 */
export function summarizeCpuProfile(file: string, root: string, top = 25, window?: { startUs: number; endUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const windowed = window !== undefined && window.startUs < profile.endTime && window.endUs > profile.startTime
  const selfUs = new Map<number, number>()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (windowed && (at < window.startUs || at > window.endUs)) continue
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta)
  }
  const byFunction = new Map<string, { name: string; where: string; us: number }>()
  const byModule = new Map<string, number>()
  const byCategory = new Map<string, number>()
  let totalUs = 0
  const special: Record<string, number> = {}
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    if (!us) continue
    totalUs += us
    const { functionName, url, lineNumber } = node.callFrame
    const name = functionName || '(anonymous)'
    if (name.startsWith('(') && !url) special[name] = (special[name] ?? 0) + us
    const mod = name.startsWith('(') && !url ? name : moduleOf(url, root)
    const where = url ? `${moduleOf(url, root)}:${lineNumber + 1}` : ''
    const key = `${name}|${where}`
    const entry = byFunction.get(key) ?? { name, where, us: 0 }
    entry.us += us
    byFunction.set(key, entry)
    byModule.set(mod, (byModule.get(mod) ?? 0) + us)
    const category = categoryOf(name, mod)
    byCategory.set(category, (byCategory.get(category) ?? 0) + us)
  }
  const ms = (us: number) => Math.round(us / 100) / 10
  const pct = (us: number) => Math.round((1000 * us) / totalUs) / 10
  return {
    file,
    windowed,
    totalMs: ms(totalUs),
    idleMs: ms(special['(idle)'] ?? 0),
    gcMs: ms(special['(garbage collector)'] ?? 0),
    programMs: ms(special['(program)'] ?? 0),
    topFunctions: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: ms(f.us), pct: pct(f.us) })),
    byModule: [...byModule.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([module, us]) => ({ module, selfMs: ms(us), pct: pct(us) })),
    byCategory: [...byCategory.entries()].sort((a, b) => b[1] - a[1]).map(([category, us]) => ({ category, selfMs: ms(us), pct: pct(us) })),
  }
}
