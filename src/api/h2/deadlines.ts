/**
 * Call deadlines of one server: a binary min-heap keyed by deadline with a single timer armed for
 * the earliest one. Entries remember their heap position, so a call that finishes in time is
 * removed in O(log n) instead of lingering until its deadline.
 */

/** Something with a deadline. */
export interface DeadlineEntry {
  /** Absolute deadline, ms since the epoch (Date.now() clock). */
  deadline: number;
  /** Position in the heap, -1 when not queued (owned by the queue). */
  heapIndex: number;
  /** Called once when the deadline passed while the entry was queued (it is dequeued first). */
  expire(): void;
}

/** The deadlines of every open call with a `grpc-timeout`. */
export class DeadlineQueue {
  private readonly heap: DeadlineEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Deadline the timer is armed for (Infinity when unarmed). */
  private armedFor = Infinity;
  private readonly now: () => number;

  /** `now`: the clock (ms since the epoch); Date.now by default. */
  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Number of queued entries. */
  get size(): number {
    return this.heap.length;
  }

  /** Queues `e` (which must not be queued) until its deadline. */
  add(e: DeadlineEntry): void {
    const h = this.heap;
    e.heapIndex = h.length;
    h.push(e);
    this.up(e.heapIndex);
    if (e.deadline < this.armedFor) this.arm();
  }

  /** Removes `e` when queued; a no-op otherwise. */
  remove(e: DeadlineEntry): void {
    const i = e.heapIndex;
    if (i < 0) return;
    const h = this.heap;
    const last = h.pop() as DeadlineEntry;
    e.heapIndex = -1;
    if (last !== e) {
      h[i] = last;
      last.heapIndex = i;
      this.down(i);
      this.up(last.heapIndex);
    }
    if (h.length === 0) this.disarm();
  }

  /** Cancels the timer and forgets every entry (they are not expired). */
  clear(): void {
    for (const e of this.heap) e.heapIndex = -1;
    this.heap.length = 0;
    this.disarm();
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private arm(): void {
    const first = this.heap[0];
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (first === undefined) {
      this.timer = undefined;
      this.armedFor = Infinity;
      return;
    }
    this.armedFor = first.deadline;
    const delay = Math.max(0, Math.ceil(first.deadline - this.now()));
    this.timer = setTimeout(this.fire, Math.min(delay, 2 ** 31 - 1));
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    const h = this.heap;
    for (;;) {
      const first = h[0];
      if (first === undefined || first.deadline > now) break;
      this.remove(first);
      first.expire();
    }
    if (h.length > 0 && this.timer === undefined) this.arm();
  };

  private up(i: number): void {
    const h = this.heap;
    const e = h[i] as DeadlineEntry;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as DeadlineEntry;
      if (p.deadline <= e.deadline) break;
      h[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    h[i] = e;
    e.heapIndex = i;
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    const e = h[i] as DeadlineEntry;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && (h[r] as DeadlineEntry).deadline < (h[l] as DeadlineEntry).deadline) c = r;
      const child = h[c] as DeadlineEntry;
      if (child.deadline >= e.deadline) break;
      h[i] = child;
      child.heapIndex = i;
      i = c;
    }
    h[i] = e;
    e.heapIndex = i;
  }
}
