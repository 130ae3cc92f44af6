/**
 * A deterministic randomized simulation of a Raft cluster on an unreliable network, checking
 * Raft's safety properties after every step.
 *
 * Model:
 * - a fake clock: every step, each live member ticks (a few skip a tick: clock skew);
 * - a network that delays (1..maxDelay steps), reorders, drops, duplicates and partitions;
 * - a driver per member that persists a Ready into the member's MemoryStorage (what survives a
 *   crash), sends its messages (a leader sometimes before persisting, as the real driver may),
 *   applies committed entries and advances; the persist sometimes completes only in a later
 *   step (a slow disk: messages and ticks keep arriving between ready() and advance()); a crash
 *   can strike between any two of those; the transport sometimes reports unreachable peers;
 * - crashes lose the RawNode and the state machine; restarts rebuild both from storage;
 * - random proposals, read requests, snapshots + compaction, leadership transfers and
 *   membership changes (adding fresh members as learners or voters, promoting, removing).
 *
 * Checked after every step: election safety (one leader per term), leader append-only, log
 * matching (an (index, term) pair identifies the entry and its predecessor's term), leader
 * completeness (a new leader holds every entry committed in earlier terms; "committed" as
 * proven by persisted hard states), state-machine
 * safety (every member applies the same entry at each index, in order, no gaps), and
 * linearizable read indexes (≥ every commit index observed before the request).
 */
import { decodeConfChange } from '../../../src/raft/confchange/codec';
import { ConfChangeError, ProposalDroppedError } from '../../../src/raft/errors';
import { MemoryStorage } from '../../../src/raft/memory-storage';
import { RawNode } from '../../../src/raft/raw-node';
import type { Ready } from '../../../src/raft/raw-node';
import { SeededRng } from '../../../src/raft/rng';
import { EntryType, nodeId } from '../../../src/raft/types';
import type { ConfChange, ConfState, Entry, Message, NodeId } from '../../../src/raft/types';

/** Knobs of one run. Rates are per-step probabilities unless said otherwise. */
export interface SimConfig {
  seed: number;
  members: number;
  steps: number;
  /** Per message. */
  dropRate: number;
  /** Per message. */
  dupRate: number;
  /** Maximum extra delay of a message, in steps. */
  maxDelay: number;
  crashRate: number;
  restartRate: number;
  partitionRate: number;
  healRate: number;
  proposeRate: number;
  readRate: number;
  compactRate: number;
  transferRate: number;
  confChangeRate: number;
  /** Per Ready: crash somewhere inside the driver iteration. */
  crashInReadyRate: number;
  /** Receives a line per event, for debugging a failing seed. */
  debug?: (line: string) => void;
}

/**
 * Defaults for a run of `members` members. Every third seed is a harsher run (more loss,
 * crashes, partitions, compactions and membership changes).
 */
export function defaultSimConfig(seed: number, members: number, steps: number): SimConfig {
  if (seed % 3 === 0) {
    return {
      seed,
      members,
      steps,
      dropRate: 0.15,
      dupRate: 0.05,
      maxDelay: 4,
      crashRate: 0.02,
      restartRate: 0.08,
      partitionRate: 0.02,
      healRate: 0.04,
      proposeRate: 0.5,
      readRate: 0.1,
      compactRate: 0.06,
      transferRate: 0.01,
      confChangeRate: members > 1 ? 0.01 : 0,
      crashInReadyRate: 0.01,
    };
  }
  return {
    seed,
    members,
    steps,
    dropRate: 0.05,
    dupRate: 0.02,
    maxDelay: 3,
    crashRate: 0.004,
    restartRate: 0.05,
    partitionRate: 0.006,
    healRate: 0.03,
    proposeRate: 0.5,
    readRate: 0.1,
    compactRate: 0.02,
    transferRate: 0.003,
    confChangeRate: members > 1 ? 0.004 : 0,
    crashInReadyRate: 0.002,
  };
}

/** What a run did (to check that the checks were not vacuous) and its determinism fingerprint. */
export interface SimResult {
  traceHash: number;
  elections: number;
  committed: number;
  snapshotsRestored: number;
  readsServed: number;
  confChangesApplied: number;
  crashes: number;
}

