/**
 * A min-heap of lease deadlines (pure). Entries are (id, deadline in ms); a lease renewed or revoked
 * leaves a stale entry behind, which `popExpired` skips by comparing with the current deadline the
 * caller reports (lazy deletion), so renewals cost O(log n) and no search.
 */

interface Item {
  id: bigint;
  at: number;
}

/** Deadline heap. */
export class LeaseHeap {
  private items: Item[] = [];

  /** Number of entries, stale ones included. */
  get size(): number {
    return this.items.length;
  }

  /** Records that lease `id` expires at `at` (ms). */
  push(id: bigint, at: number): void {
    const a = this.items;
    a.push({ id, at });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  private pop(): Item | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }

  /**
   * Removes and returns up to `limit` ids whose deadline is ≤ now. `current(id)` gives the lease's
   * present deadline (undefined when the lease is gone); entries that no longer match it are stale
   * and dropped.
   */
  popExpired(now: number, limit: number, current: (id: bigint) => number | undefined): bigint[] {
    const out: bigint[] = [];
    while (out.length < limit && this.items.length > 0 && this.items[0]!.at <= now) {
      const it = this.pop()!;
      if (current(it.id) === it.at) out.push(it.id);
    }
    return out;
  }

  /** Drops every entry. */
  clear(): void {
    this.items = [];
  }
}
