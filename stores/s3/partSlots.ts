/** A part's hold on one of the slots; released once its upload ended, however it ended. */
export interface PartPermit {
  release(): Promise<void>
}

/**
 * At most `limit` parts spooled or in flight at once across the process's uploads (S3_CONCURRENT_PARTS),
 * handed out first come first served, with how many hold a slot and how many wait for one, for /metrics:
 * parts waiting while radosgw or S3 keeps up mean the limit, not the back end, holds uploads back.
 */
export class PartSlots {
  private held = 0
  private readonly queue: Array<(permit: PartPermit) => void> = []

  constructor(readonly limit: number) {}

  get inFlight(): number {
    return this.held
  }

  get waiting(): number {
    return this.queue.length
  }

  acquire(): Promise<PartPermit> {
    if (this.held < this.limit) {
      this.held++
      return Promise.resolve(this.permit())
    }
    return new Promise((resolve) => this.queue.push(resolve))
  }

  private permit(): PartPermit {
    let released = false
    return {
      release: async () => {
        if (released) return
        released = true
        // The slot passes straight to the oldest waiter, so a newcomer cannot overtake it.
        const next = this.queue.shift()
        if (next) next(this.permit())
        else this.held--
      },
    }
  }
}
