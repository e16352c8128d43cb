// A separate process that takes one Redis lock and holds it until killed: the "instance that dies"
// of the Redis locker tests. Run with `node --import tsx`; env: REDIS_URL, LOCK_TTL, REDIS_KEY_PREFIX,
// LOCK_ID. Prints `locked` once it holds the lock, and `release requested` each time it is asked to let go.
import { loadConfig, lockerSettings } from '../../server/config.js'
import { openLocker } from '../../stores/registry.js'

const config = loadConfig({ ...process.env, LOCKER: 'redis', LOCK_TIMEOUT: '5s' })
const { locker } = await openLocker(lockerSettings(config))
await locker.newLock(process.env.LOCK_ID ?? 'held').lock(new AbortController().signal, () => {
  process.stdout.write('release requested\n')
})
process.stdout.write('locked\n')
setInterval(() => {}, 60_000)
