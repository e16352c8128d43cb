import { appendFile, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Upload } from '@tus/utils'
import type { StoreBackend } from '../../stores/types.js'
import type { Config } from '../config.js'
import { ownerOf } from '../core/records.js'

/** What the listing shows of a finished upload, kept so that listing reads no upload info. */
export interface IndexEntry {
  id: string
  /** The principal that created it (AUTH_MODE=jwt), or null. */
  owner: string | null
  size: number
  filename: string | null
  filetype: string | null
  /** ISO 8601, as the upload's info has it; the order of the list. */
  createdAt: string | null
}

export interface IndexPage {
  entries: IndexEntry[]
  /** Where the next page starts (`before`), or null on the last page. */
  next: string | null
}

/** One line of the log: a finished upload, or one removed. */
type Operation = { add: IndexEntry } | { del: string }

/** The first line of a complete log; a log without it (the first start after an upgrade, a crash while building) is built again. */
const HEADER = JSON.stringify({ finishedIndex: 1 })
/** The log is rewritten once it holds this many lines more than twice the entries it describes. */
const COMPACT_SLACK = 1024

export const entryOf = (upload: Upload): IndexEntry => ({
  id: upload.id,
  owner: ownerOf(upload) ?? null,
  size: upload.size as number,
  filename: upload.metadata?.filename ?? null,
  filetype: upload.metadata?.filetype ?? null,
  createdAt: upload.creation_date ?? null,
})

/** Newest creation date first; ids break ties, as the stores' own listing orders. */
function compare(a: IndexEntry, b: IndexEntry): number {
  const [x, y] = [a.createdAt ?? '', b.createdAt ?? '']
  if (x !== y) return x < y ? 1 : -1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

const cursorOf = (entry: IndexEntry) => Buffer.from(JSON.stringify([entry.createdAt ?? '', entry.id])).toString('base64url')

/** The position a cursor names, or undefined when it is not one of ours. */
function parseCursor(cursor: string): IndexEntry | undefined {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[]
    if (typeof createdAt !== 'string' || typeof id !== 'string') return undefined
    return { id, createdAt, owner: null, size: 0, filename: null, filetype: null }
  } catch {
    return undefined
  }
}

export class CursorError extends Error {}

export interface FinishedIndexDeps {
  /** The folder of the log (`finished.log`). */
  directory: string
  /** Every finished upload, read from the store: what the index is built from when its log is missing. */
  listStore(): Promise<Upload[]>
  /** The log may be rewritten without its removed entries: only where one process writes it (WORKERS=1). */
  compact: boolean
}

/**
 * The finished uploads, newest first: an append-only log on disk that the core adds to when an upload
 * finishes and when one is removed, and its replay in memory, brought up to date from the log's new
 * lines before each page (so workers sharing the log see each other's), so a listing reads no upload
 * info. A missing or incomplete log is built from the store once, on the first listing; what is added
 * or removed meanwhile is written to the log and replayed on top.
 */
export class FinishedIndex {
  private readonly file: string
  /** Newest first. */
  private entries: IndexEntry[] = []
  private readonly byId = new Map<string, IndexEntry>()
  /** The log's lines replayed, and how far into which file. */
  private lines = 0
  private position = 0
  private inode = -1
  /** Log reads and writes, one after another. */
  private queue: Promise<unknown> = Promise.resolve()
  private loading?: Promise<void>
  private folder?: Promise<unknown>
  private ended?: Promise<void>

  constructor(private readonly deps: FinishedIndexDeps) {
    this.file = path.join(deps.directory, 'finished.log')
  }

  /** Records a finished upload. */
  added(upload: Upload): Promise<void> {
    return this.append({ add: entryOf(upload) })
  }

  /** Records that an upload is gone (a no-op for one never listed). */
  removed(id: string): Promise<void> {
    return this.append({ del: id })
  }

  /** At most `limit` entries older than the cursor `before` (the newest without it), those of `owner` only when given. */
  async page(limit: number, before?: string, owner?: string): Promise<IndexPage> {
    const after = before === undefined ? undefined : parseCursor(before)
    if (before !== undefined && !after) throw new CursorError('invalid cursor')
    await this.load()
    await this.serially(() => this.catchUp())
    const found: IndexEntry[] = []
    for (let at = after ? this.positionOf(after) : 0; at < this.entries.length && found.length <= limit; at++) {
      const entry = this.entries[at]
      if (after && compare(entry, after) <= 0) continue
      if (owner === undefined || entry.owner === owner) found.push(entry)
    }
    const entries = found.slice(0, limit)
    return { entries, next: found.length > limit ? cursorOf(entries[entries.length - 1]) : null }
  }

  /** Reads the log, or builds it from the store (once; concurrent callers share it). */
  load(): Promise<void> {
    this.loading ??= this.read().catch((error) => {
      this.loading = undefined
      throw error
    })
    return this.loading
  }

  private async read(): Promise<void> {
    const complete = await this.serially(async () => {
      await this.catchUp()
      return this.lines > 0
    })
    if (!complete) await this.build()
  }

