import { randomUUID } from 'node:crypto'
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import path from 'node:path'
import { writeFileAtomic } from '../../../stores/file/writeFileAtomic.js'
import type { DurableHookType, Outbox, OutboxEntry } from './types.js'

type DeadLetter = OutboxEntry & { lastError: string }
/** An entry as kept on disk: with the error of its last failed attempt, if any. */
type StoredEntry = OutboxEntry & { lastError?: string }

const ENTRY_FILE = /^[0-9a-f-]{36}\.json$/
const TEMP_FILE = /^[0-9a-f-]{36}\.json\.tmp$/
// Hook payloads carry the client's request headers (Authorization, Cookie): readable by tusgate's user only.
const PRIVATE = { mode: 0o600, syncDirectory: true }

async function readEntries<T extends OutboxEntry>(directory: string): Promise<T[]> {
  let names: string[]
  try {
    names = await readdir(directory)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const entries: T[] = []
  for (const name of names) {
    if (ENTRY_FILE.test(name)) entries.push(JSON.parse(await readFile(path.join(directory, name), 'utf8')) as T)
    // A leftover `.tmp` is a write that never completed (nothing was promised, or the entry it was replacing
    // is still there): read before this instance writes anything, so it is nobody's file any more.
    else if (TEMP_FILE.test(name)) await unlink(path.join(directory, name)).catch(() => undefined)
  }
  return entries
}

/**
 * The outbox of one tusgate instance, on its own disk: one JSON file per entry under `pending/`,
 * replaced atomically (temp file, fsync, rename, fsync of the folder), and given-up entries under `dead/`.
 * The folder is read once, on first use; from then on this instance is its only writer, so the entries
 * and their leases are kept in memory as well.
 */
export class FileOutbox implements Outbox {
  private readonly pendingDir: string
  private readonly deadDir: string
  private entries?: Promise<Map<string, StoredEntry>>
  private readonly leases = new Map<string, number>()

  constructor(directory: string) {
    this.pendingDir = path.join(directory, 'pending')
    this.deadDir = path.join(directory, 'dead')
  }

  private load(): Promise<Map<string, StoredEntry>> {
    this.entries ??= readEntries<StoredEntry>(this.pendingDir).then((list) => new Map(list.map((entry) => [entry.id, entry])))
    return this.entries
  }

  private fileOf(directory: string, id: string): string {
    return path.join(directory, `${id}.json`)
  }

  private async save(directory: string, entry: OutboxEntry): Promise<void> {
    // Created on first use only: an instance that never queued a hook leaves no folder behind.
    await mkdir(directory, { recursive: true, mode: 0o700 })
    await writeFileAtomic(this.fileOf(directory, entry.id), JSON.stringify(entry), PRIVATE)
  }

  async add(type: DurableHookType, payload: unknown): Promise<OutboxEntry> {
    const entries = await this.load()
    const now = Date.now()
    const entry: OutboxEntry = { id: randomUUID(), type, payload, attempts: 0, nextAttemptAt: now, createdAt: now }
    await this.save(this.pendingDir, entry)
    entries.set(entry.id, entry)
    return entry
  }

  async claimDue(limit: number, leaseMs: number): Promise<OutboxEntry[]> {
    const entries = await this.load()
    const now = Date.now()
    const due = [...entries.values()]
      .filter((entry) => entry.nextAttemptAt <= now && (this.leases.get(entry.id) ?? 0) <= now)
      .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt)
      .slice(0, limit)
    for (const entry of due) this.leases.set(entry.id, now + leaseMs)
    // The last error stays on disk for an operator; the dispatcher gets the entry as the interface has it.
    return due.map(({ lastError: _, ...entry }) => entry)
  }

  async complete(id: string): Promise<void> {
    const entries = await this.load()
    await unlink(this.fileOf(this.pendingDir, id)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
    entries.delete(id)
    this.leases.delete(id)
  }

  async retry(id: string, attempts: number, nextAttemptAt: number, lastError: string): Promise<void> {
    const entries = await this.load()
    const entry = entries.get(id)
    if (!entry) return
    const updated = { ...entry, attempts, nextAttemptAt, lastError }
    await this.save(this.pendingDir, updated)
    entries.set(id, updated)
    this.leases.delete(id)
  }

  async deadLetter(id: string, lastError: string): Promise<void> {
    const entry = (await this.load()).get(id)
    if (!entry) return
    // Written to dead/ before it leaves pending/: a crash in between delivers it again, never loses it.
    await this.save(this.deadDir, { ...entry, lastError } as DeadLetter)
    await this.complete(id)
  }

  async deadLetters(): Promise<DeadLetter[]> {
    return (await readEntries<DeadLetter>(this.deadDir)).sort((a, b) => a.createdAt - b.createdAt)
  }

  async pending(): Promise<number> {
    return (await this.load()).size
  }

  async close(): Promise<void> {}
}
