/** An async-iterable queue of received snapshot chunks with high/low watermarks for backpressure. */

/** Watermarks in bytes. Invariant: 0 ≤ lowWater < highWater. */
export interface ChunkQueueOptions {
  highWater: number;
  lowWater: number;
  /** Called when the queue holds more than highWater bytes: the producer should pause. */
  onFull(): void;
  /** Called when a paused queue fell to lowWater bytes or below, or stopped buffering. */
  onDrained(): void;
}

type Waiter = { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void };

/**
 * Chunks handed from a socket to one consumer. The producer calls `push`, then `end` or `fail`;
 * the consumer iterates once. When the consumer stops early (breaks out of its loop) or the
 * owner calls `discard()`, later chunks are dropped instead of buffered, so the producer can
 * keep reading to the end of the stream. Iterating after `fail` throws the failure (chunks
 * still buffered are dropped: a failed stream yields nothing more).
 */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private items: Uint8Array[] = [];
  /** Σ length over `items`. */
  private bytes = 0;
  private ended = false;
  private error: Error | undefined;
  private waiter: Waiter | undefined;
  private iterated = false;
  private discarding = false;
  /** onFull was called and onDrained not yet. */
  private full = false;

  constructor(private readonly opts: ChunkQueueOptions) {}

  /** Bytes buffered and not yet taken by the consumer. */
  get buffered(): number {
    return this.bytes;
  }

  /** Adds a chunk (the queue keeps the reference). Ignored after end, fail or discard. */
  push(chunk: Uint8Array): void {
    if (this.ended || this.error !== undefined || this.discarding) return;
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: chunk, done: false });
      return;
    }
    this.items.push(chunk);
    this.bytes += chunk.length;
    if (!this.full && this.bytes > this.opts.highWater) {
      this.full = true;
      this.opts.onFull();
    }
  }

  /** Marks the end: the consumer gets the buffered chunks, then `done`. */
  end(): void {
    if (this.ended || this.error !== undefined) return;
    this.ended = true;
    if (this.waiter !== undefined && this.items.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /** Fails the stream: the consumer's pending or next `next()` rejects with `err`. */
  fail(err: Error): void {
    if (this.ended || this.error !== undefined) return;
    this.error = err;
    this.dropBuffered();
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(err);
    }
  }

  /** Stops buffering: chunks already held and pushed later are dropped. */
  discard(): void {
    if (this.discarding) return;
    this.discarding = true;
    this.dropBuffered();
    if (this.waiter !== undefined) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterated) throw new Error('snapshot chunks can be iterated only once');
    this.iterated = true;
    return {
      next: () => this.next(),
      return: () => {
        this.discard();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    if (this.error !== undefined) return Promise.reject(this.error);
    const chunk = this.items.shift();
    if (chunk !== undefined) {
      this.bytes -= chunk.length;
      if (this.full && this.bytes <= this.opts.lowWater) {
        this.full = false;
        this.opts.onDrained();
      }
      return Promise.resolve({ value: chunk, done: false });
    }
    if (this.ended || this.discarding) return Promise.resolve({ value: undefined, done: true });
    if (this.waiter !== undefined) return Promise.reject(new Error('concurrent next() on snapshot chunks'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private dropBuffered(): void {
    this.items = [];
    this.bytes = 0;
    if (this.full) {
      this.full = false;
      this.opts.onDrained();
    }
  }
}
