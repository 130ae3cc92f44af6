import { countWithin } from './entry-size';
import { CompactedError, InvariantError, SnapshotOutOfDateError, UnavailableError } from './errors';
import { EntryType, NONE } from './types';
import type { ConfState, Entry, HardState, Snapshot } from './types';

/** What a member starts from: the persisted hard state and the configuration of its snapshot. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/**
 * The stable (persisted) log as the core reads it. Reads throw `CompactedError` for indexes at
 * or below the snapshot and `UnavailableError` for indexes beyond the last entry.
 */
export interface Storage {
  /** The persisted hard state and the snapshot's configuration. Returned objects are copies. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at least one if the range is non-empty, then as many as fit in
   * `maxBytes`. Throws CompactedError when lo ≤ the snapshot index, UnavailableError when the log
   * holds nothing after the snapshot, InvariantError when hi > lastIndex()+1. The returned array
   * is the caller's; the entries are shared and must not be mutated.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** The term of entry `i`; also answers for the snapshot index itself. */
  term(i: number): number;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot index when no entry follows it). */
  lastIndex(): number;
  /** The latest snapshot (its data is whatever the driver stored). */
  snapshot(): Snapshot;
}

const EMPTY = new Uint8Array(0);

function dummyEntry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: EMPTY };
}

/**
 * An in-memory stable log. The driver fills it: at start from the WAL (applySnapshot, append,
 * setHardState), then with every Ready after persisting it (append `Ready.entries`,
 * setHardState, applySnapshot). It creates snapshots and compacts once the state machine has
 * applied far enough. The core only reads it.
 *
 * Not thread-safe in any sense; only the driver's loop may touch it.
 */
export class MemoryStorage implements Storage {
  private hs: HardState = { term: 0, vote: NONE, commit: 0 };
  private snap: Snapshot = {
    meta: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: EMPTY,
  };
  /**
   * ents[0] is a placeholder for the snapshot position (its index and term equal the
   * snapshot's); real entries follow. Invariant: ents[k].index === ents[0].index + k.
   */
  private ents: Entry[] = [dummyEntry(0, 0)];

  /** See Storage.initialState. */
  initialState(): InitialState {
    const cs = this.snap.meta.confState;
    return {
      hardState: { ...this.hs },
      confState: { voters: cs.voters.slice(), learners: cs.learners.slice() },
    };
  }

  /** The persisted hard state (a copy). */
  hardState(): HardState {
    return { ...this.hs };
  }

  /** Records the hard state the driver has just persisted. */
  setHardState(hs: HardState): void {
    this.hs = { term: hs.term, vote: hs.vote, commit: hs.commit };
  }

  /** See Storage.entries. `maxBytes` defaults to no limit. */
  entries(lo: number, hi: number, maxBytes: number = Number.POSITIVE_INFINITY): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError();
    if (hi > this.lastIndex() + 1) {
      throw new InvariantError(`entries(${lo}, ${hi}) beyond last index ${this.lastIndex()}`);
    }
    if (this.ents.length === 1) throw new UnavailableError();
    if (lo >= hi) return [];
    const n = countWithin(this.ents, lo - offset, hi - offset, maxBytes);
    return this.ents.slice(lo - offset, lo - offset + n);
  }

  /** See Storage.term. */
  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError();
    const e = this.ents[i - offset];
    if (e === undefined) throw new UnavailableError();
    return e.term;
  }

  /** See Storage.lastIndex. */
  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  /** See Storage.firstIndex. */
  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  /** See Storage.snapshot. The returned object is shared; do not mutate it. */
  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the whole log with `snap` (after a follower received one, or at start from the
   * WAL's latest snapshot). Throws SnapshotOutOfDateError if `snap` is not newer than the stored
   * snapshot (the very first snapshot at index 0 is always accepted).
   */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index <= this.snap.meta.index && !(snap.meta.index === 0 && this.ents.length === 1)) {
      throw new SnapshotOutOfDateError();
    }
    this.snap = snap;
    this.ents = [dummyEntry(snap.meta.index, snap.meta.term)];
  }

  /**
   * Records a snapshot of the state machine at `index` (which must be applied, hence ≤
   * lastIndex()) with configuration `confState` and opaque `data`, and returns it. Entries are
   * kept; call compact() to drop them. Throws SnapshotOutOfDateError if index ≤ the current
   * snapshot index, InvariantError if index > lastIndex().
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw new SnapshotOutOfDateError();
    if (index > this.lastIndex()) {
      throw new InvariantError(`snapshot index ${index} is beyond last index ${this.lastIndex()}`);
    }
    const offset = this.ents[0]!.index;
    const term = this.ents[index - offset]!.term;
    this.snap = {
      meta: {
        index,
        term,
        confState: { voters: confState.voters.slice(), learners: confState.learners.slice() },
      },
      data,
    };
    return this.snap;
  }

  /**
   * Drops every entry up to and including `compactIndex`, which becomes the new placeholder
   * position. The driver must have a snapshot covering `compactIndex` before it compacts, or a
   * lagging follower can no longer be caught up. Throws CompactedError if compactIndex is at or
   * below the current first placeholder, InvariantError if it is beyond lastIndex().
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new CompactedError();
    if (compactIndex > this.lastIndex()) {
      throw new InvariantError(`compact ${compactIndex} is beyond last index ${this.lastIndex()}`);
    }
    const i = compactIndex - offset;
    const at = this.ents[i]!;
    const next: Entry[] = new Array<Entry>(this.ents.length - i);
    next[0] = dummyEntry(at.index, at.term);
    for (let k = 1; k < next.length; k++) next[k] = this.ents[i + k]!;
    this.ents = next;
  }

  /**
   * Appends entries that the driver has persisted. Entries must be contiguous; an entry whose
   * index is already held replaces it and everything after it (a conflicting tail is cut).
   * Entries at or below the snapshot are skipped. Throws InvariantError on a gap.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const e0 = entries[0]!.index;
    const last = e0 + entries.length - 1;
    if (last < first) return;
    const skip = first > e0 ? first - e0 : 0;
    const start = e0 + skip;
    const offset = start - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new InvariantError(`missing log entries: last ${this.lastIndex()}, appending at ${start}`);
    }
    if (offset < this.ents.length) this.ents.length = offset;
    for (let k = skip; k < entries.length; k++) this.ents.push(entries[k]!);
  }
}
