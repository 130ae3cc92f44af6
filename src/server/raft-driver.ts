/**
 * The Raft driver: the only holder of the Raft core. It runs one loop:
 *
 *   1. persist hard state and entries to the WAL (one write, one fdatasync per batch) and to the
 *      in-memory stable log;
 *   2. send messages;
 *   3. hand read states and committed entries to the server, which applies them in order;
 *   4. advance().
 *
 * Everything that arrives while an iteration is in flight (proposals, messages, ticks) is stepped
 * into the core at once and leaves in the next Ready: that is the batching (group commit).
 */
import { RawNode, type Ready } from '../raft/raw-node';
import { MemoryStorage } from '../raft/memory-storage';
import { ConfChange, Entry, EntryType, Message, MessageType, NodeId, ReadState, Snapshot, SoftState } from '../raft/types';

import { Wal, WAL_SAVED } from '../storage/wal';
import type { Logger } from './logger';

/** Committed entries allowed to wait for apply before the loop stops taking new batches. */
const MAX_APPLY_BACKLOG = 20000;
/**
 * How long a leader holds a commit announcement (an append without entries) by default, in the
 * hope that the next append to that member carries the commit index instead, in milliseconds.
 */
const COMMIT_HOLD_MS = 1;
/** A member that forwarded a proposal this recently gets commit announcements at once (ms). */
const FORWARDER_MS = 1000;

/** True when `entries` hold a configuration change. */
function hasConfChange(entries: readonly Entry[]): boolean {
  for (const e of entries) if (e.type === EntryType.ConfChange) return true;
  return false;
}

/** What the driver calls back into. */
export interface DriverHooks {
  /** Sends messages to peers (must not block). */
  send(msgs: Message[]): void;
  /**
   * Puts what send() queued on the wire now rather than on a later turn (must not block or call
   * back). Called right after every send, before the loop turns to its disk or to apply.
   */
  flush?(): void;
  /** Applies committed entries in order; resolves when applied. */
  apply(entries: Entry[]): Promise<void>;
  /** Receives read states (ReadIndex answers). */
  readStates(rs: ReadState[]): void;
  /** Leader or role changed. */
  softState(ss: SoftState): void;
  /** Installs a snapshot received from the leader as the state machine's state. */
  installSnapshot(snap: Snapshot): Promise<void>;
  /** Fatal error: the server must stop. */
  fatal(err: unknown): void;
  /**
   * Called at the named points of the loop, for crash tests: 'after-persist', 'after-send',
   * 'after-apply', 'after-advance'. The default does nothing.
   */
  failpoint?(name: 'after-persist' | 'after-send' | 'after-apply' | 'after-advance'): void;
  /** Told how long each synced WAL save took, in seconds (the fsync latency). */
  walSynced?(seconds: number): void;
}

/** Owns the Raft core, its stable log and the WAL. */
export class RaftDriver {
  private running = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private idle: (() => void)[] = [];
  private proposals: Uint8Array[] = [];
  /** Applies run in this chain, in log order, behind the loop. */
  private applyChain: Promise<void> = Promise.resolve();
  private applyBacklog = 0;
  private dropHandlers: ((err: unknown) => void)[] = [];
  /** Whether the core was leader as of the last Ready's soft state. */
  private leader = false;
  /** Commit announcements held back, by member; see holdCommitAnnouncements. */
  private readonly heldCommits = new Map<NodeId, Message>();
  private heldTimer: NodeJS.Timeout | undefined;
  /** When each member last forwarded a proposal to this one (Date.now()). */
  private readonly lastForwarded = new Map<NodeId, number>();

  constructor(
    readonly node: RawNode,
    readonly storage: MemoryStorage,
    readonly wal: Wal,
    private readonly hooks: DriverHooks,
    private readonly log: Logger,
    /** How long a commit announcement may be held, in ms (see holdCommitAnnouncements). */
    private readonly commitHoldMs = COMMIT_HOLD_MS,
  ) {}

