/**
 * Types shared by the Raft core, its storage and its driver.
 *
 * Terms and indexes are plain numbers (they stay far below 2^53); member ids are 64-bit
 * and therefore `bigint`, branded so they cannot be mixed with other 64-bit ids.
 */

/** A member (node) id: 64-bit, never 0 for a real member. `NONE` (0n) means "no member". */
export type NodeId = bigint & { readonly __brand: 'NodeId' };

/** Makes a NodeId from a bigint. */
export function nodeId(v: bigint): NodeId {
  return v as NodeId;
}

/** The absent member id (no leader, no vote). */
export const NONE: NodeId = 0n as NodeId;

/** Kinds of log entries. */
export enum EntryType {
  /** An application command (an encoded internal request) or an empty entry (`data.length === 0`). */
  Normal = 0,
  /** A membership change; `data` is an encoded ConfChange (see conf-change encoding in src/raft). */
  ConfChange = 1,
}

/** One Raft log entry. `index` ≥ 1; `term` ≥ 1. The entry owns `data`; callers must not mutate it. */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** State that must be durable before messages that depend on it are sent. Invariant: commit ≤ last log index. */
export interface HardState {
  term: number;
  /** The member voted for in `term`, or NONE. */
  vote: NodeId;
  commit: number;
}

/** The membership configuration recorded in a snapshot. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** Snapshot metadata: the log position the snapshot covers and the configuration at that point. */
export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

/**
 * A snapshot as the core sees it. `data` is opaque to the core: the driver decides what it holds
 * (for the state machine, a reference to a streamed state dump, not the dump itself).
 */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** True when the hard state is the zero value (nothing to persist). */
export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}