/** An invariant violation, with the seed and step to reproduce it. */
export class SimViolation extends Error {
  override readonly name = 'SimViolation';
}

interface InFlight {
  at: number;
  msg: Message;
}

interface PendingRead {
  requiredIndex: number;
}

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;

// Module-level aliases: global lookups are slow inside jest's sandbox.
const imul = Math.imul;
const floor = Math.floor;

function fnv(h: number, x: number): number {
  // mix a (possibly large) non-negative integer into a 32-bit FNV-1a style hash
  h = imul(h ^ (x & 0xffff), 16777619);
  h = imul(h ^ ((x >>> 16) & 0xffff), 16777619);
  h = imul(h ^ floor(x / 4294967296), 16777619);
  return h >>> 0;
}

function hashBytes(b: Uint8Array): number {
  let h = 2166136261;
  for (let i = 0; i < b.length; i++) h = imul(h ^ b[i]!, 16777619);
  return h >>> 0;
}

function entryHash(e: Entry): number {
  return fnv(fnv(fnv(hashBytes(e.data), e.type), e.term), e.index);
}

function encodeSnap(index: number, hash: number): Uint8Array {
  const out = new Uint8Array(12);
  const v = new DataView(out.buffer);
  v.setUint32(0, hash);
  v.setFloat64(4, index);
  return out;
}

function decodeSnap(b: Uint8Array): { index: number; hash: number } {
  if (b.length === 0) return { index: 0, hash: 0 };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { hash: v.getUint32(0), index: v.getFloat64(4) };
}

class SimMember {
  readonly id: NodeId;
  readonly storage = new MemoryStorage();
  node: RawNode | undefined;
  /** State machine: applied index and a running hash of applied entries. */
  appliedIndex = 0;
  smHash = 0;
  confState: ConfState = { voters: [], learners: [] };
  /** Permanently stopped (removed from the configuration). */
  retired = false;
  /** A Ready taken but not yet advanced (the driver is persisting it). */
  pending: { rd: Ready; sent: boolean } | undefined = undefined;
  private rngSeed: number;

  constructor(
    readonly num: number,
    seed: number,
    private readonly preVote: boolean,
    private readonly checkQuorum: boolean,
    private readonly maxSizePerMsg: number,
  ) {
    this.id = nodeId(BigInt(num));
    this.rngSeed = seed * 7919 + num * 104729;
    this.node = this.makeNode(0);
  }

  makeNode(applied: number): RawNode {
    return new RawNode({
      id: this.id,
      electionTick: ELECTION_TICK,
      heartbeatTick: HEARTBEAT_TICK,
      storage: this.storage,
      applied,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: 4,
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      rng: new SeededRng(this.rngSeed++),
    });
  }

  get live(): boolean {
    return this.node !== undefined;
  }

  crash(): void {
    this.node = undefined;
    this.pending = undefined;
  }

  /**
   * Restarts from storage. An initial member that never persisted its bootstrap finds an empty
   * data directory and bootstraps again, as the server does (it cannot have sent anything).
   */
  restart(initialPeers: NodeId[] | undefined): void {
    const snap = this.storage.snapshot();
    const sm = decodeSnap(snap.data);
    this.appliedIndex = snap.meta.index;
    this.smHash = sm.hash;
    this.confState = snap.meta.confState;
    this.node = this.makeNode(snap.meta.index);
    if (initialPeers !== undefined && this.storage.lastIndex() === 0 && this.storage.hardState().term === 0) {
      this.node.bootstrap(initialPeers.map((p) => ({ id: p })));
    }
  }
}

/** Runs one simulation; throws SimViolation on the first broken invariant. */
export function runSimulation(cfg: SimConfig): SimResult {
  return new Simulation(cfg).run();
}

class Simulation {
  private readonly rng: SeededRng;
  private readonly members = new Map<number, SimMember>();
  private network: InFlight[] = [];
  /** Pairs "a-b" (a < b) that cannot talk. */
  private cut = new Set<string>();
  private now = 0;
  private trace = 2166136261;
  private readonly spare: number[] = [];
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly initialPeers: NodeId[] = [];
  /** Per run: from one entry per append to many. */
  private readonly maxSizePerMsg: number;

