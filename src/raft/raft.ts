import { fromConfState } from './confchange/changer';
import { InvariantError } from './errors';
import type { RaftLogger } from './logger';
import type { Storage } from './memory-storage';
import {
  CAMPAIGN_TRANSFER,
  isCampaignTransfer,
  messageTypeName,
  newMessage,
  voteResponseType,
} from './message';
import type { VoteResult } from './quorum/majority';
import { RaftLog } from './raft-log';
import { ReadOnlyQueue } from './read-index';
import type { Rng } from './rng';
import { stepCandidate } from './step-candidate';
import { switchToConfig } from './membership';
import { stepFollower } from './step-follower';
import { stepLeader } from './step-leader';
import { ProgressTracker } from './tracker/progress-tracker';
import { EntryType, MessageType, NONE, isEmptyHardState } from './types';
import type {
  Entry,
  HardState,
  Message,
  NodeId,
  RaftRole,
  ReadState,
  SoftState,
} from './types';

/** How an election is started. */
export type CampaignType = 'pre-election' | 'election' | 'transfer';

/** Settings of the core, already validated and defaulted by RawNode. */
export interface RaftOptions {
  id: NodeId;
  /** Ticks without hearing from a leader before campaigning (randomized into [e, 2e)). */
  electionTick: number;
  /** Ticks between leader heartbeats. */
  heartbeatTick: number;
  storage: Storage;
  /** Index already applied by the state machine (restart); 0 for none. */
  applied: number;
  /** Byte bound of the entries in one append message. */
  maxSizePerMsg: number;
  /** Byte bound of the committed entries handed out in one Ready. */
  maxCommittedSizePerReady: number;
  /** Appends in flight per follower. */
  maxInflightMsgs: number;
  /** Payload bytes in flight per follower; 0 for no limit. */
  maxInflightBytes: number;
  checkQuorum: boolean;
  preVote: boolean;
  rng: Rng;
  logger: RaftLogger;
}

const EMPTY = new Uint8Array(0);

/**
 * The Raft state machine of one member. Pure and synchronous: input arrives through step()
 * and tick(); output accumulates in `msgs`, `readStates` and the log's unstable part, which
 * RawNode turns into Ready batches.
 *
 * This class holds the state shared by all roles, term handling, role transitions and
 * elections; per-role message handling is in step-leader.ts, step-candidate.ts and
 * step-follower.ts, outgoing replication in replication.ts, configuration changes in
 * membership.ts.
 */
export class Raft {
  readonly id: NodeId;
  /** Current term. Never decreases. Persisted (hard state). */
  term = 0;
  /** Whom this member voted for in `term`, or NONE. Persisted. At most one vote per term. */
  vote: NodeId = NONE;
  /** The leader of `term` as far as known, or NONE. */
  lead: NodeId = NONE;
  role: RaftRole = 'follower';
  readonly log: RaftLog;
  /** Configuration and per-member progress (progress is meaningful only on the leader). */
  readonly prs: ProgressTracker;
  /** Messages to send, in order. Taken (and replaced) by RawNode.ready(). */
  msgs: Message[] = [];
  /** Answered read requests. Taken (and replaced) by RawNode.ready(). */
  readStates: ReadState[] = [];
  /** Leader only: the member leadership is being transferred to, or NONE. */
  leadTransferee: NodeId = NONE;
  /**
   * Leader only: index of the latest configuration change entry that may not be applied yet.
   * A new change is accepted only when pendingConfIndex ≤ applied.
   */
  pendingConfIndex = 0;
  /** Leader only: read requests waiting for a heartbeat quorum. */
  readOnly = new ReadOnlyQueue();
  /** Leader only: read requests that arrived before an entry of this term was committed. */
  pendingReadIndexMessages: Message[] = [];
  /**
   * Configuration-change entries at or below this index were applied to the configuration by
   * bootstrap() already, so they do not block campaigning while they wait to be applied.
   */
  bootstrapConfIndex = 0;
  /** Ticks since the last election timeout reset (leaders: since the last quorum check). */
  electionElapsed = 0;
  /** Leader only: ticks since the last heartbeat. */
  heartbeatElapsed = 0;
  /** Election timeout for this term, in [electionTimeout, 2 * electionTimeout). */
  randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly maxMsgSize: number;
  readonly logger: RaftLogger;
  private readonly rng: Rng;
  /** Why the last step() returned false (a dropped proposal). */
  dropReason = '';

