/**
 * Small statistics helpers for the benchmark: medians of repeated figures and a log-bucketed
 * latency histogram that several load generator processes can merge exactly.
 */

/** The median of the finite numbers in `xs` (mean of the middle two for an even count); `null` when there are none. */
export function median(xs: readonly number[]): number | null {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  if (v.length % 2 === 1) return v[mid]!;
  return (v[mid - 1]! + v[mid]!) / 2;
}

/** Relative width of one histogram bucket: values within a bucket differ by at most 1 %. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Values are recorded in microseconds; anything below 1 µs falls into bucket 0. */
const MIN_US = 1;

/**
 * A latency histogram with logarithmic buckets (1 % wide) over microseconds. Percentiles read
 * from it are within 1 % of the exact sample percentile. Two histograms merge by adding counts,
 * which is how figures from several generator processes are combined.
 */
export class LatencyHistogram {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private sumMs = 0;

  /** Records one latency in milliseconds (negative values count as 0). */
  record(ms: number): void {
    const us = Math.max(ms * 1000, MIN_US);
    const idx = Math.floor(Math.log(us / MIN_US) / LOG_GROWTH);
    this.counts.set(idx, (this.counts.get(idx) ?? 0) + 1);
    this.n += 1;
    this.sumMs += Math.max(ms, 0);
  }

  /** Number of recorded values. */
  get count(): number {
    return this.n;
  }

  /** Mean of the recorded values in ms, or `null` when empty. */
  mean(): number | null {
    return this.n === 0 ? null : this.sumMs / this.n;
  }

  /**
   * The q-quantile (0 < q ≤ 1) in milliseconds: the upper edge of the first bucket at which the
   * cumulative count reaches q × count. `null` when empty.
   */
  quantile(q: number): number | null {
    if (this.n === 0) return null;
    const target = Math.max(1, Math.ceil(q * this.n));
    const keys = [...this.counts.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const k of keys) {
      seen += this.counts.get(k)!;
      if (seen >= target) return (MIN_US * GROWTH ** (k + 1)) / 1000;
    }
    const last = keys[keys.length - 1]!;
    return (MIN_US * GROWTH ** (last + 1)) / 1000;
  }

  /** Adds every count of `other` into this histogram. */
  merge(other: LatencyHistogram): void {
    for (const [k, c] of other.counts) this.counts.set(k, (this.counts.get(k) ?? 0) + c);
    this.n += other.n;
    this.sumMs += other.sumMs;
  }

  /** A JSON-safe form: `[bucket, count]` pairs plus the sum, for passing between processes. */
  toJSON(): { buckets: [number, number][]; sumMs: number } {
    return { buckets: [...this.counts.entries()], sumMs: this.sumMs };
  }

  /** Rebuilds a histogram from `toJSON()` output. Throws on a malformed value. */
  static fromJSON(v: unknown): LatencyHistogram {
    const h = new LatencyHistogram();
    if (typeof v !== 'object' || v === null) throw new Error('histogram: not an object');
    const o = v as { buckets?: unknown; sumMs?: unknown };
    if (!Array.isArray(o.buckets) || typeof o.sumMs !== 'number') throw new Error('histogram: bad shape');
    for (const pair of o.buckets as unknown[]) {
      if (!Array.isArray(pair) || typeof pair[0] !== 'number' || typeof pair[1] !== 'number') throw new Error('histogram: bad bucket');
      h.counts.set(pair[0], (h.counts.get(pair[0]) ?? 0) + pair[1]);
      h.n += pair[1];
    }
    h.sumMs = o.sumMs;
    return h;
  }
}