  /** The store's finished uploads, then what the log recorded while they were read; written as a new log. */
  private async build(): Promise<void> {
    const uploads = await this.deps.listStore()
    await this.serially(async () => {
      const logged = await readFile(this.file, 'utf8').catch(() => '')
      this.reset()
      for (const upload of uploads) this.apply({ add: entryOf(upload) })
      for (const line of logged.split('\n')) this.applyLine(line)
      await this.rewrite()
    })
  }

  /** Replays the lines added to the log since the last time; the whole log when it was replaced. */
  private async catchUp(): Promise<void> {
    const file = await open(this.file, 'r').catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : Promise.reject(error)))
    if (!file) return this.reset()
    try {
      const { ino, size } = await file.stat()
      if (ino !== this.inode || size < this.position) this.reset()
      this.inode = ino
      if (size === this.position) return
      const { buffer, bytesRead } = await file.read({ buffer: Buffer.alloc(size - this.position), position: this.position })
      const text = buffer.subarray(0, bytesRead).toString('utf8')
      // A line being appended by another process is read once it is whole.
      const whole = text.slice(0, text.lastIndexOf('\n') + 1)
      this.position += Buffer.byteLength(whole)
      const lines = whole.split('\n')
      // A log is complete from its header on; before it (no header yet) nothing counts.
      if (this.lines === 0 && lines[0] !== HEADER) return this.reset()
      for (const line of lines) this.applyLine(line)
    } finally {
      await file.close()
    }
    if (this.deps.compact && this.lines > 2 * this.entries.length + COMPACT_SLACK) await this.rewrite()
  }

  private applyLine(line: string): void {
    if (line === '') return
    this.lines++
    if (line === HEADER) return
    try {
      this.apply(JSON.parse(line) as Operation)
    } catch {
      // A line cut short by a crash mid-append; the ones after it still count.
    }
  }

  private apply(operation: Operation): void {
    const id = 'add' in operation ? operation.add.id : operation.del
    const old = this.byId.get(id)
    if (old) {
      this.entries.splice(this.positionOf(old), 1)
      this.byId.delete(id)
    }
    if ('add' in operation) {
      this.entries.splice(this.positionOf(operation.add), 0, operation.add)
      this.byId.set(id, operation.add)
    }
  }

  /** The first position whose entry is not newer than `entry` (binary search). */
  private positionOf(entry: IndexEntry): number {
    let [low, high] = [0, this.entries.length]
    while (low < high) {
      const middle = (low + high) >>> 1
      if (compare(this.entries[middle], entry) < 0) low = middle + 1
      else high = middle
    }
    return low
  }

  private append(operation: Operation): Promise<void> {
    this.folder ??= mkdir(this.deps.directory, { recursive: true })
    return this.serially(async () => {
      await this.folder
      this.ended ??= this.endCutLine()
      await this.ended
      await appendFile(this.file, `${JSON.stringify(operation)}\n`)
    })
  }

  /** Ends a line a crash cut short (once, before this process first appends), so the next line is whole. */
  private async endCutLine(): Promise<void> {
    const file = await open(this.file, 'r').catch(() => undefined)
    if (!file) return
    try {
      const { size } = await file.stat()
      if (size === 0) return
      const { buffer } = await file.read({ buffer: Buffer.alloc(1), position: size - 1 })
      if (buffer[0] !== 0x0a) await appendFile(this.file, '\n')
    } finally {
      await file.close()
    }
  }

  /** The entries as a fresh log, replacing the old one at once; replayed as read. */
  private async rewrite(): Promise<void> {
    await mkdir(this.deps.directory, { recursive: true })
    const temporary = `${this.file}.tmp`
    const text = `${[HEADER, ...this.entries.map((entry) => JSON.stringify({ add: entry }))].join('\n')}\n`
    await writeFile(temporary, text)
    await rename(temporary, this.file)
    this.lines = this.entries.length + 1
    this.position = Buffer.byteLength(text)
    this.inode = (await stat(this.file)).ino
  }

  private reset(): void {
    this.entries = []
    this.byId.clear()
    this.lines = 0
    this.position = 0
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work)
    this.queue = run.catch(() => undefined)
    return run
  }
}

/** Where the index of finished uploads is kept. */
export function indexDirectory(config: Pick<Config, 'UPLOAD_LIST_INDEX_DIR' | 'FILE_DIR'>): string {
  return config.UPLOAD_LIST_INDEX_DIR || path.join(config.FILE_DIR, '.index')
}

/** The index UPLOAD_LIST reads, for a store that can list its finished uploads (to build the index from). */
export function finishedIndexOf(
  config: Pick<Config, 'UPLOAD_LIST_INDEX_DIR' | 'FILE_DIR' | 'WORKERS'>,
  store: Pick<StoreBackend, 'listFinished'>,
): FinishedIndex | undefined {
  const list = store.listFinished
  if (!list) return undefined
  return new FinishedIndex({
    directory: indexDirectory(config),
    listStore: () => list.call(store, Number.POSITIVE_INFINITY),
    compact: config.WORKERS === 1,
  })
}
