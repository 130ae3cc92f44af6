/**
 * A synchronous in-memory cluster for Raft tests: each member has a MemoryStorage (what survives
 * a crash) and a RawNode; a driver step persists, sends, applies and advances exactly as the
 * real driver does. Messages go through a queue the test controls (deliver, drop, partition).
 */
import { decodeConfChange } from '../../../src/raft/confchange/codec';
import { MemoryStorage } from '../../../src/raft/memory-storage';
import { messageTypeName } from '../../../src/raft/message';
import { RawNode } from '../../../src/raft/raw-node';
import type { RaftConfig, Ready } from '../../../src/raft/raw-node';
import { SeededRng } from '../../../src/raft/rng';
import { EntryType, nodeId } from '../../../src/raft/types';
import type { ConfState, Entry, Message, NodeId, ReadState } from '../../../src/raft/types';

/** Shorthand for a NodeId from a small number. */
export function id(n: number): NodeId {
  return nodeId(BigInt(n));
}

/** Encodes a string as bytes. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Decodes bytes as a string. */
export function str(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Options for members of a test cluster. */
export interface MemberOptions {
  electionTick?: number;
  heartbeatTick?: number;
  checkQuorum?: boolean;
  preVote?: boolean;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  seed?: number;
}

/** One member: persisted storage, volatile core, and a toy state machine (the applied entries). */
export class Member {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  node: RawNode;
  /** Applied normal entries with data, in order (index → data). */
  applied = new Map<number, string>();
  /** Highest applied index. */
  appliedIndex = 0;
  /** The configuration after the latest applied change or snapshot. */
  confState: ConfState = { voters: [], learners: [] };
  readStates: ReadState[] = [];
  /** Every committed entry this member applied, in order (for safety checks). */
  appliedLog: Entry[] = [];
  readonly opts: MemberOptions;
  private seedCounter: number;

  constructor(idn: number, opts: MemberOptions) {
    this.id = id(idn);
    this.opts = opts;
    this.storage = new MemoryStorage();
    this.seedCounter = (opts.seed ?? 1) * 1000 + idn;
    this.node = this.makeNode(0);
  }

  makeNode(applied: number): RawNode {
    const cfg: RaftConfig = {
      id: this.id,
      electionTick: this.opts.electionTick ?? 10,
      heartbeatTick: this.opts.heartbeatTick ?? 1,
      storage: this.storage,
      applied,
      rng: new SeededRng(this.seedCounter++),
    };
    if (this.opts.checkQuorum !== undefined) cfg.checkQuorum = this.opts.checkQuorum;
    if (this.opts.preVote !== undefined) cfg.preVote = this.opts.preVote;
    if (this.opts.maxSizePerMsg !== undefined) cfg.maxSizePerMsg = this.opts.maxSizePerMsg;
    if (this.opts.maxInflightMsgs !== undefined) cfg.maxInflightMsgs = this.opts.maxInflightMsgs;
    if (this.opts.maxInflightBytes !== undefined) cfg.maxInflightBytes = this.opts.maxInflightBytes;
    return new RawNode(cfg);
  }

  /** Loses everything not persisted and restarts from storage (state machine from the snapshot). */
  restart(): void {
    const snap = this.storage.snapshot();
    this.applied = new Map(decodeSnapshotData(snap.data));
    this.appliedIndex = snap.meta.index;
    this.appliedLog = this.appliedLog.filter((e) => e.index <= snap.meta.index);
    this.confState = snap.meta.confState;
    this.readStates = [];
    this.node = this.makeNode(snap.meta.index);
  }

  /**
   * Runs one driver iteration if a Ready is available: persist, (collect messages), apply,
   * advance. Returns the Ready, or undefined.
   */
  handleReady(): Ready | undefined {
    if (!this.node.hasReady()) return undefined;
    const rd = this.node.ready();
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    if (rd.snapshot !== undefined) {
      this.applied = new Map(decodeSnapshotData(rd.snapshot.data));
      this.appliedIndex = rd.snapshot.meta.index;
      this.confState = rd.snapshot.meta.confState;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== this.appliedIndex + 1) {
        throw new Error(`member ${this.id} applies ${e.index} after ${this.appliedIndex}`);
      }
      this.appliedIndex = e.index;
      this.appliedLog.push(e);
      if (e.type === EntryType.ConfChange) {
        this.confState = this.node.applyConfChange(decodeConfChange(e.data));
      } else if (e.data.length > 0) {
        this.applied.set(e.index, str(e.data));
      }
    }
    for (const rs of rd.readStates) this.readStates.push(rs);
    this.node.advance();
    return rd;
  }

  /** Creates a snapshot at the applied index and compacts the log up to `compactTo` (default: the snapshot). */
  snapshotAndCompact(compactTo?: number): void {
    const at = this.appliedIndex;
    this.storage.createSnapshot(at, this.confState, encodeSnapshotData(this.applied));
    this.storage.compact(compactTo ?? at);
  }
}

