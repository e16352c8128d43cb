import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

// The layering rules live in .dependency-cruiser.cjs; this runs them over the tree and over a fixture that breaks each once.
const ROOT = path.resolve(import.meta.dirname, '..')
const DEPCRUISE = path.join(ROOT, 'node_modules/.bin/depcruise')
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs')

interface Violation {
  type: string
  from: string
  to: string
  rule: { name: string }
  cycle?: { name: string }[]
}

function cruise(cwd: string, dirs: string[]): Violation[] {
  const run = spawnSync(DEPCRUISE, ['--config', CONFIG, '--output-type', 'json', ...dirs], { cwd, encoding: 'utf8', maxBuffer: 256 << 20 })
  if (run.error) throw run.error
  if (!run.stdout.startsWith('{')) throw new Error(`depcruise exited ${run.status}: ${run.stderr}`)
  return JSON.parse(run.stdout).summary.violations
}

/** One line per violation; a cycle once, however many of its edges depcruise reports it from. */
function readable(violations: Violation[]): string[] {
  const lines = new Set<string>()
  for (const v of violations) {
    if (v.cycle) {
      const ring = [v.from, ...v.cycle.map((c) => c.name)].slice(0, -1)
      const first = ring.indexOf([...ring].sort()[0])
      const rotated = [...ring.slice(first), ...ring.slice(0, first)]
      lines.add(`${v.rule.name}: ${[...rotated, rotated[0]].join(' → ')}`)
    } else lines.add(`${v.rule.name}: ${v.from} → ${v.to}`)
  }
  return [...lines].sort()
}

test('server/, stores/ and bench/ keep the layering rules and have no import cycles', () => {
  expect(readable(cruise(ROOT, ['server', 'stores', 'bench']))).toEqual([])
})

test('each rule fires on a fixture that breaks it, and allowed imports pass', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tusgate-architecture-'))
  try {
    const files: Record<string, string> = {
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
      'server/s.ts': 'export const s = 1\n',
      'stores/a.ts': "import { s } from '../server/s.js'\nexport const a = s\n",
      'stores/fine.ts': "import { readFileSync } from 'node:fs'\nexport const fine = readFileSync\n",
      'server/tus/t.ts': "import { c } from '../core/c.js'\nimport { i } from '../ietf/i.js'\nexport const t = c + i\n",
      'server/tus/types.ts': 'export type T = number\n',
      'server/ietf/i.ts': "import type { T } from '../tus/types.js'\nexport const i: T = 1\n",
      'server/core/c.ts': "import type { Request } from 'express'\nimport { s } from '../s.js'\nexport const c = s\nexport type R = Request\n",
      'server/core/wire.ts': "import { i } from '../ietf/i.js'\nexport const w = i\n",
      'bench/b.ts': "import { h } from '../test/h.js'\nimport { s } from '../server/s.js'\nexport const b = h + s\n",
      'test/h.ts': 'export const h = 1\n',
      // A cycle through type-only imports: tsc erases them, the rule must not.
      'server/p.ts': "import type { Q } from './q.js'\nexport type P = { q?: Q }\n",
      'server/q.ts': "import type { P } from './p.js'\nexport type Q = { p?: P }\n",
    }
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      writeFileSync(path.join(dir, name), text)
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))

    const found = readable(cruise(dir, ['server', 'stores', 'bench']))
    expect(found.map((line) => line.replace(/ [^ ]*node_modules\/.*$/, ' express'))).toEqual([
      'bench-not-test: bench/b.ts → test/h.ts',
      'core-protocol-neutral: server/core/c.ts → express',
      'core-protocol-neutral: server/core/wire.ts → server/ietf/i.ts',
      'ietf-not-tus: server/ietf/i.ts → server/tus/types.ts',
      'no-cycles: server/p.ts → server/q.ts → server/p.ts',
      'stores-not-server: stores/a.ts → server/s.ts',
      'tus-not-ietf: server/tus/t.ts → server/ietf/i.ts',
    ])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
