/**
 * The public entry to the Raft core. Everything else in src/raft is an implementation detail
 * (except the types, storage, codecs and errors re-exported below).
 *
 * ## The driver contract
 *
 * Exactly one driver owns a RawNode and calls it from one loop:
 *
 * 1. feed input: tick() on a timer, step() for every message from a peer, propose*(),
 *    readIndex(), transferLeader(), report*();
 * 2. when hasReady(), take rd = ready(), then in this order:
 *    a. persist rd.snapshot (if any), rd.entries and rd.hardState (if any), with one fdatasync
 *       when rd.mustSync, and mirror them into the MemoryStorage (applySnapshot, append,
 *       setHardState);
 *    b. send rd.messages. A leader may send before its persist finishes; every other role must
 *       send only after step (a) is durable, because its messages (votes, append acks) promise
 *       that state is on disk;
 *    c. apply rd.snapshot (if any), then rd.committedEntries in order, calling
 *       applyConfChange() for each EntryType.ConfChange entry;
 *    d. call advance().
 *
 * The same entries may appear in rd.entries and rd.committedEntries of one Ready (a single
 * member commits its own entries at once). That is safe only because step (a) always completes
 * before step (c): entries are durable before they are applied. Likewise the leader counts its
 * own copy of an entry before persisting it; the commit index that results only leaves in a
 * later Ready, after this one's persist.
 *
 * Calling ready() again before advance() throws InvariantError. Input may arrive between
 * ready() and advance() (while the driver awaits its disk); it shows in the next Ready.
 */
import { applyChange } from './confchange/changer';
import { encodeConfChange } from './confchange/codec';
import { InvariantError, ProposalDroppedError } from './errors';
import { discardLogger } from './logger';
import type { RaftLogger } from './logger';
import type { MemoryStorage } from './memory-storage';
import { isLocalMessage, isResponseMessage, newMessage } from './message';
import { applyConfChange } from './membership';
import { Raft } from './raft';
import { announceCommitIfDurable, commitForPeers } from './replication';
import type { Rng } from './rng';
import type { ProgressState } from './tracker/progress';
import { EntryType, MessageType, NONE, isEmptyHardState } from './types';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftRole,
  ReadState,
  Snapshot,
  SoftState,
} from './types';

// The rest of the public surface: codecs, errors, storage, randomness and shared types.
export { encodeConfChange, decodeConfChange } from './confchange/codec';
export { decodeMessage, encodeMessage } from './message-codec';
export {
  CompactedError,
  ConfChangeError,
  DecodeError,
  InvariantError,
  ProposalDroppedError,
  SnapshotOutOfDateError,
  UnavailableError,
} from './errors';
export { MemoryStorage } from './memory-storage';
export { SeededRng } from './rng';
export type { Rng } from './rng';
export type { LogLevel, RaftLogger } from './logger';
export { EntryType, MessageType, NONE, nodeId } from './types';
export type {
  ConfChange,
  ConfChangeType,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftRole,
  ReadState,
  Snapshot,
  SnapshotMeta,
  SoftState,
} from './types';

/** Settings of one member. Ticks are the driver's logical clock units. */
export interface RaftConfig {
  /** This member's id; never NONE. */
  id: NodeId;
  /** Ticks a follower waits without hearing from a leader before campaigning; the actual timeout is drawn from [electionTick, 2 * electionTick). Must exceed heartbeatTick. */
  electionTick: number;
  /** Ticks between leader heartbeats; ≥ 1. */
  heartbeatTick: number;
  /** The stable log, already filled from the WAL on restart. */
  storage: MemoryStorage;
  /** The last index the state machine applied before a restart: ≥ the snapshot index and ≤ the persisted commit index; 0 or omitted for none. Configuration changes above it are delivered again and must be applied again. */
  applied?: number;
  /** Byte bound of the entries in one append message; default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte bound of committed entries in one Ready; default maxSizePerMsg. */
  maxCommittedSizePerReady?: number;
  /** Append messages in flight per follower; default 256. */
  maxInflightMsgs?: number;
  /** Payload bytes in flight per follower; default 0 (no byte limit, only the message count). */
  maxInflightBytes?: number;
  /** Leader steps down when a quorum was not heard from within an election timeout, and followers ignore votes within a leader lease; default true. */
  checkQuorum?: boolean;
  /** Run a pre-election before incrementing the term; default true. */
  preVote?: boolean;
  /** Randomness for election timeouts. */
  rng: Rng;
  /** Structured log sink; default discards. */
  logger?: RaftLogger;
}

