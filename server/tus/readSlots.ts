import type { Readable, Writable } from 'node:stream'
import type { Config } from '../config.js'

// A turn ends after this many bytes, after this long, or, with others waiting, at a short read or when
// nothing more has arrived for IDLE_MS (the client sends slower than it is read: it waits outside the
// slots until its next chunk).
const QUANTUM = 512 * 1024
const TURN_MS = 200
const IDLE_MS = 5
// A socket read shorter than this found the kernel's buffer drained (Node reads up to 64 KiB at once).
const SHORT_READ = 16 * 1024
// With others waiting, the bodies in their turns read at most this much in one event-loop iteration, then
// wait for the next: libuv reads up to 32 chunks from a ready socket at once and accepts one connection
// per iteration, so long iterations left new connections in the kernel's accept queue for seconds.
const ITERATION_BYTES = 128 * 1024
// What a chunk costs beyond its bytes (the parser's call, a buffer, an event): chunked framing of 1-byte
// chunks would otherwise make a byte budget cover a hundred thousand of them. A body also reads at most
// CHUNKS_PER_ITERATION chunks in one event-loop iteration, others waiting or not.
const CHUNK_COST = 512
const CHUNKS_PER_ITERATION = 256
// Chunks shorter than this are copied together and given to the store in one write of up to
// COALESCE_BYTES (at the latest at the end of the iteration): tiny chunks would otherwise each be a write,
// with its own buffer and bookkeeping, in every stream between here and the disk.
const COALESCE_BELOW = 16 * 1024
const COALESCE_BYTES = 64 * 1024
// Node's HTTP parser hands over each chunk of chunked framing with a call of its own, all the chunks of a
// socket read (64 KiB: eleven thousand 1-byte chunks) at once, whatever the reader does. A chunked body
// that has sent TINY_CHUNKS_REFUSED_AFTER chunks and then TINY_CHUNKS_PER_SECOND in a second, averaging
// under TINY_CHUNK bytes, is refused: a client streaming small pieces as they come sends far fewer.
const TINY_CHUNK = 64
const TINY_CHUNKS_REFUSED_AFTER = 4096
const TINY_CHUNKS_PER_SECOND = 1000

/** The error a sink is destroyed with when its body's chunks are too small (answered 400 like a tus error). */
export const CHUNKS_TOO_SMALL = Object.assign(new Error('request body chunks too small'), {
  status_code: 400,
  body: `Transfer-Encoding chunks average under ${TINY_CHUNK} bytes; send larger chunks\n`,
})

/**
 * Bounded, round-robin reading of request bodies: at most `slots` bodies are read at once, each for a
 * turn, then it yields to the next waiting one. A waiting body is paused, so its socket stops being read
 * and TCP flow control holds its client back: memory stays bounded and each event-loop iteration serves
 * a bounded number of sockets, so a HEAD or a new connection is not queued behind a thousand uploads.
 * A body whose client went quiet yields its slot and is "parked": it flows again, outside the slots,
 * until its next chunk arrives, and only then queues for a turn (no slot is held by a stalled client,
 * and such a client still meets the socket's idle timeout on its own).
 */
export class ReadSlots {
  private active = 0
  /** Bodies with data waiting for a turn, oldest first (a Set keeps insertion order and deletes in O(1)). */
  private readonly queue = new Set<ScheduledBody>()
  /** The cost (bytes and chunks) read in this event-loop iteration, and the bodies paused until the next. */
  private iterationBytes = 0
  private iterationScheduled = false
  /** Counts event-loop iterations in which bodies were read, so a body can count its chunks per iteration. */
  iteration = 0
  private readonly nextIteration = new Set<ScheduledBody>()

  constructor(readonly slots: number) {}

  /**
   * Counts a chunk read in its turn; true when the body has read its chunks for this iteration, or when
   * this iteration's share is spent while others wait: the body then pauses until the next iteration
   * (resumeInTurn), after the check phase has let it go.
   */
  spend(body: ScheduledBody, bytes: number): boolean {
    // The byte budget only matters while others wait. An iteration is scheduled only then, or to resume
    // a paused body: a pending immediate makes the loop poll without waiting, and the sockets are then
    // read in more, smaller pieces, each a buffer for the collector (twice the full GCs per upload).
    const contended = this.contended
    if (contended) {
      this.iterationBytes += bytes + CHUNK_COST
      this.scheduleIteration()
    }
    // Uncontended, the chunks are counted until the next iteration this schedules: a stricter bound.
    const chunksSpent = body.countChunk(this.iteration) >= CHUNKS_PER_ITERATION
    if (!chunksSpent && (!contended || this.iterationBytes < ITERATION_BYTES)) return false
    this.scheduleIteration()
    this.nextIteration.add(body)
    return true
  }

  private scheduleIteration(): void {
    if (this.iterationScheduled) return
    this.iterationScheduled = true
    setImmediate(this.onIteration)
  }

