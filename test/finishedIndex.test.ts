// The index of finished uploads on its own, on disk: compaction, a line cut by a crash, two writers.
import { appendFileSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { Upload } from '@tus/utils'
import { FinishedIndex } from '../server/listing/finishedIndex.js'
import { tempDir } from './helpers/servers.js'

const temp = tempDir('tusgate-index-')
afterAll(() => temp.remove())

let folders = 0
const newFolder = () => path.join(temp.dir, String(folders++))

const uploadOf = (i: number, owner?: string) =>
  new Upload({
    id: i.toString(16).padStart(32, '0'),
    size: i,
    offset: i,
    metadata: { filename: `f${i}`, ...(owner ? { 'tusgate-owner': owner } : {}) },
    creation_date: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
  })

const ids = async (index: FinishedIndex, owner?: string) => (await index.page(100, undefined, owner)).entries.map((e) => e.id)
const logLines = (folder: string) => readFileSync(path.join(folder, 'finished.log'), 'utf8').trim().split('\n')

test('built from the store once, then from the log; one process compacts the log it writes', async () => {
  const directory = newFolder()
  let listed = 0
  const listStore = async () => {
    listed++
    return [uploadOf(1), uploadOf(2)]
  }
  const index = new FinishedIndex({ directory, listStore, compact: true })
  expect(await ids(index)).toEqual([uploadOf(2).id, uploadOf(1).id])
  // 1,200 uploads added, then all but the first 10 removed: 2,390 more lines than the 12 entries left.
  for (let i = 3; i < 1203; i++) await index.added(uploadOf(i))
  for (let i = 13; i < 1203; i++) await index.removed(uploadOf(i).id)
  expect(await ids(index)).toEqual(Array.from({ length: 12 }, (_, i) => uploadOf(12 - i).id))
  // Rewritten with its header and one line an entry.
  expect(logLines(directory)).toHaveLength(13)
  const again = new FinishedIndex({ directory, listStore, compact: true })
  expect(await ids(again)).toEqual(await ids(index))
  expect(listed).toBe(1)
})

test('a line cut short by a crash is skipped, and the lines after it count', async () => {
  const directory = newFolder()
  const first = new FinishedIndex({ directory, listStore: async () => [uploadOf(1)], compact: false })
  expect(await ids(first)).toEqual([uploadOf(1).id])
  await first.added(uploadOf(2))
  appendFileSync(path.join(directory, 'finished.log'), '{"add":{"id":"00')
  const second = new FinishedIndex({ directory, listStore: async () => [], compact: false })
  await second.added(uploadOf(3))
  expect(await ids(second)).toEqual([uploadOf(3).id, uploadOf(2).id, uploadOf(1).id])
})

test('two processes sharing the log (workers) each see what the other wrote; a page is one principal own', async () => {
  const directory = newFolder()
  const a = new FinishedIndex({ directory, listStore: async () => [], compact: false })
  const b = new FinishedIndex({ directory, listStore: async () => [], compact: false })
  expect(await ids(a)).toEqual([])
  expect(await ids(b)).toEqual([])
  await a.added(uploadOf(1, 'alice'))
  await b.added(uploadOf(2, 'bob'))
  await b.added(uploadOf(3, 'alice'))
  await a.removed(uploadOf(3).id)
  for (const index of [a, b]) {
    expect(await ids(index)).toEqual([uploadOf(2).id, uploadOf(1).id])
    expect(await ids(index, 'alice')).toEqual([uploadOf(1).id])
    expect(await ids(index, 'carol')).toEqual([])
  }
})