/**
 * One batch of work for the driver (see the contract at the top of this file). Arrays belong to
 * the driver; entries and snapshots are shared with the core and must not be mutated.
 */
export interface Ready {
  /** Present when the leader or this member's role changed since the last Ready. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist it. */
  hardState?: HardState;
  /** Entries to persist before sending messages that depend on them. */
  entries: Entry[];
  /** A snapshot received from the leader: persist it, then restore the state machine from it. */
  snapshot?: Snapshot;
  /** Entries to apply, in order, after persisting this Ready. */
  committedEntries: Entry[];
  /** Messages to send (see the contract for when). */
  messages: Message[];
  /** Answered readIndex requests. */
  readStates: ReadState[];
  /** True when the persist must be followed by an fdatasync before messages leave (new entries, a new term or vote, or a snapshot). */
  mustSync: boolean;
}

/** The leader's view of one member. */
export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
}

/** The scalar part of a member's Raft state. Owned by the caller. */
export interface BasicStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lead: NodeId;
  role: RaftRole;
}

/** A snapshot of a member's Raft state, for status reporting. Owned by the caller. */
export interface RaftStatus extends BasicStatus {
  /** Leader only: progress of every member, including itself. */
  progress?: Map<NodeId, ProgressStatus>;
  config: ConfState;
  leadTransferee: NodeId;
}

/** A bootstrap member. */
export interface BootstrapPeer {
  id: NodeId;
  learner?: boolean;
  context?: Uint8Array;
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

/** A member's Raft core, driven by a single driver loop (see the file comment). */
export class RawNode {
  private readonly raft: Raft;
  private readonly storage: MemoryStorage;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** The Ready handed out and not yet advanced. */
  private outstanding: Ready | undefined = undefined;

  /** Restores a member from `cfg.storage`. Throws InvariantError on invalid settings or inconsistent storage. */
  constructor(cfg: RaftConfig) {
    if (cfg.id === NONE) throw new InvariantError('cannot use 0 as a member id');
    if (!Number.isSafeInteger(cfg.heartbeatTick) || cfg.heartbeatTick <= 0) {
      throw new InvariantError('heartbeat tick must be greater than 0');
    }
    if (!Number.isSafeInteger(cfg.electionTick) || cfg.electionTick <= cfg.heartbeatTick) {
      throw new InvariantError('election tick must be greater than heartbeat tick');
    }
    const maxInflightMsgs = cfg.maxInflightMsgs ?? 256;
    if (maxInflightMsgs <= 0) throw new InvariantError('max inflight messages must be greater than 0');
    const maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.storage = cfg.storage;
    this.raft = new Raft({
      id: cfg.id,
      electionTick: cfg.electionTick,
      heartbeatTick: cfg.heartbeatTick,
      storage: cfg.storage,
      applied: cfg.applied ?? 0,
      maxSizePerMsg,
      maxCommittedSizePerReady: cfg.maxCommittedSizePerReady ?? maxSizePerMsg,
      maxInflightMsgs,
      maxInflightBytes: cfg.maxInflightBytes ?? 0,
      checkQuorum: cfg.checkQuorum ?? true,
      preVote: cfg.preVote ?? true,
      rng: cfg.rng,
      logger: cfg.logger ?? discardLogger,
    });
    this.prevSoftState = this.raft.softState();
    this.prevHardState = cfg.storage.lastIndex() === 0 ? EMPTY_HARD_STATE : this.raft.hardState();
  }