  /** Restores a member from `opts.storage` (hard state, snapshot configuration, entries) as a follower. */
  constructor(opts: RaftOptions) {
    this.id = opts.id;
    this.electionTimeout = opts.electionTick;
    this.heartbeatTimeout = opts.heartbeatTick;
    this.checkQuorum = opts.checkQuorum;
    this.preVote = opts.preVote;
    this.maxMsgSize = opts.maxSizePerMsg;
    this.logger = opts.logger;
    this.rng = opts.rng;
    this.log = new RaftLog(opts.storage, opts.maxCommittedSizePerReady);
    this.prs = new ProgressTracker(opts.maxInflightMsgs, opts.maxInflightBytes);
    const { hardState, confState } = opts.storage.initialState();
    switchToConfig(this, fromConfState(confState));
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (opts.applied > 0) this.log.appliedTo(opts.applied);
    this.becomeFollower(this.term, NONE);
  }

  /** The volatile state worth reporting. */
  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /** The state that must be persisted. */
  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private loadState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new InvariantError(
        `hard state commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queues `m` for sending. `from` defaults to this member. Vote messages carry their own term;
   * every other message gets the current term, except proposals and read requests, which are
   * forwarded as if local (term 0).
   */
  send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    const t = m.type;
    if (
      t === MessageType.MsgVote ||
      t === MessageType.MsgVoteResp ||
      t === MessageType.MsgPreVote ||
      t === MessageType.MsgPreVoteResp
    ) {
      if (m.term === 0) throw new InvariantError(`term must be set when sending ${messageTypeName(t)}`);
    } else {
      if (m.term !== 0) throw new InvariantError(`term must not be preset when sending ${messageTypeName(t)}`);
      if (t !== MessageType.MsgProp && t !== MessageType.MsgReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  // ---------------------------------------------------------------- log and commit

  /**
   * Leader: appends proposals to the log with the current term and the next indexes (the
   * entries are copied, never mutated), counts its own copy, and commits what a quorum holds.
   */
  appendEntries(es: readonly Entry[]): void {
    const li = this.log.lastIndex();
    const copies: Entry[] = new Array<Entry>(es.length);
    for (let k = 0; k < es.length; k++) {
      const e = es[k]!;
      copies[k] = { term: this.term, index: li + 1 + k, type: e.type, data: e.data };
    }
    const last = this.log.append(copies);
    const self = this.prs.progress.get(this.id);
    if (self !== undefined) self.maybeUpdate(last);
    this.maybeCommit();
  }

  /** Leader: moves commit to the highest current-term index a quorum holds. Returns whether it moved. */
  maybeCommit(): boolean {
    return this.log.maybeCommit(this.prs.committed(), this.term);
  }

  /** True once the leader has committed an entry of its own term (it knows the full commit index). */
  committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------- roles

  /** Becomes a follower of `lead` (or of nobody) in `term`. */
  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.logger('debug', 'became follower', { id: this.id, term, lead });
  }

  /** Starts an election: next term, votes for itself. */
  becomeCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.logger('info', 'became candidate', { id: this.id, term: this.term });
  }

  /** Starts a pre-election: term and vote unchanged, lead forgotten. */
  becomePreCandidate(): void {
    if (this.role === 'leader') throw new InvariantError('invalid transition [leader -> pre-candidate]');
    this.prs.resetVotes();
    this.lead = NONE;
    this.role = 'pre-candidate';
    this.logger('info', 'became pre-candidate', { id: this.id, term: this.term });
  }

  /** Becomes leader of the current term and appends an empty entry to commit the earlier ones. */
  becomeLeader(): void {
    if (this.role === 'follower') throw new InvariantError('invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.prs.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }]);
    // No configuration change until this term's first entry is applied: entries of earlier
    // terms may hide changes not applied yet, and a leader must commit an entry of its own term
    // before changing the configuration (the fix for single-step changes, Ongaro 2015).
    this.pendingConfIndex = this.log.lastIndex();
    this.logger('info', 'became leader', { id: this.id, term: this.term });
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.rng.intn(this.electionTimeout);
    this.abortLeaderTransfer();
    this.prs.resetVotes();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.prs.progress) {
      this.prs.progress.set(id, this.prs.newProgress(id === this.id ? last : 0, last + 1, pr.isLearner, false));
    }
    this.pendingConfIndex = 0;
    this.readOnly = new ReadOnlyQueue();
    this.pendingReadIndexMessages = [];
  }

  /** Forgets a leadership transfer in progress. */
  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** True if this member may campaign: it is a voter and no snapshot waits to be persisted. */
  promotable(): boolean {
    return this.prs.isVoter(this.id) && !this.log.hasPendingSnapshot();
  }

  // ---------------------------------------------------------------- time

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(newMessage(MessageType.MsgHup, NONE));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage(MessageType.MsgCheckQuorum, NONE));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.role === 'leader' && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage(MessageType.MsgBeat, NONE));
    }
  }

  // ---------------------------------------------------------------- elections

  /** Handles a request to campaign (timeout, campaign() or MsgTimeoutNow), if this member may. */
  hup(t: CampaignType): void {
    if (this.role === 'leader') {
      this.logger('debug', 'ignoring campaign request: already leader', { id: this.id });
      return;
    }
    if (!this.promotable()) {
      this.logger('warn', 'cannot campaign: not a voter or a snapshot is pending', { id: this.id });
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger('warn', 'cannot campaign: configuration changes wait to be applied', {
        id: this.id,
        term: this.term,
      });
      return;
    }
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    const lo = Math.max(this.log.applied, this.bootstrapConfIndex) + 1;
    const hi = this.log.committed + 1;
    for (let at = lo; at < hi; ) {
      const page = this.log.slice(at, hi, 1 << 20);
      for (const e of page) if (e.type === EntryType.ConfChange) return true;
      at += page.length;
    }
    return false;
  }

  /** Runs a (pre-)election: becomes (pre-)candidate, votes for itself, asks every other voter. */
  campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let voteType: MessageType.MsgVote | MessageType.MsgPreVote;
    let term: number;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteType = MessageType.MsgPreVote;
      term = this.term + 1; // the term we would campaign in; not adopted yet
    } else {
      this.becomeCandidate();
      voteType = MessageType.MsgVote;
      term = this.term;
    }
    if (this.poll(this.id, voteResponseType(voteType), true) === 'won') {
      // A single voter wins at once.
      if (t === 'pre-election') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.prs.config.voters) {
      if (id === this.id) continue;
      const m = newMessage(voteType, id);
      m.term = term;
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === 'transfer') m.context = CAMPAIGN_TRANSFER;
      this.send(m);
    }
  }

  /** Records a vote and returns the election outcome so far. */
  poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    this.logger('debug', granted ? 'received vote' : 'received rejection', {
      id: this.id,
      from: id,
      type: messageTypeName(t),
      term: this.term,
    });
    this.prs.recordVote(id, granted);
    return this.prs.tallyVotes().result;
  }

  // ---------------------------------------------------------------- input

  /**
   * Handles one message: term checks first (Raft §5.1, pre-vote and leader-lease rules), then
   * votes, then the role's handler. Returns false when a proposal-like message was dropped
   * (`dropReason` says why); true otherwise (including messages ignored as stale).
   */
  step(m: Message): boolean {
    if (m.term === 0) {
      // local message or forwarded proposal / read request
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // Leader lease: we heard from a leader within the election timeout, so this
          // candidate is probably partitioned or removed; do not let it disrupt the cluster.
          this.logger('debug', 'ignoring vote request within leader lease', {
            id: this.id,
            from: m.from,
            term: this.term,
            msgTerm: m.term,
            type: messageTypeName(m.type),
          });
          return true;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // Granted pre-votes carry the future term; the term moves when the real election starts.
      } else if (
        m.type === MessageType.MsgApp ||
        m.type === MessageType.MsgHeartbeat ||
        m.type === MessageType.MsgSnap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader (e.g. one that was partitioned) would otherwise never learn our term:
        // with leases and pre-vote, our vote requests do not reach it. Answer so it steps down.
        this.send(newMessage(MessageType.MsgAppResp, m.from));
      } else if (m.type === MessageType.MsgPreVote) {
        const r = newMessage(MessageType.MsgPreVoteResp, m.from);
        r.term = this.term;
        r.reject = true;
        this.send(r);
      }
      return true;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        return true;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote:
        this.handleVoteRequest(m);
        return true;
      default:
        switch (this.role) {
          case 'leader':
            return stepLeader(this, m);
          case 'candidate':
          case 'pre-candidate':
            return stepCandidate(this, m);
          case 'follower':
            return stepFollower(this, m);
        }
    }
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === MessageType.MsgPreVote;
    // We may vote again for the member we voted for; otherwise only if we have not voted and
    // know no leader in this term. A pre-vote for a later term is always possible.
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (pre && m.term > this.term);
    const resp = newMessage(voteResponseType(pre ? MessageType.MsgPreVote : MessageType.MsgVote), m.from);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // The answer carries the request's term: a granted pre-vote is for the future term.
      resp.term = m.term;
      this.send(resp);
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      resp.term = this.term;
      resp.reject = true;
      this.send(resp);
    }
    this.logger('debug', resp.reject ? 'rejected vote' : 'cast vote', {
      id: this.id,
      type: messageTypeName(m.type),
      candidate: m.from,
      term: this.term,
    });
  }

  /** Marks the current step as a dropped proposal and returns false. */
  drop(reason: string): false {
    this.dropReason = reason;
    return false;
  }

}