  private readonly onIteration = () => {
    this.iterationScheduled = false
    this.iteration++
    this.iterationBytes = 0
    const bodies = [...this.nextIteration]
    this.nextIteration.clear()
    for (const body of bodies) body.resumeInTurn()
  }

  /**
   * Feeds `source` into `sink` as the slots allow, honouring the sink's backpressure; ends the sink when
   * the source ends. Returns a detach function (idempotent) that stops feeding without ending the sink.
   */
  feed(source: Readable, sink: Writable): () => void {
    const body = new ScheduledBody(this, source, sink)
    body.start()
    return () => body.detach()
  }

  /** Gives `body` a turn now if a slot is free, else queues it. */
  request(body: ScheduledBody): void {
    if (this.active < this.slots && this.queue.size === 0) {
      this.active++
      body.grant()
    } else {
      this.queue.add(body)
      body.waiting()
    }
  }

  /** `body` gave back its slot (its turn ended, or it is gone). */
  release(): void {
    this.active--
    this.next()
  }

  /** Whether a body waits for a turn (a turn is only ended for someone). */
  get contended(): boolean {
    return this.queue.size > 0
  }

  /** `body` no longer waits (it is gone). */
  dequeue(body: ScheduledBody): void {
    this.queue.delete(body)
  }

  private next(): void {
    while (this.active < this.slots && this.queue.size > 0) {
      const body = this.queue.values().next().value as ScheduledBody
      this.queue.delete(body)
      this.active++
      body.grant()
    }
  }
}

// parked: flowing outside the slots until its quiet client sends again; queued: paused, waiting for a turn;
// reading: in its turn; blocked: paused after its turn until the store drains what it was given.
type State = 'parked' | 'queued' | 'reading' | 'blocked' | 'done'

class ScheduledBody {
  private state: State = 'parked'
  private turnBytes = 0
  private turnStarted = 0
  private lastData = 0
  private sinkFull = false
  private timer?: NodeJS.Timeout
  /** Short chunks not yet written, copied together on the way to the sink. */
  private pending: Buffer[] = []
  private pendingBytes = 0
  private flushScheduled = false
  private chunkIteration = -1
  private iterationChunks = 0
  /** Chunks of chunked framing: in all, and in the current one-second window with their bytes. */
  private readonly framed: boolean
  private chunks = 0
  private windowStart = 0
  private windowChunks = 0
  private windowBytes = 0
  /** The socket's idle timeout, off while waiting for a turn (not idle by the client's fault). */
  private socketTimeout = 0

  constructor(
    private readonly slots: ReadSlots,
    private readonly source: Readable,
    private readonly sink: Writable,
  ) {
    this.framed = (source as Readable & { headers?: Record<string, unknown> }).headers?.['transfer-encoding'] !== undefined
  }

  start(): void {
    this.source.on('data', this.onData)
    this.source.once('end', this.onEnd)
    this.sink.once('close', this.detach)
    this.sink.on('drain', this.onDrain)
    // Paused explicitly, so that other 'data' listeners (the post-receive hook's byte count) do not resume it.
    this.source.pause()
    this.slots.request(this)
  }

  /** Queued: paused, its socket's idle timer off. */
  waiting(): void {
    this.state = 'queued'
    this.source.pause()
    const socket = this.socketOf()
    if (socket?.timeout) {
      this.socketTimeout = socket.timeout
      socket.setTimeout(0)
    }
  }

  /** Its turn: read until the quantum, the turn's time or the client's silence ends it. */
  grant(): void {
    this.restoreSocketTimeout()
    this.state = 'reading'
    this.turnBytes = 0
    this.turnStarted = this.lastData = performance.now()
    this.timer = setTimeout(this.onTimer, IDLE_MS)
    if (!this.sinkFull) this.source.resume()
  }

  /** Counts a chunk read in event-loop iteration `iteration`; returns how many this body read in it. */
  countChunk(iteration: number): number {
    if (iteration !== this.chunkIteration) {
      this.chunkIteration = iteration
      this.iterationChunks = 0
    }
    return ++this.iterationChunks
  }

  /** Whether a chunked body floods with tiny chunks (see TINY_CHUNK). */
  private tooManyTinyChunks(length: number): boolean {
    if (!this.framed) return false
    const now = performance.now()
    if (now - this.windowStart >= 1000) {
      this.windowStart = now
      this.windowChunks = this.windowBytes = 0
    }
    this.chunks++
    this.windowChunks++
    this.windowBytes += length
    return this.chunks >= TINY_CHUNKS_REFUSED_AFTER && this.windowChunks >= TINY_CHUNKS_PER_SECOND && this.windowBytes < this.windowChunks * TINY_CHUNK
  }

