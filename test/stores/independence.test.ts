// The storage layer's dependency rules, read from the sources: stores/ imports nothing of server/, and
// no import cycle passes through stores/ or server/storage/ (type-only imports count).
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { ROOT } from '../helpers/servers.js'

function sources(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder)).flatMap((name) => {
    const relative = path.join(folder, name)
    if (statSync(path.join(ROOT, relative)).isDirectory()) return sources(relative)
    return relative.endsWith('.ts') ? [relative] : []
  })
}

// Static imports and re-exports (type-only too) and dynamic import() of relative modules.
const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g

function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8')
  return [...text.matchAll(IMPORT)].map((match) => path.join(path.dirname(file), match[1]).replace(/\.js$/, '.ts'))
}

const files = [...sources('stores'), ...sources('server')]
const graph = new Map(files.map((file) => [file, importsOf(file)]))

/** Strongly connected components of more than one module (or a module importing itself): the cycles. */
function cycles(): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const visit = (file: string) => {
    index.set(file, counter)
    low.set(file, counter++)
    stack.push(file)
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue
      if (!index.has(next)) {
        visit(next)
        low.set(file, Math.min(low.get(file) as number, low.get(next) as number))
      } else if (stack.includes(next)) low.set(file, Math.min(low.get(file) as number, index.get(next) as number))
    }
    if (low.get(file) !== index.get(file)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop() as string
      component.push(member)
    } while (member !== file)
    if (component.length > 1 || (graph.get(file) ?? []).includes(file)) found.push(component.sort())
  }
  for (const file of files) if (!index.has(file)) visit(file)
  return found
}

test('the sources are found, and their imports are read', () => {
  expect(files).toContain('stores/registry.ts')
  expect(graph.get('server/storage/compose.ts')).toContain('stores/registry.ts')
})

test('nothing under stores/ imports from server/', () => {
  const offending = files
    .filter((file) => file.startsWith('stores/'))
    .flatMap((file) => (graph.get(file) ?? []).filter((target) => !target.startsWith('stores/')).map((target) => `${file} -> ${target}`))
  expect(offending).toEqual([])
})

test('no import cycle passes through stores/ or server/storage/', () => {
  const ours = cycles().filter((component) => component.some((file) => file.startsWith('stores/') || file.startsWith('server/storage/')))
  expect(ours).toEqual([])
})