  // --- global knowledge for the checks
  private readonly leaderOfTerm = new Map<number, number>();
  /** "index/term" → [hash of the entry, term of the previous entry or -1 if unknown]. */
  private readonly logRecord = new Map<string, [number, number]>();
  /** Cumulative state-machine hash after applying each index. */
  private readonly chain = new Map<number, number>();
  /** Per index: the term of the committed entry and the lowest term in which it was seen committed. */
  private readonly commitTerm: number[] = [0];
  private readonly committedEntryTerm: number[] = [0];
  private observedCommit = 0;
  /** Per member: last observed leadership (term, last index, last term). */
  private readonly leaderView = new Map<number, { term: number; last: number; lastTerm: number }>();
  private readonly pendingReads = new Map<string, PendingRead>();
  private readCounter = 0;
  private proposalCounter = 0;
  private readonly stats: SimResult = {
    traceHash: 0,
    elections: 0,
    committed: 0,
    snapshotsRestored: 0,
    readsServed: 0,
    confChangesApplied: 0,
    crashes: 0,
  };

  constructor(private readonly cfg: SimConfig) {
    this.rng = new SeededRng(cfg.seed);
    this.preVote = this.rng.intn(4) !== 0;
    this.checkQuorum = this.rng.intn(4) !== 0;
    this.maxSizePerMsg = [1, 64, 200, 4096][this.rng.intn(4)]!;
    const peers: { id: NodeId }[] = [];
    for (let i = 1; i <= cfg.members; i++) {
      this.members.set(i, new SimMember(i, cfg.seed, this.preVote, this.checkQuorum, this.maxSizePerMsg));
      peers.push({ id: nodeId(BigInt(i)) });
      this.initialPeers.push(nodeId(BigInt(i)));
    }
    for (const m of this.members.values()) m.node!.bootstrap(peers);
    for (let i = cfg.members + 1; i <= cfg.members + 3; i++) this.spare.push(i);
  }

  run(): SimResult {
    for (let step = 0; step < this.cfg.steps; step++) {
      this.now = step;
      this.randomEvents();
      this.tickAll();
      this.deliverDue();
      this.processReadies();
      this.check();
    }
    this.stats.traceHash = this.trace;
    return this.stats;
  }

  private fail(msg: string): never {
    throw new SimViolation(`seed ${this.cfg.seed}, step ${this.now}: ${msg}`);
  }

  private log(line: string): void {
    if (this.cfg.debug !== undefined) this.cfg.debug(`[${this.now}] ${line}`);
  }

  private mix(...xs: number[]): void {
    for (const x of xs) this.trace = fnv(this.trace, x);
  }

  private liveMembers(): SimMember[] {
    const out: SimMember[] = [];
    for (const m of this.members.values()) if (m.live) out.push(m);
    return out;
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[this.rng.intn(xs.length)];
  }

