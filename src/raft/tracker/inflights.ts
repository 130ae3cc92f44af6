import { InvariantError } from '../errors';

/**
 * The window of append messages sent to one follower and not yet acknowledged, bounded by a
 * message count and (optionally) by payload bytes. Each slot records the last entry index a
 * message carried and its payload size. Indexes are added in increasing order.
 *
 * Invariants: 0 ≤ count ≤ capacity; bytes = sum of the sizes held; held indexes increase from the
 * oldest slot to the newest.
 */
export class Inflights {
  /** Maximum number of messages in flight. */
  readonly capacity: number;
  /** Maximum payload bytes in flight; 0 means no byte limit. */
  readonly maxBytes: number;
  private start = 0;
  private n = 0;
  private total = 0;
  private indexes: number[] = [];
  private sizes: number[] = [];

  /** `capacity` ≥ 1 messages; `maxBytes` ≥ 0 (0 = unlimited). */
  constructor(capacity: number, maxBytes: number) {
    if (capacity < 1) throw new InvariantError('inflights capacity must be at least 1');
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }

  /** Number of messages in flight. */
  get count(): number {
    return this.n;
  }

  /** Payload bytes in flight. */
  get bytes(): number {
    return this.total;
  }

  /** True when no more messages may be sent. */
  full(): boolean {
    return this.n === this.capacity || (this.maxBytes > 0 && this.total >= this.maxBytes);
  }

  /** Records a message whose last entry is `index` carrying `bytes` of payload. Throws when full. */
  add(index: number, bytes: number): void {
    if (this.n === this.capacity) throw new InvariantError('cannot add into a full inflights window');
    if (this.indexes.length < this.capacity && this.n === this.indexes.length) this.grow();
    let slot = this.start + this.n;
    const size = this.indexes.length;
    if (slot >= size) slot -= size;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.n++;
    this.total += bytes;
  }

  /** Frees every message whose last index is ≤ `to` (they were acknowledged). */
  freeLE(to: number): void {
    const size = this.indexes.length;
    while (this.n > 0) {
      const idx = this.indexes[this.start]!;
      if (idx > to) break;
      this.total -= this.sizes[this.start]!;
      this.start++;
      if (this.start === size) this.start = 0;
      this.n--;
    }
    if (this.n === 0) {
      this.start = 0;
      this.total = 0;
    }
  }

  /** Frees the oldest message (used when a heartbeat answer shows the follower is alive). */
  freeFirstOne(): void {
    if (this.n === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  /** Empties the window. */
  reset(): void {
    this.start = 0;
    this.n = 0;
    this.total = 0;
  }

  private grow(): void {
    const oldSize = this.indexes.length;
    const newSize = Math.min(this.capacity, Math.max(4, oldSize * 2));
    const idx = new Array<number>(newSize);
    const sz = new Array<number>(newSize);
    for (let k = 0; k < this.n; k++) {
      let s = this.start + k;
      if (s >= oldSize) s -= oldSize;
      idx[k] = this.indexes[s]!;
      sz[k] = this.sizes[s]!;
    }
    this.indexes = idx;
    this.sizes = sz;
    this.start = 0;
  }
}
