import { existsSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { CONFIG_KEYS, loadConfig } from '../server/config.js'

// The docs are checked against the code where they can drift: the settings table against the config schema, links against the files.
const ROOT = path.resolve(import.meta.dirname, '..')
const read = (name: string) => readFileSync(path.join(ROOT, name), 'utf8')

interface Row {
  keys: string[]
  defaultCell: string
}

/** The rows of the settings table: `| \`NAME\`, \`OTHER\` | default | meaning |`. */
function settingsTable(markdown: string): Row[] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => {
      // No cell of this table holds a '|'.
      const [names, defaultCell] = line.split('|').slice(1, -1)
      return { keys: [...names.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]), defaultCell: defaultCell.trim() }
    })
}

describe('docs/configuration.md', () => {
  const rows = settingsTable(read('docs/configuration.md'))
  const documented = rows.flatMap((row) => row.keys)

  test('lists every setting of the config schema, once, and nothing else', () => {
    const known = new Set<string>(CONFIG_KEYS)
    expect({
      undocumented: CONFIG_KEYS.filter((key) => !documented.includes(key)),
      notInSchema: documented.filter((key) => !known.has(key)),
      twice: documented.filter((key, i) => documented.indexOf(key) !== i),
    }).toEqual({ undocumented: [], notInSchema: [], twice: [] })
  })

  test('each default is what an empty environment gives', () => {
    const empty = loadConfig({}) as unknown as Record<string, unknown>
    const wrong: string[] = []
    for (const { keys, defaultCell } of rows) {
      const literal = /^`([^`<>]*)`$/.exec(defaultCell)?.[1]
      for (const key of keys) {
        if (defaultCell === '') {
          // Blank: unset, or the empty string.
          if ((empty[key] ?? '') !== '') wrong.push(`${key}: blank in the table, ${JSON.stringify(empty[key])} unset`)
        } else if (literal !== undefined) {
          // The documented value, set explicitly, must give what leaving it unset gives.
          const given = (loadConfig({ [key]: literal }) as unknown as Record<string, unknown>)[key]
          if (JSON.stringify(given) !== JSON.stringify(empty[key])) {
            wrong.push(`${key}: \`${literal}\` gives ${JSON.stringify(given)}, unset gives ${JSON.stringify(empty[key])}`)
          }
        }
        // Anything else (`json` when ..., the system temp folder) describes a default that depends on other settings or the machine.
      }
    }
    expect(wrong).toEqual([])
  })
})

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

test('links between README.md and docs/ point at files and headings that exist', () => {
  const pages = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).map((name) => `docs/${name}`)].filter((name) => name.endsWith('.md'))
  const broken: string[] = []
  for (const page of pages) {
    const text = read(page).replace(/```[\s\S]*?```/g, '')
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue
      const [file, hash] = target.split('#')
      const resolved = file === '' ? page : path.normalize(path.join(path.dirname(page), file))
      if (!existsSync(path.join(ROOT, resolved))) {
        broken.push(`${page}: ${target} (no ${resolved})`)
        continue
      }
      if (hash === undefined || !resolved.endsWith('.md')) continue
      const headings = [...read(resolved).matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1]))
      if (!headings.includes(hash)) broken.push(`${page}: ${target} (no heading #${hash} in ${resolved})`)
    }
  }
  expect(broken).toEqual([])
})
