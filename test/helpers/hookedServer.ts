import { type HookReceiver, startHookReceiver } from './hookReceiver.js'
import { type InProcessServer, startServer } from './servers.js'

export interface HookedServer {
  /** This test's receiver (a fresh one for each test). */
  receiver: HookReceiver
  /** The server started by `start` in this test, if any. */
  readonly server: InProcessServer | undefined
  /** Starts tusgate sending its hooks to this test's receiver, with `defaults` and then `env`. */
  start(env?: Record<string, string>): Promise<InProcessServer>
}

/** A hook receiver for each test of the file (or describe block), and the server a test starts with it; both stopped after each test. */
export function useHookedServer(defaults: Record<string, string>): HookedServer {
  let current: HookReceiver | undefined
  let server: InProcessServer | undefined
  beforeEach(async () => {
    current = await startHookReceiver()
  })
  afterEach(async () => {
    await server?.stop()
    server = undefined
    await current?.stop()
  })
  const running = (): HookReceiver => {
    if (!current) throw new Error('useHookedServer: the receiver starts in beforeEach; use it inside a test')
    return current
  }
  const receiver: HookReceiver = {
    get url() {
      return running().url
    },
    get port() {
      return running().port
    },
    get hooks() {
      return running().hooks
    },
    of: (type, id) => running().of(type, id),
    answer: (fn) => running().answer(fn),
    waitFor: (check, ms, what) => running().waitFor(check, ms, what),
    stop: () => running().stop(),
  }
  return {
    receiver,
    get server() {
      return server
    },
    async start(env = {}) {
      server = await startServer({ HOOKS_URL: receiver.url, ...defaults, ...env })
      return server
    },
  }
}
