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

/**
 * Kinds of Raft messages. The numbering follows etcd's raftpb.MessageType so that traces and
 * encoded messages read the same way.
 *
 * Local kinds (never sent over the network): MsgHup, MsgBeat, MsgUnreachable, MsgSnapStatus,
 * MsgCheckQuorum.
 */
export enum MessageType {
  /** Local: start an election (or pre-election). */
  MsgHup = 0,
  /** Local: the leader's heartbeat timer fired. */
  MsgBeat = 1,
  /** A proposal: local on the leader, forwarded by followers. */
  MsgProp = 2,
  /** Append entries (also a probe when `entries` is empty). */
  MsgApp = 3,
  /** Answer to MsgApp or MsgSnap; `index` is the follower's matching index or the rejected probe index. */
  MsgAppResp = 4,
  /** Request a vote. */
  MsgVote = 5,
  /** Answer to MsgVote. */
  MsgVoteResp = 6,
  /** Install a snapshot. */
  MsgSnap = 7,
  /** Leader heartbeat; carries `commit` (bounded by the follower's match) and an optional read context. */
  MsgHeartbeat = 8,
  /** Answer to MsgHeartbeat, echoing its context. */
  MsgHeartbeatResp = 9,
  /** Local: the transport could not reach `from`. */
  MsgUnreachable = 10,
  /** Local: the outcome of sending a snapshot to `from` (`reject` = failed). */
  MsgSnapStatus = 11,
  /** Local: the leader checks that a quorum was recently active. */
  MsgCheckQuorum = 12,
  /** Transfer leadership to `from` (local on the leader, forwarded by followers). */
  MsgTransferLeader = 13,
  /** Tell the transferee to campaign at once, bypassing pre-vote and leases. */
  MsgTimeoutNow = 14,
  /** Ask for a read index; the request context is in `context`. */
  MsgReadIndex = 15,
  /** Answer to a forwarded MsgReadIndex: `index` is the read index, `context` the request context. */
  MsgReadIndexResp = 16,
  /** Request a pre-vote (for term `term`, which the sender has not adopted). */
  MsgPreVote = 17,
  /** Answer to MsgPreVote. */
  MsgPreVoteResp = 18,
}

/**
 * One Raft message. Every field is always present (zero values when unused) except `snapshot`
 * (only on MsgSnap) and `context` (read contexts, campaign-transfer marker). The receiver must not
 * mutate `entries` or their data.
 */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  /** The sender's term; 0 for local messages and proposals. */
  term: number;
  /** Term of the entry at `index` (MsgApp, votes), or the hint term on a rejected MsgAppResp. */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** On a rejected MsgAppResp: the index the follower suggests probing next. */
  rejectHint: number;
  snapshot?: Snapshot;
  context?: Uint8Array;
}

/** Kinds of single-step membership changes. */
export type ConfChangeType = 'add-node' | 'add-learner' | 'remove-node';

/**
 * One membership change. `add-node` on an existing learner promotes it; `add-learner` on a voter
 * demotes it; `remove-node` removes a voter or a learner. `context` is opaque to the core (the
 * server stores member attributes there).
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

/** The role a member currently plays. */
export type RaftRole = 'follower' | 'candidate' | 'pre-candidate' | 'leader';

/** Volatile state worth reporting (not persisted): the known leader and this member's role. */
export interface SoftState {
  lead: NodeId;
  role: RaftRole;
}

/**
 * The answer to a readIndex request: once the local applied index reaches `index`, a read that
 * started before the request is linearizable. `ctx` is the request's context, unchanged.
 */
export interface ReadState {
  index: number;
  ctx: Uint8Array;
}