  /**
   * For a brand-new cluster only: seeds the empty log with one committed configuration-change
   * entry per peer (term 1, indexes 1..n) and applies them, so every member that bootstraps
   * with the same list starts with the same configuration. The entries appear in the next
   * Ready (to persist, then as committed entries to apply; applying them again is harmless).
   * Throws InvariantError if the log is not empty, `peers` has no voter, or ids repeat.
   */
  bootstrap(peers: BootstrapPeer[]): void {
    const r = this.raft;
    if (r.log.lastIndex() !== 0 || r.term !== 0) throw new InvariantError('can only bootstrap an empty member');
    if (!peers.some((p) => p.learner !== true)) throw new InvariantError('bootstrap needs at least one voter');
    const seen = new Set<NodeId>();
    for (const p of peers) {
      if (p.id === NONE || seen.has(p.id)) throw new InvariantError(`invalid or repeated bootstrap peer ${p.id}`);
      seen.add(p.id);
    }
    r.becomeFollower(1, NONE);
    const changes: ConfChange[] = peers.map((p) => {
      const cc: ConfChange = { type: p.learner === true ? 'add-learner' : 'add-node', nodeId: p.id };
      if (p.context !== undefined) cc.context = p.context;
      return cc;
    });
    const ents: Entry[] = changes.map((cc, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange(cc),
    }));
    r.log.append(ents);
    r.log.committed = ents.length;
    // Voters first, so a learner listed first never meets an empty configuration.
    for (const cc of changes) if (cc.type === 'add-node') applyConfChange(r, cc);
    for (const cc of changes) if (cc.type === 'add-learner') applyConfChange(r, cc);
    r.bootstrapConfIndex = ents.length;
  }

  /** Advances the logical clock by one tick (elections, heartbeats, quorum checks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (a pre-election first when preVote is on). Does nothing for a leader, a learner or a non-member. */
  campaign(): void {
    this.raft.step(newMessage(MessageType.MsgHup, NONE));
  }

  /**
   * Proposes one entry with `data` (an encoded command). On the leader it is appended; a
   * follower forwards it to the leader. Acceptance is not commitment: the entry may still be
   * lost (the driver matches applied entries to proposals). Throws ProposalDroppedError when
   * there is no leader, a leadership transfer is in progress, or this leader was removed.
   */
  propose(data: Uint8Array): void {
    this.proposeEntries([{ term: 0, index: 0, type: EntryType.Normal, data }]);
  }

  /**
   * Proposes several entries in one message (cheaper than one propose() per entry: one append
   * and one message per follower). Same errors as propose(); all or none are accepted.
   */
  proposeBatch(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    this.proposeEntries(data.map((d) => ({ term: 0, index: 0, type: EntryType.Normal, data: d })));
  }

  /**
   * Proposes a membership change. Throws ConfChangeError if it is invalid for the current
   * configuration (it would remove the last voter), ProposalDroppedError for the reasons of
   * propose() and, on the leader, while an earlier change is not yet applied.
   */
  proposeConfChange(cc: ConfChange): void {
    applyChange(this.raft.prs.config, cc);
    this.proposeEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
  }

  private proposeEntries(entries: Entry[]): void {
    const m = newMessage(MessageType.MsgProp, NONE);
    m.entries = entries;
    if (!this.raft.step(m)) throw new ProposalDroppedError(this.raft.dropReason);
  }

  /**
   * Applies a committed configuration change (the driver calls this while applying the entry)
   * and returns the resulting configuration. An invalid change is skipped identically on every
   * member and the unchanged configuration is returned. A leader that removed or demoted
   * itself steps down and asks the most caught-up voter to campaign.
   */
  applyConfChange(cc: ConfChange): ConfState {
    return applyConfChange(this.raft, cc);
  }

  /**
   * Delivers a message from a peer. Local message kinds, and answers from non-members, are
   * ignored; so are proposals that cannot be forwarded (the proposer times out).
   */
  step(m: Message): void {
    if (isLocalMessage(m.type)) {
      this.raft.logger('warn', 'ignoring a local message kind received from the network', { type: m.type });
      return;
    }
    if (isResponseMessage(m.type) && !this.raft.prs.progress.has(m.from)) return;
    if (m.type === MessageType.MsgProp && m.entries.length === 0) return;
    this.raft.step(m);
  }

  /**
   * Requests a read index for `ctx` (non-empty, unique among pending requests, e.g. a request
   * id). The answer arrives as a ReadState with the same ctx in a later Ready; a follower asks
   * the leader. A request can be lost (leader change); the driver retries on timeout. Throws
   * ProposalDroppedError when there is no leader, InvariantError for an empty ctx.
   */
  readIndex(ctx: Uint8Array): void {
    if (ctx.length === 0) throw new InvariantError('read index context must not be empty');
    const m = newMessage(MessageType.MsgReadIndex, NONE);
    m.context = ctx;
    if (!this.raft.step(m)) throw new ProposalDroppedError(this.raft.dropReason);
  }

