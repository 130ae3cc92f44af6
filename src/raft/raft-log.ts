import { limitSize } from './entry-size';
import { CompactedError, InvariantError, UnavailableError } from './errors';
import type { Storage } from './memory-storage';
import { UnstableLog } from './unstable-log';
import type { Entry, Snapshot } from './types';

/**
 * A member's whole log: the stable part (Storage, persisted) followed by the unstable part
 * (not yet persisted), plus the commit and apply cursors.
 *
 * Invariants: firstIndex() - 1 ≤ applied ≤ committed ≤ lastIndex().
 */
export class RaftLog {
  /** The persisted part (read only). */
  readonly storage: Storage;
  /** The part not yet persisted; it overrides storage where both hold an index. */
  readonly unstable: UnstableLog;
  /** Highest index known to be stored on a quorum. Never decreases. */
  committed: number;
  /** Highest index handed to the driver for applying and acknowledged by advance(). applied ≤ committed. */
  applied: number;
  /** Upper bound (bytes) of committed entries handed out in one Ready. */
  readonly maxApplyBytes: number;

  /** Opens the log over `storage`; committed and applied start at the snapshot index. */
  constructor(storage: Storage, maxApplyBytes: number) {
    this.storage = storage;
    this.maxApplyBytes = maxApplyBytes;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new UnstableLog(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  /**
   * Handles an append from the leader: if our entry at `index` has term `logTerm`, appends
   * `ents` after it (cutting a conflicting tail), moves commit to min(commit, index +
   * ents.length) and returns the index of the last new entry; returns -1 on a mismatch.
   */
  maybeAppend(index: number, logTerm: number, commit: number, ents: readonly Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new InvariantError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      const from = ci - (index + 1);
      this.append(from === 0 ? ents : ents.slice(from));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Appends `ents` (contiguous; may overwrite an uncommitted tail) and returns the new last index. */
  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new InvariantError(`append after ${after} is below committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` that is new or conflicts with ours (same index,
   * other term), or 0 if every entry is already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Walks back from `index` to the last entry whose term is ≤ `term` (or whose term is unknown
   * because it is compacted) and returns its index. Used by both sides of fast log backtracking:
   * every entry after the returned index is known not to match a log whose entry at `index`
   * has term `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    if (index > this.lastIndex()) return index;
    for (;;) {
      const t = this.termOrUndefined(index);
      if (t === undefined || t <= term) return index;
      index--;
    }
  }

  /** Unpersisted entries (a new array; entries shared). */
  unstableEntries(): Entry[] {
    return this.unstable.entries.length === 0 ? [] : this.unstable.entries.slice();
  }

  /** The next committed entries to apply (after `applied`), bounded by maxApplyBytes. */
  nextEntries(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, this.maxApplyBytes);
  }

  /** True when committed entries wait to be applied. */
  hasNextEntries(): boolean {
    return this.committed + 1 > Math.max(this.applied + 1, this.firstIndex());
  }

  /** True when an incoming snapshot waits to be persisted. */
  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** The snapshot to send to a lagging follower (a pending incoming one, else the stored one). */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Index of the first entry available. */
  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  /** Index of the last entry (or of the snapshot when the log is otherwise empty). */
  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const t = this.termOrUndefined(this.lastIndex());
    if (t === undefined) throw new InvariantError('term of the last entry is unavailable');
    return t;
  }

  /** Moves commit forward to `toCommit` (never back). Throws if toCommit > lastIndex(). */
  commitTo(toCommit: number): void {
    if (this.committed >= toCommit) return;
    if (this.lastIndex() < toCommit) {
      throw new InvariantError(`commit ${toCommit} is out of range [last index ${this.lastIndex()}]`);
    }
    this.committed = toCommit;
  }

  /** Records that the driver applied up to `i`. Requires applied ≤ i ≤ committed (0 is ignored). */
  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new InvariantError(`applied ${i} is out of range [prev applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = i;
  }

  /** The driver persisted entries up to (i, t). */
  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  /** The driver persisted the snapshot at `i`. */
  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  /**
   * The term of entry `i`; 0 for indexes before the log's first known position or after its end;
   * undefined when the entry was compacted away or is unavailable in storage.
   */
  termOrUndefined(i: number): number | undefined {
    const dummy = this.firstIndex() - 1;
    if (i < dummy || i > this.lastIndex()) return i < dummy ? undefined : 0;
    const u = this.unstable.maybeTerm(i);
    if (u !== undefined) return u;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof CompactedError || e instanceof UnavailableError) return undefined;
      throw e;
    }
  }

  /** The term of entry `i`, treating compacted or unknown entries as term 0. */
  term(i: number): number {
    return this.termOrUndefined(i) ?? 0;
  }

  /** True if our entry at `i` exists and has term `t`. */
  matchTerm(i: number, t: number): boolean {
    const got = this.termOrUndefined(i);
    return got !== undefined && got === t && (i === 0 || i <= this.lastIndex());
  }

  /** True if a log ending at (lastIndex, lastTerm) is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Commits up to `maxIndex` if it is beyond the current commit and its entry has term `term`
   * (the leader commits by counting only entries of its own term). Returns whether commit moved.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrUndefined(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replaces the log with an incoming snapshot; commit jumps to its index. */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstable.restore(s);
  }

  /**
   * Entries in [lo, hi) bounded by `maxBytes` (at least one entry). Throws CompactedError if lo is
   * below firstIndex(), InvariantError if hi > lastIndex()+1.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    this.checkBounds(lo, hi);
    if (lo === hi) return [];
    const uoff = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < uoff) {
      const stableHi = Math.min(hi, uoff);
      const stored = this.storage.entries(lo, stableHi, maxBytes);
      if (stored.length < stableHi - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      const u = this.unstable.slice(Math.max(lo, uoff), hi, maxBytes);
      if (ents.length > 0) {
        for (let k = 0; k < u.length; k++) ents.push(u[k]!);
      } else {
        ents = u;
      }
    }
    return limitSize(ents, maxBytes);
  }

  /** Entries from `i` to the end, bounded by `maxBytes`; empty when i > lastIndex(). */
  entriesFrom(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  private checkBounds(lo: number, hi: number): void {
    if (lo > hi) throw new InvariantError(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new CompactedError();
    if (hi > this.lastIndex() + 1) {
      throw new InvariantError(`slice [${lo}, ${hi}) out of bound [${fi}, ${this.lastIndex()}]`);
    }
  }
}