  private leaderMember(): SimMember | undefined {
    let best: SimMember | undefined;
    let bestTerm = -1;
    for (const m of this.liveMembers()) {
      const st = m.node!.basicStatus();
      if (st.role === 'leader' && st.term > bestTerm) {
        best = m;
        bestTerm = st.term;
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ events

  private randomEvents(): void {
    const c = this.cfg;
    const r = (): number => this.rng.nextFloat();
    if (r() < c.proposeRate) {
      // Mostly at the leader, sometimes at a random member (forwarding, drops).
      const target = r() < 0.7 ? this.leaderMember() : this.pick(this.liveMembers());
      if (target !== undefined) {
        const n = 1 + this.rng.intn(3);
        const data: Uint8Array[] = [];
        for (let i = 0; i < n; i++) data.push(new TextEncoder().encode(`p${this.proposalCounter++}`));
        try {
          if (n === 1) target.node!.propose(data[0]!);
          else target.node!.proposeBatch(data);
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
    }
    if (r() < c.readRate) {
      const target = this.pick(this.liveMembers());
      if (target !== undefined) {
        const ctx = `r${this.readCounter++}`;
        try {
          target.node!.readIndex(new TextEncoder().encode(ctx));
          this.pendingReads.set(ctx, { requiredIndex: this.maxCommitNow() });
        } catch (e) {
          if (!(e instanceof ProposalDroppedError)) throw e;
        }
      }
    }
    if (r() < c.crashRate) {
      const victim = this.pick(this.liveMembers());
      if (victim !== undefined) this.crash(victim);
    }
    if (r() < c.restartRate) {
      const down = Array.from(this.members.values()).filter((m) => !m.live && !m.retired);
      const m = this.pick(down);
      if (m !== undefined) {
        m.restart(m.num <= this.cfg.members ? this.initialPeers : undefined);
        this.log(`restart ${m.num} ${JSON.stringify(m.node!.basicStatus(), (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
        this.mix(5, m.num);
      }
    }
    if (r() < c.partitionRate) this.randomPartition();
    if (this.cut.size > 0 && r() < c.healRate) {
      this.cut.clear();
      this.log('heal');
      this.mix(7);
    }
    if (r() < c.compactRate) {
      const m = this.pick(this.liveMembers());
      if (m !== undefined) this.compact(m);
    }
    if (r() < c.transferRate) {
      const l = this.leaderMember();
      if (l !== undefined) {
        const voters = l.node!.status().config.voters;
        const to = this.pick(voters);
        if (to !== undefined) {
          try {
            l.node!.transferLeader(to);
          } catch (e) {
            if (!(e instanceof ProposalDroppedError)) throw e;
          }
        }
      }
    }
    if (r() < c.confChangeRate) this.randomConfChange();
  }

  private crash(m: SimMember): void {
    m.crash();
    this.log(`crash ${m.num}`);
    this.stats.crashes++;
    this.mix(3, m.num);
  }

  private randomPartition(): void {
    const nums = Array.from(this.members.keys());
    const side = new Map<number, number>();
    for (const n of nums) side.set(n, this.rng.intn(2));
    this.cut.clear();
    for (const a of nums) {
      for (const b of nums) {
        if (a < b && side.get(a) !== side.get(b)) this.cut.add(`${a}-${b}`);
      }
    }
    this.log(`partition ${Array.from(this.cut).join(' ')}`);
    this.mix(6, this.cut.size);
  }

  private compact(m: SimMember): void {
    const snapIndex = m.storage.snapshot().meta.index;
    if (m.appliedIndex - snapIndex < 8) return;
    // The state machine's snapshot: its hash at the applied index.
    m.storage.createSnapshot(m.appliedIndex, m.confState, encodeSnap(m.appliedIndex, m.smHash));
    const keep = this.rng.intn(4);
    const compactTo = Math.max(m.appliedIndex - keep, snapIndex + 1);
    m.storage.compact(compactTo);
    this.mix(8, m.num, compactTo);
  }

  private randomConfChange(): void {
    const l = this.leaderMember();
    if (l === undefined) return;
    const cs = l.node!.status().config;
    let cc: ConfChange | undefined;
    const choice = this.rng.intn(4);
    if (choice === 0 && this.spare.length > 0) {
      cc = { type: 'add-learner', nodeId: nodeId(BigInt(this.spare[0]!)) };
    } else if (choice === 1 && this.spare.length > 0) {
      cc = { type: 'add-node', nodeId: nodeId(BigInt(this.spare[0]!)) };
    } else if (choice === 2 && cs.learners.length > 0) {
      cc = { type: 'add-node', nodeId: this.pick(cs.learners)! };
    } else if (choice === 3 && cs.voters.length + cs.learners.length > this.cfg.members - 1) {
      const all = cs.voters.concat(cs.learners);
      cc = { type: 'remove-node', nodeId: this.pick(all)! };
    }
    if (cc === undefined) return;
    try {
      l.node!.proposeConfChange(cc);
      this.mix(9, Number(cc.nodeId));
    } catch (e) {
      if (!(e instanceof ProposalDroppedError) && !(e instanceof ConfChangeError)) throw e;
    }
  }

  private ensureMember(num: number): void {
    if (this.members.has(num)) return;
    const m = new SimMember(num, this.cfg.seed, this.preVote, this.checkQuorum, this.maxSizePerMsg);
    this.members.set(num, m);
    const at = this.spare.indexOf(num);
    if (at >= 0) this.spare.splice(at, 1);
  }

  // ------------------------------------------------------------------ time and network

  private tickAll(): void {
    for (const m of this.liveMembers()) {
      if (this.rng.nextFloat() < 0.05) continue; // clock skew: this member's tick is late
      m.node!.tick();
    }
  }

  private send(msg: Message): void {
    const c = this.cfg;
    if (this.rng.nextFloat() < c.dropRate) return;
    const copies = this.rng.nextFloat() < c.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.network.push({ at: this.now + 1 + this.rng.intn(c.maxDelay), msg });
    }
  }

  private deliverDue(): void {
    const due: Message[] = [];
    const later: InFlight[] = [];
    for (const f of this.network) {
      if (f.at <= this.now) due.push(f.msg);
      else later.push(f);
    }
    this.network = later;
    // reorder
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rng.intn(i + 1);
      const t = due[i]!;
      due[i] = due[j]!;
      due[j] = t;
    }
    for (const msg of due) {
      const from = Number(msg.from);
      const to = Number(msg.to);
      const key = from < to ? `${from}-${to}` : `${to}-${from}`;
      if (this.cut.has(key)) {
        // Sometimes the transport notices and tells the sender.
        const sender = this.members.get(from);
        if (sender !== undefined && sender.live && this.rng.nextFloat() < 0.1) {
          sender.node!.reportUnreachable(nodeId(BigInt(to)));
        }
        continue;
      }
      const target = this.members.get(to);
      if (target === undefined || !target.live) continue;
      this.mix(1, msg.type, from, to, msg.term, msg.index, msg.commit, msg.entries.length);
      if (this.cfg.debug !== undefined) {
        this.log(
          `deliver ${from}->${to} type=${msg.type} term=${msg.term} log=${msg.logTerm}/${msg.index} commit=${msg.commit} ents=${msg.entries.map((e) => `${e.term}/${e.index}`).join(',')} rej=${msg.reject} hint=${msg.rejectHint}`,
        );
      }
      target.node!.step(msg);
      if (msg.type === 7) {
        // The transport reports the snapshot outcome to the sender.
        const sender = this.members.get(from);
        if (sender !== undefined && sender.live) sender.node!.reportSnapshot(target.id, true);
      }
      this.checkElectionSafety(target);
    }
  }

  // ------------------------------------------------------------------ the driver

  private processReadies(): void {
    const live = this.liveMembers();
    for (let i = live.length - 1; i > 0; i--) {
      const j = this.rng.intn(i + 1);
      const t = live[i]!;
      live[i] = live[j]!;
      live[j] = t;
    }
    for (const m of live) {
      if (!m.live) continue;
      if (m.pending !== undefined) {
        // the disk is still busy with the previous Ready
        if (this.rng.nextFloat() < 0.5) this.finishReady(m);
        continue;
      }
      if (!m.node!.hasReady()) continue;
      this.startReady(m);
    }
  }

  private crashPoint(m: SimMember): boolean {
    if (this.rng.nextFloat() < this.cfg.crashInReadyRate) {
      this.crash(m);
      return true;
    }
    return false;
  }

  /**
   * Takes a Ready. A leader may send at once; the persist either completes in this step or,
   * like a slow disk, in a later one (input keeps arriving meanwhile).
   */
  private startReady(m: SimMember): void {
    const node = m.node!;
    const rd = node.ready();
    const isLeader = node.basicStatus().role === 'leader';
    if (this.crashPoint(m)) return;
    let sent = false;
    if (isLeader && this.rng.nextFloat() < 0.5) {
      for (const msg of rd.messages) this.send(msg);
      sent = true;
      if (this.crashPoint(m)) return;
    }
    m.pending = { rd, sent };
    if (this.rng.nextFloat() < 0.3) return;
    this.finishReady(m);
  }

  private finishReady(m: SimMember): void {
    const node = m.node!;
    const { rd, sent } = m.pending!;
    this.persist(m, rd);
    if (this.cfg.debug !== undefined) {
      const st = node.basicStatus();
      this.log(
        `ready ${m.num} role=${st.role} term=${st.term} commit=${st.commit} hs=${rd.hardState ? `${rd.hardState.term}/${rd.hardState.vote}/${rd.hardState.commit}` : '-'} ents=${rd.entries.map((e) => `${e.term}/${e.index}`).join(',')} snap=${rd.snapshot?.meta.index ?? '-'} apply=${rd.committedEntries.map((e) => `${e.term}/${e.index}${e.type === 1 ? 'cc' : ''}`).join(',')}`,
      );
    }
    if (this.crashPoint(m)) return;
    if (!sent) for (const msg of rd.messages) this.send(msg);
    if (this.crashPoint(m)) return;
    this.apply(m, rd);
    if (!m.live || this.crashPoint(m)) return;
    node.advance();
    m.pending = undefined;
  }

  private persist(m: SimMember, rd: Ready): void {
    if (rd.snapshot !== undefined) m.storage.applySnapshot(rd.snapshot);
    m.storage.append(rd.entries);
    if (rd.hardState !== undefined) m.storage.setHardState(rd.hardState);
    for (const e of rd.entries) this.checkLogMatching(m, e);
  }

  private apply(m: SimMember, rd: Ready): void {
    if (rd.snapshot !== undefined) {
      const s = rd.snapshot;
      const sm = decodeSnap(s.data);
      if (sm.index !== s.meta.index) this.fail(`snapshot data index ${sm.index} ≠ meta index ${s.meta.index}`);
      const known = this.chain.get(s.meta.index);
      if (known !== undefined && known !== sm.hash) {
        this.fail(`member ${m.num} restored a snapshot at ${s.meta.index} whose state differs from what was applied`);
      }
      m.appliedIndex = s.meta.index;
      m.smHash = sm.hash;
      m.confState = s.meta.confState;
      this.stats.snapshotsRestored++;
      this.mix(4, m.num, s.meta.index);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== m.appliedIndex + 1) this.fail(`member ${m.num} applied ${e.index} after ${m.appliedIndex}`);
      const h = fnv(m.smHash, entryHash(e));
      const known = this.chain.get(e.index);
      if (known === undefined) {
        this.chain.set(e.index, h);
        this.stats.committed++;
      } else if (known !== h) {
        this.fail(`state-machine safety: member ${m.num} applied a different entry at ${e.index} (term ${e.term})`);
      }
      const ct = this.committedEntryTerm[e.index];
      if (ct !== undefined && ct !== e.term) {
        this.fail(`member ${m.num} applied term ${e.term} at ${e.index}, committed term was ${ct}`);
      }
      m.appliedIndex = e.index;
      m.smHash = h;
      this.mix(2, m.num, e.index, e.term);
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        m.confState = m.node!.applyConfChange(cc);
        this.log(`member ${m.num} applied ${cc.type} ${cc.nodeId} -> voters ${m.confState.voters.join(',')} learners ${m.confState.learners.join(',')}`);
        this.stats.confChangesApplied++;
        for (const v of m.confState.voters.concat(m.confState.learners)) this.ensureMember(Number(v));
        if (cc.type === 'remove-node' && cc.nodeId === m.id) {
          // A removed member is shut down for good, like a real one would be.
          m.retired = true;
        }
      }
    }
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.ctx);
      const pending = this.pendingReads.get(ctx);
      if (pending === undefined) continue; // duplicate answer
      if (rs.index < pending.requiredIndex) {
        this.fail(`read ${ctx} got index ${rs.index} below ${pending.requiredIndex}, committed before it was asked`);
      }
      this.pendingReads.delete(ctx);
      this.stats.readsServed++;
      this.mix(10, rs.index);
    }
    if (m.retired) {
      m.crash();
    }
  }

  // ------------------------------------------------------------------ checks

  private maxCommitNow(): number {
    return this.observedCommitIndex();
  }

  private observedCommitIndex(): number {
    let max = this.observedCommit;
    for (const m of this.members.values()) max = Math.max(max, m.storage.hardState().commit);
    return max;
  }

  private checkElectionSafety(m: SimMember): void {
    const st = m.node!.basicStatus();
    if (st.role !== 'leader') return;
    const prev = this.leaderOfTerm.get(st.term);
    if (prev === undefined) {
      this.leaderOfTerm.set(st.term, m.num);
      this.stats.elections++;
    } else if (prev !== m.num) {
      this.fail(`election safety: members ${prev} and ${m.num} both lead term ${st.term}`);
    }
  }

  private checkLogMatching(m: SimMember, e: Entry): void {
    let prevTerm = -1;
    try {
      prevTerm = m.storage.term(e.index - 1);
    } catch {
      prevTerm = -1;
    }
    const key = `${e.index}/${e.term}`;
    const h = entryHash(e);
    const rec = this.logRecord.get(key);
    if (rec === undefined) {
      this.logRecord.set(key, [h, prevTerm]);
      return;
    }
    if (rec[0] !== h) this.fail(`log matching: two different entries at ${key} (member ${m.num})`);
    if (rec[1] >= 0 && prevTerm >= 0 && rec[1] !== prevTerm) {
      this.fail(`log matching: entry ${key} follows term ${prevTerm} on member ${m.num}, ${rec[1]} elsewhere`);
    }
    if (rec[1] < 0 && prevTerm >= 0) rec[1] = prevTerm;
  }

  private check(): void {
    const live = this.liveMembers();
    const statuses = live.map((m) => ({ m, st: m.node!.basicStatus() }));
    // Commit observation, from persisted hard states: a leader's in-memory commit index may
    // count its own entries before they are durable (they are applied only after persisting),
    // so only a persisted commit index proves durability on a quorum. The lowest persisted
    // term of a member whose persisted commit covers an index bounds from above the term in
    // which that index was committed.
    const persisted = Array.from(this.members.values()).map((m) => ({ m, hs: m.storage.hardState() }));
    persisted.sort((a, b) => a.hs.term - b.hs.term);
    for (const { m, hs } of persisted) {
      for (let i = this.observedCommit + 1; i <= hs.commit; i++) {
        this.commitTerm[i] = hs.term;
        let t: number | undefined;
        try {
          t = m.storage.term(i);
        } catch {
          t = undefined;
        }
        if (t !== undefined) this.committedEntryTerm[i] = t;
      }
      if (hs.commit > this.observedCommit) this.observedCommit = hs.commit;
    }
    for (const { m, st } of statuses) {
      this.checkElectionSafety(m);
      if (st.role !== 'leader') {
        this.leaderView.delete(m.num);
        continue;
      }
      const node = m.node!;
      const { firstIndex, lastIndex } = node.logBounds();
      const view = this.leaderView.get(m.num);
      if (view === undefined || view.term !== st.term) {
        // Leader completeness: every entry committed in an earlier term is in the new leader's log.
        for (let i = Math.max(firstIndex, 1); i <= this.observedCommit; i++) {
          if ((this.commitTerm[i] ?? Infinity) >= st.term) continue;
          const want = this.committedEntryTerm[i];
          const got = node.termAt(i);
          if (want !== undefined && got !== want) {
            this.fail(`leader completeness: leader ${m.num} of term ${st.term} has term ${got} at committed ${i} (want ${want})`);
          }
        }
        if (lastIndex < this.highestCommittedBefore(st.term)) {
          this.fail(`leader completeness: leader ${m.num} of term ${st.term} ends at ${lastIndex}`);
        }
      } else {
        // Leader append-only: it never shortens or rewrites its log.
        if (lastIndex < view.last) this.fail(`leader ${m.num} shrank its log from ${view.last} to ${lastIndex}`);
        const t = node.termAt(view.last);
        if (t !== undefined && view.last >= firstIndex && t !== view.lastTerm) {
          this.fail(`leader ${m.num} rewrote entry ${view.last}`);
        }
      }
      this.leaderView.set(m.num, { term: st.term, last: lastIndex, lastTerm: node.termAt(lastIndex) ?? 0 });
    }
  }

  private highestCommittedBefore(term: number): number {
    let hi = 0;
    for (let i = this.observedCommit; i >= 1; i--) {
      if ((this.commitTerm[i] ?? Infinity) < term) {
        hi = i;
        break;
      }
    }
    return hi;
  }
}