/** The toy state machine's snapshot encoding (JSON of [index, data] pairs). */
export function encodeSnapshotData(applied: Map<number, string>): Uint8Array {
  return bytes(JSON.stringify(Array.from(applied.entries())));
}

function decodeSnapshotData(b: Uint8Array): [number, string][] {
  if (b.length === 0) return [];
  return JSON.parse(str(b)) as [number, string][];
}

/** A whole cluster on a controllable network. */
export class Cluster {
  readonly members = new Map<bigint, Member>();
  /** In-flight messages, oldest first. */
  queue: Message[] = [];
  /** Directed links that drop everything: "from->to". */
  private readonly cut = new Set<string>();
  /** Members that are down (their messages and the messages to them are dropped). */
  readonly down = new Set<bigint>();
  /** Optional filter: return false to drop a message on delivery. */
  filter: ((m: Message) => boolean) | undefined = undefined;
  /** Optional rewrite applied to each message before delivery (after the filter). */
  rewrite: ((m: Message) => Message) | undefined = undefined;
  /** Log of delivered messages, when tracing. */
  trace: string[] | undefined = undefined;
  readonly opts: MemberOptions;

  /** Creates members 1..n; voters are bootstrapped with every voter and learner listed. */
  constructor(n: number, opts: MemberOptions = {}, learners: number[] = [], bootstrap = true) {
    this.opts = opts;
    const all: number[] = [];
    for (let i = 1; i <= n; i++) all.push(i);
    for (const l of learners) all.push(l);
    for (const i of all) this.members.set(BigInt(i), new Member(i, opts));
    if (bootstrap) {
      const peers = all.map((i) => ({ id: id(i), learner: learners.includes(i) }));
      for (const m of this.members.values()) m.node.bootstrap(peers);
    }
  }

  /** Adds an empty, non-bootstrapped member (to join through a configuration change). */
  addMember(n: number): Member {
    const m = new Member(n, this.opts);
    this.members.set(BigInt(n), m);
    return m;
  }

  member(n: number): Member {
    const m = this.members.get(BigInt(n));
    if (m === undefined) throw new Error(`no member ${n}`);
    return m;
  }

  node(n: number): RawNode {
    return this.member(n).node;
  }

  /** Processes one Ready on every live member; queues their messages. Returns true if any had one. */
  processReadies(): boolean {
    let any = false;
    for (const [k, m] of this.members) {
      if (this.down.has(k)) continue;
      const rd = m.handleReady();
      if (rd === undefined) continue;
      any = true;
      for (const msg of rd.messages) this.queue.push(msg);
    }
    return any;
  }

  /** Delivers every queued message once (new ones produced meanwhile wait). Returns how many. */
  deliverAll(): number {
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (const msg of batch) if (this.deliver(msg)) n++;
    return n;
  }