  /**
   * Asks the leader to hand leadership to `to` (a voter): it catches `to` up, then tells it to
   * campaign at once; proposals are refused meanwhile; the attempt is abandoned after an
   * election timeout. A follower forwards the request. Throws ProposalDroppedError when there
   * is no leader or `to` is not a voter.
   */
  transferLeader(to: NodeId): void {
    const m = newMessage(MessageType.MsgTransferLeader, NONE);
    m.from = to;
    if (!this.raft.step(m)) throw new ProposalDroppedError(this.raft.dropReason);
  }

  /** True when ready() would return something new. False while a Ready is outstanding. */
  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHardState(hs, this.prevHardState)) return true;
    if (r.log.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.log.unstable.entries.length > 0 || r.log.hasNextEntries()) return true;
    return r.readStates.length > 0;
  }

  /** Takes the next batch of work. Throws InvariantError if the previous one was not advanced. */
  ready(): Ready {
    if (this.outstanding !== undefined) throw new InvariantError('ready() called again before advance()');
    const r = this.raft;
    const rd: Ready = {
      entries: r.log.unstableEntries(),
      committedEntries: r.log.nextEntries(),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.role !== this.prevSoftState.role) rd.softState = ss;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHardState(hs, this.prevHardState)) rd.hardState = hs;
    const snap = r.log.unstable.snapshot;
    if (snap !== undefined) rd.snapshot = snap;
    rd.mustSync =
      rd.entries.length > 0 ||
      snap !== undefined ||
      hs.term !== this.prevHardState.term ||
      hs.vote !== this.prevHardState.vote;
    r.msgs = [];
    r.readStates = [];
    this.outstanding = rd;
    return rd;
  }

  /**
   * Reports that the outstanding Ready was fully handled (persisted, sent, applied). Throws
   * InvariantError when no Ready is outstanding.
   */
  advance(): void {
    const rd = this.outstanding;
    if (rd === undefined) throw new InvariantError('advance() called without ready()');
    this.outstanding = undefined;
    const log = this.raft.log;
    if (rd.softState !== undefined) this.prevSoftState = rd.softState;
    if (rd.hardState !== undefined) this.prevHardState = rd.hardState;
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied !== undefined) log.appliedTo(lastApplied.index);
    else if (rd.snapshot !== undefined) log.appliedTo(rd.snapshot.meta.index);
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      const announced = commitForPeers(this.raft);
      log.stableTo(lastEntry.index, lastEntry.term);
      announceCommitIfDurable(this.raft, announced);
    }
    if (rd.snapshot !== undefined) log.stableSnapTo(rd.snapshot.meta.index);
  }

  /** The cheap part of status(): no configuration, no progress. */
  basicStatus(): BasicStatus {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.role,
    };
  }

  /** The current state, for reporting. */
  status(): RaftStatus {
    const r = this.raft;
    const st: RaftStatus = {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      role: r.role,
      config: r.prs.confState(),
      leadTransferee: r.leadTransferee,
    };
    if (r.role === 'leader') {
      const progress = new Map<NodeId, ProgressStatus>();
      for (const [id, pr] of r.prs.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
          isLearner: pr.isLearner,
        });
      }
      st.progress = progress;
    }
    return st;
  }

  /** The transport could not deliver to `id`: the leader stops streaming to it and probes instead. */
  reportUnreachable(id: NodeId): void {
    const m = newMessage(MessageType.MsgUnreachable, NONE);
    m.from = id;
    this.raft.step(m);
  }

  /** Outcome of sending a snapshot to `id`; the leader resumes probing it either way. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const m = newMessage(MessageType.MsgSnapStatus, NONE);
    m.from = id;
    m.reject = !ok;
    this.raft.step(m);
  }

  /** The index range of this member's log (persisted or not): [firstIndex, lastIndex]; empty when lastIndex < firstIndex. */
  logBounds(): { firstIndex: number; lastIndex: number } {
    return { firstIndex: this.raft.log.firstIndex(), lastIndex: this.raft.log.lastIndex() };
  }

  /**
   * The term of the entry at `index` in this member's log (persisted or not), or undefined when
   * it is compacted or beyond the end. For diagnostics and tests.
   */
  termAt(index: number): number | undefined {
    if (index > this.raft.log.lastIndex()) return undefined;
    return this.raft.log.termOrUndefined(index);
  }

  /** The storage this member reads its stable log from. */
  get memoryStorage(): MemoryStorage {
    return this.storage;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
