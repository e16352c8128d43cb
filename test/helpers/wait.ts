import { setTimeout as sleep } from 'node:timers/promises'

/** Until `check` holds, looking every `everyMs`; fails naming `what` after `timeoutMs` (a bounded wait, not a sleep). */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}