  /** Delivers one message unless it is dropped; returns whether it arrived. */
  deliver(msg: Message): boolean {
    const from = BigInt(msg.from);
    const to = BigInt(msg.to);
    if (this.down.has(from) || this.down.has(to)) return false;
    if (this.cut.has(`${from}->${to}`)) return false;
    if (this.filter !== undefined && !this.filter(msg)) return false;
    if (this.rewrite !== undefined) msg = this.rewrite(msg);
    const target = this.members.get(to);
    if (target === undefined) return false;
    if (this.trace !== undefined) this.trace.push(describeMessage(msg));
    target.node.step(msg);
    return true;
  }

  /** Runs readies and deliveries until nothing moves (bounded). */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      const any = this.processReadies();
      const delivered = this.deliverAll();
      if (!any && delivered === 0 && this.queue.length === 0) return;
    }
    throw new Error('cluster did not stabilize');
  }

  /** Ticks member `n` `times` times, processing readies and deliveries after each tick. */
  tick(n: number, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(n).tick();
      this.stabilize();
    }
  }

  /** Ticks every live member `times` times, stabilizing after each round. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const [k, m] of this.members) if (!this.down.has(k)) m.node.tick();
      this.stabilize();
    }
  }

  /** Cuts every link between the groups (both directions). */
  partition(...groups: number[][]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut.add(`${x}->${y}`);
      }
    }
  }

  /** Cuts the links between `a` and everyone else. */
  isolate(a: number): void {
    for (const k of this.members.keys()) {
      if (Number(k) === a) continue;
      this.cut.add(`${a}->${k}`);
      this.cut.add(`${k}->${a}`);
    }
  }

  /** Restores every link. */
  heal(): void {
    this.cut.clear();
  }

  /** Crashes member `n`: its unpersisted state and queued messages to and from it are lost. */
  crash(n: number): void {
    this.down.add(BigInt(n));
    this.queue = this.queue.filter((m) => BigInt(m.to) !== BigInt(n) && BigInt(m.from) !== BigInt(n));
  }

  /** Restarts a crashed member from its storage. */
  restart(n: number): void {
    this.down.delete(BigInt(n));
    this.member(n).restart();
  }

  /** The members that currently believe they lead, with their terms. */
  leaders(): { id: number; term: number }[] {
    const out: { id: number; term: number }[] = [];
    for (const [k, m] of this.members) {
      if (this.down.has(k)) continue;
      const st = m.node.status();
      if (st.role === 'leader') out.push({ id: Number(k), term: st.term });
    }
    return out;
  }

  /** The single live leader with the highest term. */
  leader(): number {
    const ls = this.leaders().sort((a, b) => b.term - a.term);
    const top = ls[0];
    if (top === undefined) throw new Error('no leader');
    return top.id;
  }
}

/** A compact one-line description of a message, for traces. */
export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${messageTypeName(m.type)} term=${m.term}`;
  switch (m.type) {
    case 3: // MsgApp
      s += ` log=${m.logTerm}/${m.index} commit=${m.commit}`;
      if (m.entries.length > 0) s += ` entries=[${m.entries.map(describeEntry).join(' ')}]`;
      break;
    case 4: // MsgAppResp
      s += ` index=${m.index}`;
      if (m.reject) s += ` reject hint=${m.rejectHint}/${m.logTerm}`;
      break;
    case 5:
    case 17:
      s += ` log=${m.logTerm}/${m.index}`;
      break;
    case 6:
    case 18:
      if (m.reject) s += ' reject';
      break;
    case 7:
      s += ` snap=${m.snapshot?.meta.term}/${m.snapshot?.meta.index}`;
      break;
    case 8:
      s += ` commit=${m.commit}`;
      break;
    case 2:
      s += ` entries=${m.entries.length}`;
      break;
    case 16:
      s += ` index=${m.index}`;
      break;
    default:
      break;
  }
  if (m.context !== undefined && m.context.length > 0 && m.type !== 5 && m.type !== 17) s += ` ctx=${str(m.context)}`;
  return s;
}

/** "term/index" plus the data for normal entries, or "cc" for configuration changes. */
export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    return `${e.term}/${e.index}:${cc.type}(${cc.nodeId})`;
  }
  return e.data.length === 0 ? `${e.term}/${e.index}` : `${e.term}/${e.index}:${str(e.data)}`;
}
