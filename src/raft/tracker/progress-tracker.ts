import { committedIndex, voteResult } from '../quorum/majority';
import type { VoteResult } from '../quorum/majority';
import { toConfState } from '../confchange/changer';
import type { MembershipConfig } from '../confchange/changer';
import type { ConfState, NodeId } from '../types';
import { Progress } from './progress';

/**
 * The current configuration, per-member progress and the votes of the current election.
 *
 * Invariants: `progress` has exactly one entry per voter and learner; voters ∩ learners = ∅;
 * progress.get(id).isLearner ⇔ learners.has(id).
 */
export class ProgressTracker {
  private cfg: MembershipConfig = { voters: new Set(), learners: new Set() };
  private cachedConfState: ConfState = { voters: [], learners: [] };
  progress = new Map<NodeId, Progress>();
  /** Votes received in the current (pre-)election: true granted, false rejected. */
  readonly votes = new Map<NodeId, boolean>();
  /** Window size for new progresses (messages). */
  readonly maxInflight: number;
  /** Window byte budget for new progresses (0 = unlimited). */
  readonly maxInflightBytes: number;

  /** An empty tracker; new progresses get windows of the given size. */
  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  /** A new progress in `probe` state. */
  newProgress(match: number, next: number, isLearner: boolean, recentActive: boolean): Progress {
    return new Progress({
      match,
      next,
      maxInflight: this.maxInflight,
      maxInflightBytes: this.maxInflightBytes,
      isLearner,
      recentActive,
    });
  }

  /** The current configuration. Treat as read-only; replace it with setConfig. */
  get config(): MembershipConfig {
    return this.cfg;
  }

  /** Installs a new configuration (progress must be updated by the caller to match). */
  setConfig(cfg: MembershipConfig): void {
    this.cfg = cfg;
    this.cachedConfState = toConfState(cfg);
  }

  /** The configuration as sorted lists (a new object). */
  confState(): ConfState {
    const cs = this.cachedConfState;
    return { voters: cs.voters.slice(), learners: cs.learners.slice() };
  }

  /** True when there is exactly one voter. */
  isSingleton(): boolean {
    return this.config.voters.size === 1;
  }

  /** True if `id` is a voter. */
  isVoter(id: NodeId): boolean {
    return this.config.voters.has(id);
  }

  /** The highest index replicated on a majority of voters (by their match indexes). */
  committed(): number {
    return committedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** True if a majority of voters was active since the last check (the leader counts as active). */
  quorumActive(): boolean {
    return voteResult(this.config.voters, (id) => this.progress.get(id)?.recentActive ?? false) === 'won';
  }

  /** Forgets all votes. */
  resetVotes(): void {
    this.votes.clear();
  }

  /** Records `id`'s vote unless it already voted in this election. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts votes of voters only: how many granted, how many rejected, and the outcome. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.config.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    return { granted, rejected, result: voteResult(this.config.voters, (id) => this.votes.get(id)) };
  }
}
