/** Reconnection delays: exponential growth with jitter, reset after a successful handshake. */

/** Backoff bounds in milliseconds. Invariant: 0 < minMs ≤ maxMs. */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

/** The default bounds: 50 ms doubling up to 2 s. */
export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ minMs: 50, maxMs: 2000 });

/**
 * Produces successive reconnection delays. The n-th delay (from 0) is drawn uniformly from
 * [d/2, d] with d = min(maxMs, minMs·2ⁿ), so peers that failed together do not retry together.
 * `random` returns values in [0, 1).
 */
export class Backoff {
  /** Failed attempts since the last reset (≥ 0). */
  private failures = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number,
  ) {}

  /** The delay (ms) before the next attempt; each call counts one more failure. */
  next(): number {
    const exp = Math.min(this.failures, 30);
    const d = Math.min(this.opts.maxMs, this.opts.minMs * 2 ** exp);
    this.failures++;
    return Math.max(1, Math.round(d / 2 + (this.random() * d) / 2));
  }

  /** Forgets past failures: the next delay is drawn from the minimum again. */
  reset(): void {
    this.failures = 0;
  }
}