  /** Starts ticking every `tickMs` milliseconds. */
  start(tickMs: number): void {
    this.timer = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, tickMs);
    this.schedule();
  }

  /**
   * Queues application data for proposal. Everything queued before the next loop turn goes to the
   * core as one batch (one append message per follower). `dropped` is called when the core refuses
   * the batch (no leader, transfer in progress).
   */
  propose(data: Uint8Array, dropped: (err: unknown) => void): void {
    this.proposals.push(data);
    this.dropHandlers.push(dropped);
    this.schedule();
  }

  private flushProposals(): void {
    if (this.proposals.length === 0) return;
    const data = this.proposals;
    const handlers = this.dropHandlers;
    this.proposals = [];
    this.dropHandlers = [];
    try {
      this.node.proposeBatch(data);
    } catch (err) {
      for (const h of handlers) h(err);
    }
  }

  /** Proposes a membership change. */
  proposeConfChange(cc: ConfChange): void {
    this.node.proposeConfChange(cc);
    this.schedule();
  }

  /** Steps a message from a peer. */
  step(m: Message): void {
    if (m.type === MessageType.MsgProp) this.lastForwarded.set(m.from, Date.now());
    this.node.step(m);
    this.schedule();
  }

  /** Requests a read index; the answer arrives through hooks.readStates. */
  readIndex(ctx: Uint8Array): void {
    this.node.readIndex(ctx);
    this.schedule();
  }

  /** Starts a leadership transfer to `to`. */
  transferLeader(to: NodeId): void {
    this.node.transferLeader(to);
    this.schedule();
  }

  /** Tells the core that messages to `id` could not be delivered (it probes the peer again). */
  reportUnreachable(id: NodeId): void {
    this.node.reportUnreachable(id);
    this.schedule();
  }

  /** Tells the core how sending a snapshot to `id` ended. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.node.reportSnapshot(id, ok);
    this.schedule();
  }

  /** Asks the core to start an election now. */
  campaign(): void {
    this.node.campaign();
    this.schedule();
  }

  /** Schedules a loop iteration if none is queued or running. */
  schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(this.onImmediate);
  }

  private readonly onImmediate = (): void => {
    this.scheduled = false;
    this.loop();
  };

  private loop(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.run();
  }

  /**
   * Handles Readys until the core has none. A Ready is handled synchronously when nothing in it
   * has to wait (the common case: the WAL writes a small batch right away); otherwise the rest of
   * it, and the loop, go on once the wait is over (`advanceFirst`: the Ready in hand is done).
   */
  private run(advanceFirst = false): void {
    try {
      if (advanceFirst) this.advance();
      for (;;) {
        this.flushProposals();
        if (this.stopped || !this.node.hasReady()) break;
        const wait = this.handle(this.node.ready());
        if (wait !== undefined) {
          wait.then(() => this.run(true), (err: unknown) => this.crash(err));
          return;
        }
        this.advance();
      }
    } catch (err) {
      this.crash(err);
      return;
    }
    this.settle();
  }

  private advance(): void {
    this.node.advance();
    this.hooks.failpoint?.('after-advance');
  }

  /** The loop failed: the server must stop. The loop does not start again by itself. */
  private crash(err: unknown): void {
    this.hooks.fatal(err);
    this.wakeIdle();
  }

  /** The loop is idle: wakes stop() and starts again if work arrived meanwhile. */
  private settle(): void {
    this.wakeIdle();
    if (this.proposals.length > 0 || this.node.hasReady()) this.schedule();
  }

  private wakeIdle(): void {
    this.running = false;
    const waiters = this.idle;
    if (waiters.length === 0) return;
    this.idle = [];
    for (const w of waiters) w();
  }

  /**
   * Persists, sends and queues for apply what one Ready carries. Returns a promise when some of
   * it has to wait (a snapshot, a WAL write that went through the WAL's queue, the apply backlog):
   * the rest is done when it resolves, and the core advances after that.
   */
  private handle(rd: Ready): Promise<void> | undefined {
    if (rd.softState !== undefined) {
      this.leader = rd.softState.role === 'leader';
      this.hooks.softState(rd.softState);
    }
    // A leader sends before its own persist, so followers write in parallel with it; every
    // other role sends only after its state is durable (its messages promise that). A leader's
    // Ready that only commits (no new entries) carries commit announcements, which nobody
    // waits for as much as for the replies those commits release: they leave after the
    // apply, once the replies are on the wire.
    const afterApply = this.leader && rd.entries.length === 0 && rd.committedEntries.length > 0 && rd.snapshot === undefined;
    const early = this.leader && !afterApply && rd.messages.length > 0;
    if (early) this.sendNow(rd.messages);
    if (rd.snapshot !== undefined) return this.handleSnapshot(rd, rd.snapshot, early);
    return this.persist(rd, early, afterApply);
  }

  /** Installs a snapshot (state first, then the WAL marker: a crash in between leaves a state at or past the marker), then goes on with the rest of the Ready. */
  private async handleSnapshot(rd: Ready, snap: Snapshot, early: boolean): Promise<void> {
    await this.applyChain;
    await this.hooks.installSnapshot(snap);
    await this.wal.saveSnapshot(snap.meta);
    this.storage.applySnapshot(snap);
    await this.persist(rd, early, false);
  }

  /** Writes the Ready's hard state and entries to the WAL (and the stable log), then finishes it. */
  private persist(rd: Ready, early: boolean, afterApply: boolean): Promise<void> | undefined {
    if (rd.hardState === undefined && rd.entries.length === 0) return this.finish(rd, early, afterApply);
    const saveStart = performance.now();
    const saved = this.wal.save(rd.hardState, rd.entries, rd.mustSync);
    if (saved !== WAL_SAVED) {
      return saved.then(() => {
        this.persisted(rd, saveStart);
        return this.finish(rd, early, afterApply);
      });
    }
    this.persisted(rd, saveStart);
    return this.finish(rd, early, afterApply);
  }

  private persisted(rd: Ready, saveStart: number): void {
    if (rd.mustSync) this.hooks.walSynced?.((performance.now() - saveStart) / 1000);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    this.hooks.failpoint?.('after-persist');
  }

  /** Sends what waited for the persist, hands over read states and queues committed entries for apply. */
  private finish(rd: Ready, early: boolean, afterApply: boolean): Promise<void> | undefined {
    if (!early && !afterApply && rd.messages.length > 0) this.sendNow(rd.messages);
    if (rd.messages.length > 0 && !afterApply) this.hooks.failpoint?.('after-send');
    if (rd.readStates.length > 0) this.hooks.readStates(rd.readStates);
    if (rd.committedEntries.length === 0) return undefined;
    // Apply runs behind the loop, in order, so the next batch is persisted while this one is
    // applied. Configuration changes are applied before the loop goes on (the core must know the
    // new configuration), and the backlog is bounded.
    const entries = rd.committedEntries;
    this.applyBacklog += entries.length;
    this.applyChain = this.applyChain.then(() => this.applyInOrder(entries));
    this.applyChain.catch(this.onApplyFailed);
    if (afterApply && rd.messages.length > 0) this.sendAfterReplies(rd.messages);
    if (this.applyBacklog > MAX_APPLY_BACKLOG || hasConfChange(entries)) return this.applyChain;
    return undefined;
  }

  private async applyInOrder(entries: Entry[]): Promise<void> {
    await this.hooks.apply(entries);
    this.applyBacklog -= entries.length;
    this.hooks.failpoint?.('after-apply');
  }

  private readonly onApplyFailed = (err: unknown): void => this.hooks.fatal(err);

  /**
   * Sends and writes to the sockets at once, not on a later turn: a leader's appends are then on
   * their way while it writes its own copy, and a follower's acknowledgement leaves before it
   * applies (a follower's fdatasync blocks the thread).
   */
  private sendNow(msgs: Message[]): void {
    if (this.heldCommits.size > 0) this.dropCoveredCommits(msgs);
    this.hooks.send(msgs);
    this.hooks.flush?.();
  }

  /**
   * Sends once the apply queued so far is done and the replies it released are written: replies
   * leave on the turn after the apply (setImmediate), these one turn later. Messages to a member
   * that forwards proposals leave at once instead: its clients wait on them, not on our replies.
   */
  private sendAfterReplies(msgs: Message[]): void {
    const now = Date.now();
    const toForwarders: Message[] = [];
    const later: Message[] = [];
    for (const m of msgs) (this.forwardsProposals(m.to, now) ? toForwarders : later).push(m);
    if (toForwarders.length > 0) {
      this.sendNow(toForwarders);
      this.hooks.failpoint?.('after-send');
    }
    if (later.length === 0) return;
    const send = (): void => {
      this.sendNow(this.holdCommitAnnouncements(later));
      this.hooks.failpoint?.('after-send');
    };
    void this.applyChain.then(() => setImmediate(() => setImmediate(send)), () => undefined);
  }

  /** True when `id` forwarded a proposal to this member within the last FORWARDER_MS. */
  private forwardsProposals(id: NodeId, now: number): boolean {
    return now - (this.lastForwarded.get(id) ?? -Infinity) <= FORWARDER_MS;
  }

  /**
   * Takes the bare commit announcements (appends without entries) out of `msgs` and holds them
   * for up to COMMIT_HOLD_MS. When the leader sends the member its next append first, that append
   * carries the commit index and the held message is dropped: under a steady stream of writes the
   * members then get one message per write instead of two, and answer one instead of two. When no
   * write follows, the announcement leaves when the hold ends. Reads do not wait on it: a
   * ReadIndex round's heartbeats carry the commit index themselves. (Messages to a member that
   * forwards proposals never get here: sendAfterReplies sends them at once.)
   */
  private holdCommitAnnouncements(msgs: Message[]): Message[] {
    const rest: Message[] = [];
    for (const m of msgs) {
      if (m.type === MessageType.MsgApp && (m.entries === undefined || m.entries.length === 0)) {
        this.heldCommits.set(m.to, m);
      } else {
        rest.push(m);
      }
    }
    if (this.heldCommits.size > 0 && this.heldTimer === undefined) {
      this.heldTimer = setTimeout(() => this.releaseHeldCommits(), this.commitHoldMs);
    }
    return rest;
  }

  /** Sends the commit announcements still held. */
  private releaseHeldCommits(): void {
    this.heldTimer = undefined;
    if (this.stopped || this.heldCommits.size === 0) return;
    const msgs = [...this.heldCommits.values()];
    this.heldCommits.clear();
    this.sendNow(msgs);
  }

  /** Drops held announcements that an append in `msgs` makes redundant (same term, commit as high). */
  private dropCoveredCommits(msgs: Message[]): void {
    for (const m of msgs) {
      if (m.type !== MessageType.MsgApp) continue;
      const held = this.heldCommits.get(m.to);
      if (held !== undefined && held.term === m.term && m.commit >= held.commit) this.heldCommits.delete(m.to);
    }
  }

  /** Stops ticking and processing; waits for the iteration in flight, then closes the WAL. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.heldTimer !== undefined) clearTimeout(this.heldTimer);
    this.stopped = true;
    if (this.running) await new Promise<void>((r) => this.idle.push(r));
    await this.applyChain.catch(() => undefined);
    await this.wal.close();
    this.log.info('raft driver stopped');
  }
}
