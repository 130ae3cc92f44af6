import { countWithin } from './entry-size';
import { InvariantError } from './errors';
import type { Entry, Snapshot } from './types';

/**
 * The part of the log not yet persisted: an incoming snapshot and/or entries after it (or after
 * the stable log). Entries leave once the driver reports them persisted (stableTo); the snapshot
 * leaves through stableSnapTo.
 *
 * Invariants: entries[k].index === offset + k; if `snapshot` is set, offset === snapshot index + 1
 * until entries after it are stabilized.
 */
export class UnstableLog {
  /** An incoming snapshot not yet persisted by the driver. */
  snapshot: Snapshot | undefined = undefined;
  /** Entries not yet persisted; entries[0].index === offset. */
  entries: Entry[] = [];
  /** Index of entries[0] (or of the next entry to append when empty). */
  offset: number;

  /** Starts empty, with the next entry expected at `offset`. */
  constructor(offset: number) {
    this.offset = offset;
  }

  /** The first index if a snapshot is pending (snapshot index + 1), else undefined. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index + 1;
  }

  /** The last index held here (last entry, else the snapshot index), else undefined. */
  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.meta.index;
  }

  /** The term at `i` if this part of the log knows it, else undefined. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.meta.index === i) return this.snapshot.meta.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /**
   * The driver persisted entries up to (i, t). Drops them, unless the entry at i has since been
   * replaced by one of another term (then the persisted copy is stale and must be rewritten).
   */
  stableTo(i: number, t: number): void {
    if (i < this.offset) return;
    const e = this.entries[i - this.offset];
    if (e === undefined || e.term !== t) return;
    const keep = this.entries.length - (i + 1 - this.offset);
    this.entries = keep === 0 ? [] : this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  /** The driver persisted the snapshot at index `i`. */
  stableSnapTo(i: number): void {
    if (this.snapshot !== undefined && this.snapshot.meta.index === i) this.snapshot = undefined;
  }

  /** Replaces everything with an incoming snapshot. */
  restore(s: Snapshot): void {
    this.offset = s.meta.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  /**
   * Appends `ents` (contiguous, non-empty), first cutting any held entries at or after
   * ents[0].index. If ents[0].index is below `offset`, the unstable part restarts there (the
   * stable copies of those indexes will be overwritten when the driver persists these).
   */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    const end = this.offset + this.entries.length;
    if (after === end) {
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!);
    } else if (after <= this.offset) {
      this.offset = after;
      this.entries = ents.slice();
    } else if (after < end) {
      this.entries.length = after - this.offset;
      for (let k = 0; k < ents.length; k++) this.entries.push(ents[k]!);
    } else {
      throw new InvariantError(`unstable append leaves a gap: next ${end}, got ${after}`);
    }
  }

  /**
   * Entries in [lo, hi) (a new array; entries shared), as many as fit in `maxBytes` (at least
   * one). Both bounds must lie within this part.
   */
  slice(lo: number, hi: number, maxBytes: number = Number.POSITIVE_INFINITY): Entry[] {
    if (lo > hi || lo < this.offset || hi > this.offset + this.entries.length) {
      throw new InvariantError(
        `unstable slice [${lo}, ${hi}) out of bounds [${this.offset}, ${this.offset + this.entries.length})`,
      );
    }
    const start = lo - this.offset;
    const n = countWithin(this.entries, start, hi - this.offset, maxBytes);
    return this.entries.slice(start, start + n);
  }
}
