// A separate process using the file locker, for the file locker tests. Run with `node --import tsx`;
// env: LOCK_DIR, LOCK_TTL (ms), LOCK_ID, MODE.
// MODE=count: takes the lock ROUNDS times and, holding it, reads COUNTER_FILE, waits a moment and writes
// the number plus one (a lost update shows if two ever hold it at once); prints `done`.
// MODE=hold: takes the lock and prints `locked`; asked to let go, prints `release requested` and, with
// LET_GO=1, unlocks and prints `unlocked`; otherwise holds until killed.
import { readFile, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileLocker } from '../../stores/lockers/file.js'

const env = process.env
const { locker } = await fileLocker.create({ dir: env.LOCK_DIR as string, ttlMs: Number(env.LOCK_TTL), timeoutMs: 60_000 })
const id = env.LOCK_ID ?? 'held'
const never = new AbortController().signal

if (env.MODE === 'count') {
  const file = env.COUNTER_FILE as string
  for (let round = 0; round < Number(env.ROUNDS); round++) {
    const lock = locker.newLock(id)
    await lock.lock(never, () => {})
    const seen = Number(await readFile(file, 'utf8'))
    await sleep(2)
    await writeFile(file, String(seen + 1))
    await lock.unlock()
  }
  process.stdout.write('done\n')
} else {
  const lock = locker.newLock(id)
  await lock.lock(never, () => {
    process.stdout.write('release requested\n')
    if (env.LET_GO === '1') void lock.unlock().then(() => process.stdout.write('unlocked\n'))
  })
  process.stdout.write('locked\n')
  setInterval(() => {}, 60_000)
}
