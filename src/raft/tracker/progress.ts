import { Inflights } from './inflights';

/**
 * How the leader replicates to one follower:
 * - `probe`: the follower's log position is unknown; send one append at a time and wait for its
 *   answer (or a heartbeat answer) before the next;
 * - `replicate`: the follower matched; stream appends optimistically, bounded by the in-flight
 *   window;
 * - `snapshot`: a snapshot was sent; send nothing until its outcome is reported.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * The leader's view of one member's log.
 *
 * Invariants: match < next; in `snapshot` state pendingSnapshot > 0; in `replicate` state
 * inflights hold only indexes in (match, next).
 */
export class Progress {
  /** Highest index known to be replicated on the member. */
  match: number;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = 'probe';
  /** In `snapshot` state: the index of the snapshot sent. */
  pendingSnapshot = 0;
  /**
   * True if the member was heard from since the last quorum check. Used by CheckQuorum, and to
   * avoid sending snapshots to members that seem down.
   */
  recentActive: boolean;
  /**
   * In `probe` state: a probe is outstanding; cleared by any answer (append or heartbeat
   * response) from the member. (In `replicate` state the in-flight window decides instead.)
   */
  msgAppFlowPaused = false;
  /** Appends in flight (used in `replicate` state). */
  readonly inflights: Inflights;
  /** True if the member is a learner (receives the log, never votes). */
  isLearner: boolean;

  /** A fresh progress in `probe` state. */
  constructor(opts: {
    match: number;
    next: number;
    maxInflight: number;
    maxInflightBytes: number;
    isLearner: boolean;
    recentActive: boolean;
  }) {
    this.match = opts.match;
    this.next = opts.next;
    this.inflights = new Inflights(opts.maxInflight, opts.maxInflightBytes);
    this.isLearner = opts.isLearner;
    this.recentActive = opts.recentActive;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  /**
   * Switches to `probe`. From `snapshot`, probing resumes after the snapshot if it was
   * delivered (pendingSnapshot still set), else after match.
   */
  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const ps = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, ps + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  /** Switches to `replicate`, resending from match + 1. */
  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  /** Switches to `snapshot`, waiting for the snapshot at `snapshotIndex` to be delivered. */
  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /**
   * Records that an append carrying `entries` entries (`bytes` of payload) starting at
   * `nextIndex` was sent: in `replicate` state next moves past them and the window fills; in
   * `probe` state the flow pauses until an answer.
   */
  updateOnEntriesSend(entries: number, bytes: number, nextIndex: number): void {
    if (this.state === 'replicate') {
      if (entries > 0) {
        const last = nextIndex + entries - 1;
        this.next = last + 1;
        this.inflights.add(last, bytes);
      }
    } else {
      this.msgAppFlowPaused = true;
    }
  }

  /**
   * The member acknowledged `n`. Returns true if match moved (and unpauses the flow); next never
   * falls behind n + 1.
   */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * The member rejected an append at index `rejected`, suggesting `matchHint` as the last index
   * that might match. Returns false if the rejection is stale (answers an older message), else
   * moves next back and returns true.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /** True if the leader must not send appends now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.msgAppFlowPaused;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