  /** Hands a chunk on to the sink: a long one as it is, short ones copied together (see COALESCE_BELOW). */
  private forward(chunk: Buffer): void {
    if (chunk.length >= COALESCE_BELOW) {
      this.flush()
      this.write(chunk)
      return
    }
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    if (this.pendingBytes >= COALESCE_BYTES) this.flush()
    else if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.onFlush)
    }
  }

  private readonly onFlush = () => {
    this.flushScheduled = false
    if (this.state !== 'done') this.flush()
  }

  private flush(): void {
    if (this.pendingBytes === 0) return
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes)
    this.pending = []
    this.pendingBytes = 0
    this.write(data)
  }

  /** Writes to the sink; a full sink pauses the source until it drains (the bytes held per body stay bounded). */
  private write(data: Buffer): void {
    if (this.sink.writableEnded || this.sink.destroyed) return
    if (!this.sink.write(data)) {
      this.sinkFull = true
      this.source.pause()
    }
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.state === 'done') return
    if (this.tooManyTinyChunks(chunk.length)) {
      this.detach()
      return void this.sink.destroy(CHUNKS_TOO_SMALL)
    }
    this.forward(chunk)
    if (this.state === 'parked') {
      // The quiet client spoke again: back in line for a turn.
      this.source.pause()
      this.slots.request(this)
      return
    }
    this.turnBytes += chunk.length
    this.lastData = performance.now()
    const spent = this.slots.spend(this, chunk.length)
    // A short read emptied what the socket had: the client sends slower than it is read. It waits for its
    // next bytes outside the slots, so that steady but slow clients are never capped by the slot count.
    if (chunk.length < SHORT_READ && this.slots.contended) return this.yieldTurn(false)
    if (this.turnBytes >= QUANTUM) this.endTurn(true)
    if (this.state === 'reading' && spent) this.source.pause()
  }

  /** The next event-loop iteration: a body still in its turn reads on (unless the store is full). */
  resumeInTurn(): void {
    if (this.state === 'reading' && !this.sinkFull) this.source.resume()
  }

  private readonly onDrain = () => {
    this.sinkFull = false
    if (this.state === 'parked') this.source.resume()
    else if (this.state === 'blocked') this.slots.request(this)
    else if (this.state === 'reading') this.source.resume()
  }

  private readonly onTimer = () => {
    this.timer = undefined
    if (this.state !== 'reading') return
    const now = performance.now()
    // Waiting on the store (sink full) is not the client's silence.
    const quiet = !this.sinkFull && now - this.lastData >= IDLE_MS
    if (quiet && this.slots.contended) return this.yieldTurn(false)
    if (now - this.turnStarted >= TURN_MS) this.endTurn(true)
    if (this.state === 'reading' && !this.timer) this.timer = setTimeout(this.onTimer, IDLE_MS)
  }

  /** A turn used up: yields to a waiting body, or, with none waiting, goes on with a fresh turn (no pause). */
  private endTurn(hasData: boolean): void {
    if (this.slots.contended) {
      this.yieldTurn(hasData)
      return
    }
    this.turnBytes = 0
    this.turnStarted = performance.now()
  }

  /**
   * Ends the turn: to the back of the line when it has more to send (once the store took what it has,
   * so a slow store holds no slot), else parked until it does.
   */
  private yieldTurn(hasData: boolean): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.source.pause()
    this.slots.release()
    if (hasData && this.sinkFull) this.state = 'blocked'
    else if (hasData) this.slots.request(this)
    else {
      this.state = 'parked'
      this.source.resume()
    }
  }

  private readonly onEnd = () => {
    this.detach()
    this.sink.end()
  }

  /** Stops feeding the sink (what arrived is written), giving back the slot or the place in line. */
  readonly detach = () => {
    if (this.state === 'done') return
    this.flush()
    if (this.state === 'reading') {
      clearTimeout(this.timer)
      this.slots.release()
    } else if (this.state === 'queued') {
      this.slots.dequeue(this)
      this.restoreSocketTimeout()
    }
    this.state = 'done'
    this.source.off('data', this.onData)
    this.source.off('end', this.onEnd)
    this.sink.off('close', this.detach)
    this.sink.off('drain', this.onDrain)
    this.source.pause()
  }

  private socketOf() {
    return (this.source as Readable & { socket?: import('node:net').Socket }).socket
  }

  private restoreSocketTimeout(): void {
    if (this.socketTimeout === 0) return
    this.socketOf()?.setTimeout(this.socketTimeout)
    this.socketTimeout = 0
  }
}

const perConfig = new WeakMap<Config, ReadSlots>()

/** The read slots of a server (one per configuration), or undefined when READ_SLOTS is 0 (unbounded). */
export function readSlotsOf(config: Config): ReadSlots | undefined {
  if (config.READ_SLOTS === 0) return undefined
  let slots = perConfig.get(config)
  if (!slots) {
    slots = new ReadSlots(config.READ_SLOTS)
    perConfig.set(config, slots)
  }
  return slots
}
