/**
 * At most `slots` creations (POST) in progress at once; the others wait their turn, first come first
 * served, each starting on an event-loop turn of its own. A creation is a burst of work on the main
 * thread (routing, stamping, hooks' payloads, logging) and of file-system calls: a thousand clients
 * creating at once otherwise run their creations side by side, their completions land in the same loop
 * turns, and every other request (a HEAD, a new connection) waits hundreds of milliseconds behind them.
 * 0: no limit.
 */
export class CreationSlots {
  private active = 0
  private readonly waiting: (() => void)[] = []

  constructor(private readonly slots: number) {}

  /** Creations waiting for a slot. */
  get queued(): number {
    return this.waiting.length
  }

  async run<T>(creation: () => Promise<T>): Promise<T> {
    // A waiter is handed its slot by the creation that ends: a newcomer meanwhile finds none free.
    if (this.slots > 0 && this.active >= this.slots) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await creation()
    } finally {
      const next = this.waiting.shift()
      if (next) setImmediate(next)
      else this.active--
    }
  }
}
