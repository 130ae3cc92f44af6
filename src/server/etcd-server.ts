/**
 * The composition root of one member: WAL + Raft driver + peer transport, the applier, the MVCC
 * store, membership, reads.
 *
 * Write path: a client write becomes an internal request (request id + one operation), is proposed
 * (followers' Raft forwards it to the leader), and its caller waits on the id. The applier decodes
 * committed entries, skips those at or below the consistent index, applies them, writes one
 * LevelDB batch per applied batch (with the new consistent index), then resolves the waiters.
 *
 * Read path: linearizable reads batch behind one ReadIndex and wait until applied ≥ that index;
 * serializable reads are served locally at once.
 *
 * Snapshots: every --snapshot-count applied entries the member records a Raft snapshot and cuts
 * the log behind it. A follower too far behind receives the leader's whole state database as a
 * stream, installed into a new directory that then becomes current.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Errors, EtcdError, InvariantError } from '../errors';
import { KvStore } from '../mvcc/kv-store';
import { Compactor } from '../mvcc/compactor';
import { Backend } from '../storage/backend';
import { Wal } from '../storage/wal';
import { currentStateDir, dumpState, removeStaleStateDirs, restoreState, switchStateDir } from '../storage/state-snapshot';
import { MemoryStorage } from '../raft/memory-storage';
import { RawNode } from '../raft/raw-node';
import { SeededRng } from '../raft/rng';
import { ProposalDroppedError } from '../raft/errors';
import { decodeConfChange } from '../raft/confchange/codec';
import { ConfChange, Entry, EntryType, Message, MessageType, NodeId, NONE, ReadState, Snapshot, SnapshotMeta, SoftState, nodeId } from '../raft/types';
import { PeerTransport } from '../transport/peer-transport';
import { WatchHub } from '../watch/watch-hub';
import { Lessor } from '../lease/lessor';
import { Alarms, AlarmType } from './alarms';
import { crc32cUpdate } from '../storage/crc32c';
import { decodeRevision, encodeRevision, revKey } from '../mvcc/revision';
import { writeSnapshotFile } from '../storage/snapshot-file';
import { makeRange } from '../mvcc/key-range';
import { RangeOp, RangeResult, TxnOp, TxnResult, WriteOp, WriteResult, decodeRequest, encodeRequest } from './requests';
import { LeaseHooks, applyDelete, applyPut, applyTxn, range, txnIsReadOnly, txnIsSerializable } from './kv-apply';
import { IdGenerator, computeClusterId, computeMemberId } from './ids';
import { Member, Membership, decodeMember, encodeMember } from './membership';
import { RaftDriver } from './raft-driver';
import type { Logger } from './logger';
import type { ServerMetrics } from './metrics';

/** A member of the initial cluster. */
export interface InitialMember {
  name: string;
  peerUrls: string[];
}

/** Everything a member needs to start. */
export interface ServerOptions {
  name: string;
  dataDir: string;
  initialCluster: InitialMember[];
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  /** This member's advertised peer URLs. */
  peerUrls: string[];
  /** This member's advertised client URLs. */
  clientUrls: string[];
  /** Where to listen for peers (empty: no peer listener). */
  listenPeer: { host: string; port: number }[];
  maxTxnOps: number;
  maxRequestBytes: number;
  snapshotCount: number;
  /** Log entries kept behind a snapshot so slow followers can catch up from the log. */
  snapshotCatchUpEntries: number;
  heartbeatMs: number;
  electionTicks: number;
  requestTimeoutMs: number;
  maxLearners: number;
  /** Shortest lease TTL in seconds (etcd: ceil(1.5 × election timeout)). */
  minLeaseTtl: number;
  /** Backend quota in bytes (null: none); above it the NOSPACE alarm is raised. */
  quotaBytes: number | null;
  logger: Logger;
  /** Crash-test hook called at the driver's failpoints (see RaftDriver). */
  failpoint?: (name: string) => void;
  /** Where leader changes, failed proposals and disk latencies are recorded; none when absent. */
  metrics?: ServerMetrics;
}

interface Waiter {
  resolve: (r: WriteResult) => void;
  reject: (e: Error) => void;
  /** When the request was made and when it times out (ms). */
  start: number;
  deadline: number;
}

interface ReadBatch {
  ctx: Uint8Array;
  waiters: { resolve: () => void; reject: (e: Error) => void; start: number; deadline: number }[];
}

/** Identity of a member, kept beside the state (not inside it: a snapshot from the leader replaces the state). */
interface Identity {
  memberId: string;
  clusterId: string;
}

/** One running member. */
export class EtcdServer {
  memberId: bigint;
  clusterId: bigint;
  /** Current leader (NONE when unknown). */
  leader: NodeId = NONE;
  /** Last applied log index. */
  appliedIndex = 0;
  /** Proposals (writes and membership changes) still waiting for their result. */
  get pendingProposals(): number {
    return this.waiters.size;
  }
  /** When the current leader was elected (ms), for timeout error selection. */
  leaderSince = 0;
  store: KvStore;
  backend: Backend;
  readonly membership: Membership;
  /** The watch hub, fed by the applier through the store's commit listener. */
  readonly hub: WatchHub;
  transport: PeerTransport | undefined;
  private consistentIndex = 0;
  private snapshotIndex = 0;
  /**
   * Where the applied state stands: index and term of the last applied entry and the configuration
   * after it. A snapshot sent to a follower carries this position rather than the last saved
   * snapshot's (the state it streams is the current one anyway), so that a member added since that
   * snapshot finds itself in the snapshot's configuration.
   */
  private appliedMeta: SnapshotMeta | undefined;
  private readonly waiters = new Map<bigint, Waiter>();
  private ids: IdGenerator;
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  private nextRead: ReadBatch | undefined;
  private inflightRead: ReadBatch | undefined;
  private readCounter = 0;
  private readonly leaderWaiters: (() => void)[] = [];
  /** The lease table; its state changes only through applied entries. */
  readonly lessor: Lessor;
  private readonly leases: LeaseHooks;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Active alarms, changed only through applied entries. */
  readonly alarms: Alarms;
  /** On-disk size of the state, refreshed every second (for the quota and Status). */
  dbSize = 0;
  /** Bytes admitted by the quota check since the last measurement of dbSize. */
  private growthSinceMeasure = 0;
  private sizeTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private raisingNoSpace = false;
  private compactor: Compactor;
  private driver!: RaftDriver;
  private stopping = false;
  private readonly staged = new Map<number, string>();
  private readonly memberDir: string;
  private attrsPublished = false;

  private constructor(
    readonly opts: ServerOptions,
    backend: Backend,
    store: KvStore,
    membership: Membership,
    identity: { memberId: bigint; clusterId: bigint },
  ) {
    this.backend = backend;
    this.store = store;
    this.watchFlushes(store);
    this.membership = membership;
    this.memberId = identity.memberId;
    this.clusterId = identity.clusterId;
    this.memberDir = path.join(opts.dataDir, 'member');
    this.ids = new IdGenerator(this.memberId, Date.now());
    this.compactor = new Compactor(store);
    this.hub = new WatchHub(store);
    store.onCommit = (rev, changes) => this.hub.notify(rev, changes);
    this.lessor = new Lessor(backend, opts.minLeaseTtl, () => Date.now());
    this.leases = { exists: (id) => this.lessor.exists(id), onAttach: (k, p, l) => this.lessor.onAttach(k, p, l) };
    this.alarms = new Alarms(backend);
  }

  private async refreshSize(): Promise<void> {
    try {
      const before = this.growthSinceMeasure;
      this.dbSize = await this.backend.approximateSize();
      this.growthSinceMeasure = Math.max(0, this.growthSinceMeasure - before);
    } catch {
      // the directory is being switched by a snapshot install
    }
  }

  /** Loads the leases of the current state and attaches their keys. */
  private async loadLeases(): Promise<void> {
    await this.lessor.load(this.backend, (fn) => {
      this.store.index.forEachInRange(makeRange(Uint8Array.of(0), Uint8Array.of(0)), (key, ki) => {
        if (ki.isLive() && ki.lease !== 0n) fn(key, ki.lease);
      });
    });
  }

  /** Leader: proposes the revocation of expired leases (at most 500 per tick, etcd's 1000/s). */
  private expireLeases(): void {
    if (this.stopping) return;
    for (const id of this.lessor.takeExpired(500)) {
      this.propose({ kind: 'lease-revoke', id }).catch(() => this.lessor.revokeFailed(id));
    }
  }

  /** The initial cluster grouped by member name: name → peer URLs. */
  private static initialMembers(opts: ServerOptions): Map<string, string[]> {
    const byName = new Map<string, string[]>();
    for (const m of opts.initialCluster) byName.set(m.name, [...(byName.get(m.name) ?? []), ...m.peerUrls]);
    return byName;
  }

  /** Opens the data dir (creating it for a new member) and starts the member. */
  static async start(opts: ServerOptions): Promise<EtcdServer> {
    const log = opts.logger;
    const memberDir = path.join(opts.dataDir, 'member');
    fs.mkdirSync(memberDir, { recursive: true, mode: 0o700 });
    removeStaleStateDirs(memberDir);
    const identityFile = path.join(memberDir, 'identity.json');
    let identity: { memberId: bigint; clusterId: bigint; peers?: Member[] } | undefined;
    if (fs.existsSync(identityFile)) {
      const j = JSON.parse(fs.readFileSync(identityFile, 'utf8')) as Identity;
      identity = { memberId: BigInt(`0x${j.memberId}`), clusterId: BigInt(`0x${j.clusterId}`) };
    } else if (opts.initialClusterState === 'new') {
      const byName = EtcdServer.initialMembers(opts);
      const mine = byName.get(opts.name);
      if (mine === undefined) {
        throw new EtcdError(0, `couldn't find local name "${opts.name}" in the initial cluster configuration`);
      }
      identity = {
        memberId: computeMemberId(mine, opts.initialClusterToken),
        clusterId: computeClusterId([...byName.values()].map((urls) => computeMemberId(urls, opts.initialClusterToken))),
      };
    } else {
      identity = await EtcdServer.discoverIdentity(opts);
    }
    const backend = await Backend.open(currentStateDir(memberDir));
    const store = await KvStore.open(backend, (level, msg, fields) => log[level](msg, fields));
    const membership = new Membership(backend);
    await membership.load();
    if (identity.peers === undefined && opts.initialClusterState === 'existing' && membership.list().every((m) => m.id === identity.memberId)) {
      // A member that joined but was restarted before it applied anything (its snapshot or its first
      // entries) knows no other member from its own state: ask --initial-cluster again, as at the join.
      identity.peers = await EtcdServer.rediscoverPeers(opts, identity.memberId);
    }
    const s = new EtcdServer(opts, backend, store, membership, identity);
    if (!fs.existsSync(identityFile)) {
      const tmp = `${identityFile}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify({ memberId: identity.memberId.toString(16), clusterId: identity.clusterId.toString(16) }));
      fs.renameSync(tmp, identityFile);
    }
    await s.loadLeases();
    await s.alarms.load(backend);
    await s.refreshSize();
    s.sizeTimer = setInterval(() => void s.refreshSize(), 1000);
    s.sizeTimer.unref();
    await s.startRaft(path.join(memberDir, 'wal'), identity.peers ?? []);
    s.expiryTimer = setInterval(() => s.expireLeases(), 500);
    await s.compactor.resume();
    return s;
  }

  /**
   * For a member joining an existing cluster: asks the members in --initial-cluster (through their
   * client URLs is not possible; through the peer transport's member query) for the member list.
   */
  private static async discoverIdentity(opts: ServerOptions): Promise<{ memberId: bigint; clusterId: bigint; peers: Member[] }> {
    const byName = EtcdServer.initialMembers(opts);
    const peers = [...byName.entries()].filter(([n]) => n !== opts.name).flatMap(([, urls]) => urls);
    const info = await PeerTransport.queryMembers(peers, opts.requestTimeoutMs);
    const mine = [...opts.peerUrls].sort().join(',');
    const me = info.members.find((m) => [...m.peerURLs].sort().join(',') === mine);
    if (me === undefined) {
      throw new EtcdError(0, `member with peer URLs ${opts.peerUrls.join(',')} is not in the cluster (add it with "etcdctl member add" first)`);
    }
    return { memberId: me.id, clusterId: info.clusterId, peers: info.members.filter((m) => m.id !== me.id) };
  }

  /** The other members as the peers in --initial-cluster report them; none when no peer answers. */
  private static async rediscoverPeers(opts: ServerOptions, memberId: bigint): Promise<Member[]> {
    const urls = [...EtcdServer.initialMembers(opts).entries()].filter(([n]) => n !== opts.name).flatMap(([, u]) => u);
    if (urls.length === 0) return [];
    try {
      const info = await PeerTransport.queryMembers(urls, opts.requestTimeoutMs);
      return info.members.filter((m) => m.id !== memberId);
    } catch (err) {
      opts.logger.warn('could not learn the cluster members from the initial cluster', { error: err instanceof Error ? err.message : String(err) });
      return [];
    }
  }

  private async startRaft(walDir: string, discovered: Member[]): Promise<void> {
    const log = this.opts.logger;
    this.consistentIndex = await this.store.consistentIndex();
    const opened = await Wal.open(walDir, { log: (level, msg, fields) => log[level](msg, fields) });
    const storage = new MemoryStorage();
    const fresh = opened.snapshot === undefined && opened.entries.length === 0 && opened.hardState.term === 0;
    if (opened.snapshot !== undefined) {
      storage.applySnapshot({ meta: opened.snapshot, data: new Uint8Array(0) });
      this.snapshotIndex = opened.snapshot.index;
    }
    if (opened.entries.length > 0) storage.append(opened.entries);
    storage.setHardState(opened.hardState);
    if (this.consistentIndex < this.snapshotIndex) {
      throw new InvariantError(`state at index ${this.consistentIndex} is behind the snapshot at ${this.snapshotIndex}`);
    }
    this.appliedIndex = this.snapshotIndex;
    const node = new RawNode({
      id: nodeId(this.memberId),
      electionTick: this.opts.electionTicks,
      heartbeatTick: 1,
      storage,
      applied: this.snapshotIndex,
      rng: new SeededRng(Date.now() ^ Number(this.memberId & 0xffffffn)),
      logger: (level, msg, fields) => log[level](msg, fields),
    });
    const bootstrapPeers = new Map<bigint, string[]>();
    if (fresh && this.opts.initialClusterState === 'new') {
      const byName = EtcdServer.initialMembers(this.opts);
      const peers = [...byName.entries()].map(([name, urls]) => {
        const id = computeMemberId(urls, this.opts.initialClusterToken);
        bootstrapPeers.set(id, urls);
        const m: Member = { id, name: id === this.memberId ? name : '', peerURLs: urls, clientURLs: [], isLearner: false };
        return { id: nodeId(id), context: encodeMember(m) };
      });
      node.bootstrap(peers);
    }
    if (this.opts.listenPeer.length > 0) {
      this.transport = new PeerTransport({
        memberId: this.memberId,
        clusterId: this.clusterId,
        listen: this.opts.listenPeer,
        logger: (level, msg, fields) => log[level](msg, fields),
        onMessage: (m) => this.driver.step(m),
        onSnapshot: (m, chunks) => this.stageSnapshot(m, chunks),
        onUnreachable: (id) => this.driver.reportUnreachable(id),
        onSnapshotStatus: (id, ok) => this.driver.reportSnapshot(id, ok),
        onRemoved: () => this.onRemoved(),
        onRpc: (_from, req) => this.onPeerRequest(req),
        membersQuery: () => ({
          clusterId: this.clusterId,
          members: this.membership.list().map((m) => ({ id: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner })),
        }),
      });
      await this.transport.start();
      for (const m of this.membership.list()) if (m.id !== this.memberId) this.transport.addPeer(nodeId(m.id), m.peerURLs);
      for (const [id, urls] of bootstrapPeers) if (id !== this.memberId) this.transport.addPeer(nodeId(id), urls);
      // A joining member knows the others from the member query until the log tells it.
      for (const m of discovered) this.transport.addPeer(nodeId(m.id), m.peerURLs);
    }
    this.driver = new RaftDriver(
      node,
      storage,
      opened.wal,
      {
        send: (msgs) => this.send(msgs),
        flush: () => this.transport?.flush(),
        apply: (entries) => this.applyEntries(entries),
        readStates: (rs) => this.onReadStates(rs),
        softState: (ss) => this.onSoftState(ss),
        installSnapshot: (snap) => this.installSnapshot(snap),
        fatal: (err) => this.fatal(err),
        failpoint: this.opts.failpoint,
        walSynced: (seconds) => this.opts.metrics?.walFsync.observe(seconds),
      },
      log,
    );
    this.driver.start(this.opts.heartbeatMs);
    this.refreshLearner();
    const voters = node.status().config.voters;
    if (voters.length === 1 && voters[0] === nodeId(this.memberId)) this.driver.campaign();
  }

  private send(msgs: Message[]): void {
    const t = this.transport;
    if (t === undefined) return;
    let plain: Message[] | undefined;
    for (const m of msgs) {
      if (m.type === MessageType.MsgSnap) {
        const at = this.appliedMeta;
        const msg = at !== undefined && m.snapshot !== undefined && at.index > m.snapshot.meta.index ? { ...m, snapshot: { meta: at, data: m.snapshot.data } } : m;
        t.sendSnapshot(msg, () => this.dumpAppliedState());
      } else {
        (plain ??= []).push(m);
      }
    }
    if (plain !== undefined) t.send(plain);
  }

  /** Streams the state database once every applied entry is in it (so it is at or past appliedMeta). */
  private async *dumpAppliedState(): AsyncGenerator<Uint8Array> {
    await this.store.flushed();
    yield* dumpState(this.backend.db);
  }

  private fatal(err: unknown): void {
    this.opts.logger.error('fatal error, stopping', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  }

  private onRemoved(): void {
    this.opts.logger.warn('this member was removed from the cluster; stopping');
    void this.stop().then(() => process.exit(0));
  }

  private onSoftState(ss: SoftState): void {
    if (ss.lead !== this.leader) {
      this.opts.logger.info('leader changed', { leader: ss.lead.toString(16), role: ss.role });
      const wasLeader = this.leader === nodeId(this.memberId);
      this.leader = ss.lead;
      this.leaderSince = Date.now();
      const isLeader = ss.lead === nodeId(this.memberId);
      // A new leader extends every lease by an election timeout before expiring anything.
      if (isLeader && !wasLeader) this.lessor.promote(this.opts.electionTicks * this.opts.heartbeatMs);
      if (!isLeader && wasLeader) this.lessor.demote();
      if (ss.lead !== NONE) {
        this.opts.metrics?.leaderChanges.inc();
        // A read index in flight when a new leader appears may never be answered: its readers get
        // "leader changed" (retryable) as etcd's do; reads queued behind it go to the new leader.
        const stale = this.inflightRead;
        if (stale !== undefined) {
          this.inflightRead = undefined;
          for (const w of stale.waiters) w.reject(Errors.leaderChanged());
          this.issueRead();
        }
        for (const w of this.leaderWaiters.splice(0)) w();
        this.publishAttributes();
      }
    }
  }

  /** The response header for the current state. */
  header(): { clusterId: bigint; memberId: bigint; revision: number; raftTerm: number } {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: this.store.currentRev, raftTerm: this.driver.storage.hardState().term };
  }

  /** Raft status of this member (for Status and health). */
  raftStatus(): ReturnType<RawNode['status']> {
    return this.driver.node.status();
  }

  private learner = false;

  /** True when this member is a learner (cached; refreshed when the configuration changes). */
  isLearner(): boolean {
    return this.learner;
  }

  private refreshLearner(): void {
    this.learner = this.driver.node.status().config.learners.includes(nodeId(this.memberId));
  }

  // ---------------------------------------------------------------- leases (leader-local parts)

  /** Answers a request forwarded by a follower (lease keep-alive and time-to-live, learner readiness). */
  private async onPeerRequest(req: unknown): Promise<unknown> {
    const r = req as { op?: string; id?: string };
    if (typeof r.id !== 'string') throw new Error('bad request');
    const id = BigInt(r.id);
    if (r.op === 'lease-renew') return { value: await this.leaseRenew(id) };
    if (r.op === 'lease-ttl') return { value: await this.leaseRemaining(id) };
    if (r.op === 'learner-ready') return { value: await this.learnerReady(id) };
    throw new Error(`unknown request ${String(r.op)}`);
  }

  private async toLeader<T>(req: Record<string, string>, local: () => T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.leader === nodeId(this.memberId)) return local();
      if (this.leader !== NONE && this.transport !== undefined) {
        try {
          const a = (await this.transport.request(this.leader, req, this.opts.requestTimeoutMs)) as { value: T };
          return a.value;
        } catch (err) {
          if (attempt > 3) throw err instanceof EtcdError ? err : Errors.timeout();
        }
      } else if (attempt > 20) {
        throw Errors.noLeader();
      }
      await new Promise((r) => setTimeout(r, this.opts.heartbeatMs * 2));
    }
  }

  /** Renews a lease on the leader (forwarding if needed); resolves with its TTL, 0 if unknown. */
  leaseRenew(id: bigint): Promise<number> {
    return this.toLeader({ op: 'lease-renew', id: id.toString() }, () => this.lessor.renew(id));
  }

  /** Remaining seconds of a lease according to the leader; -1 if unknown. */
  leaseRemaining(id: bigint): Promise<number> {
    return this.toLeader({ op: 'lease-ttl', id: id.toString() }, () => this.lessor.remaining(id));
  }

  // ---------------------------------------------------------------- snapshots

  private async stageSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const index = m.snapshot?.meta.index ?? 0;
    const dir = path.join(this.memberDir, `state-${index}-${Date.now().toString(36)}`);
    try {
      const n = await restoreState(dir, chunks);
      this.opts.logger.info('received state snapshot', { index, records: n });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    const old = this.staged.get(index);
    if (old !== undefined) fs.rmSync(old, { recursive: true, force: true });
    this.staged.set(index, dir);
  }

  /** Makes a received state snapshot the member's state (called by the driver for Ready.snapshot). */
  private async installSnapshot(snap: Snapshot): Promise<void> {
    const dir = this.staged.get(snap.meta.index);
    if (dir === undefined) throw new InvariantError(`no staged state for snapshot at index ${snap.meta.index}`);
    this.staged.delete(snap.meta.index);
    for (const d of this.staged.values()) fs.rmSync(d, { recursive: true, force: true });
    this.staged.clear();
    await this.store.flushed();
    // No catch-up read may touch the old database once it is closed; setStore() below resumes the hub.
    await this.hub.suspend();
    const oldDir = this.backend.path;
    await this.backend.close();
    switchStateDir(this.memberDir, dir);
    fs.rmSync(oldDir, { recursive: true, force: true });
    const log = this.opts.logger;
    this.backend = await Backend.open(dir);
    this.store = await KvStore.open(this.backend, (level, msg, fields) => log[level](msg, fields));
    this.store.onCommit = (rev, changes) => this.hub.notify(rev, changes);
    this.watchFlushes(this.store);
    this.hub.setStore(this.store);
    this.compactor = new Compactor(this.store);
    await this.membership.reload(this.backend);
    await this.loadLeases();
    await this.alarms.load(this.backend);
    this.consistentIndex = await this.store.consistentIndex();
    this.appliedIndex = snap.meta.index;
    this.snapshotIndex = snap.meta.index;
    const cs = snap.meta.confState;
    this.appliedMeta = { index: snap.meta.index, term: snap.meta.term, confState: { voters: [...cs.voters], learners: [...cs.learners] } };
    this.syncPeers();
    this.learner = snap.meta.confState.learners.includes(nodeId(this.memberId));
    this.opts.logger.info('installed state snapshot', { index: snap.meta.index, 'consistent-index': this.consistentIndex, revision: this.store.currentRev });
  }

  private syncPeers(): void {
    const t = this.transport;
    if (t === undefined) return;
    for (const m of this.membership.list()) if (m.id !== this.memberId) t.addPeer(nodeId(m.id), m.peerURLs);
  }

  // ---------------------------------------------------------------- apply

  private async applyEntries(entries: Entry[]): Promise<void> {
    let last: Entry | undefined;
    let confChanged = false;
    for (const e of entries) {
      last = e;
      if (e.type === EntryType.ConfChange) {
        this.applyConfChange(e);
        confChanged = true;
        continue;
      }
      if (e.index <= this.consistentIndex || e.data.length === 0) continue;
      let req: ReturnType<typeof decodeRequest>;
      try {
        req = decodeRequest(e.data);
      } catch (err) {
        throw new InvariantError(`undecodable entry at index ${e.index}: ${String(err)}`);
      }
      let result: WriteResult | undefined;
      let failure: Error | undefined;
      try {
        const r = this.applyOp(req.op);
        result = r instanceof Promise ? await r : r;
      } catch (err) {
        if (err instanceof EtcdError) failure = err;
        else throw err;
      }
      this.settle(req.id, result, failure);
    }
    if (last === undefined) return;
    this.appliedIndex = last.index;
    // The configuration is copied only when it may have changed; otherwise the previous (never
    // modified) copy is shared.
    let confState: SnapshotMeta['confState'];
    if (confChanged || this.appliedMeta === undefined) {
      const conf = this.driver.node.status().config;
      confState = { voters: [...conf.voters], learners: [...conf.learners] };
    } else {
      confState = this.appliedMeta.confState;
    }
    this.appliedMeta = { index: last.index, term: last.term, confState };
    if (last.index > this.consistentIndex) {
      this.consistentIndex = last.index;
      this.store.flushSoon(last.index, last.term);
    }
    this.resolveAppliedWaiters();
    if (this.appliedIndex - this.snapshotIndex >= this.opts.snapshotCount) await this.snapshot(last);
  }

  /** Backend commit durations go to the metrics; a failed write of applied records is fatal. */
  private watchFlushes(store: KvStore): void {
    store.onDeferredFlush = (seconds, err) => {
      if (err !== undefined) this.fatal(err);
      else this.opts.metrics?.backendCommit.observe(seconds);
    };
  }

  private settle(id: bigint, result: WriteResult | undefined, failure: Error | undefined): void {
    const w = this.waiters.get(id);
    if (w === undefined) return;
    this.waiters.delete(id);
    if (failure !== undefined) w.reject(failure);
    else w.resolve(result!);
  }

  private applyConfChange(e: Entry): void {
    const cc = decodeConfChange(e.data);
    this.driver.node.applyConfChange(cc);
    this.refreshLearner();
    let ctx: Member | undefined;
    let reqId: bigint | undefined;
    if (cc.context !== undefined && cc.context.length > 0) {
      ctx = decodeMember(cc.context);
      const raw = JSON.parse(Buffer.from(cc.context).toString('utf8')) as { reqId?: string };
      if (raw.reqId !== undefined) reqId = BigInt(`0x${raw.reqId}`);
    }
    const id = BigInt(cc.nodeId);
    if (e.index > this.consistentIndex) {
      const existing = this.membership.get(id);
      if (cc.type === 'remove-node') {
        this.store.stageOps(this.membership.remove(id));
      } else if (existing !== undefined) {
        this.store.stageOps(this.membership.upsert({ ...existing, isLearner: cc.type === 'add-learner' }));
      } else if (ctx !== undefined) {
        this.store.stageOps(this.membership.upsert({ ...ctx, id, isLearner: cc.type === 'add-learner' }));
      }
    }
    const t = this.transport;
    if (t !== undefined && id !== this.memberId) {
      if (cc.type === 'remove-node') t.removePeer(cc.nodeId);
      else {
        const m = this.membership.get(id) ?? ctx;
        if (m !== undefined) t.addPeer(cc.nodeId, m.peerURLs);
      }
    }
    if (reqId !== undefined) this.settle(reqId, { kind: 'member', revision: this.store.currentRev }, undefined);
    if (cc.type === 'remove-node' && id === this.memberId) {
      this.opts.logger.warn('this member was removed from the cluster');
      setTimeout(() => this.onRemoved(), 500).unref();
    }
  }

  /** Applies one write; synchronous where nothing is read from the backend (a plain put). Throws EtcdError. */
  private applyOp(op: WriteOp): WriteResult | Promise<WriteResult> {
    // With the NOSPACE alarm active, writes that add data fail; deletes, compaction and the rest pass.
    if (this.alarms.has(AlarmType.NOSPACE) && addsData(op)) throw Errors.noSpace();
    switch (op.kind) {
      case 'alarm': {
        const a = { memberId: op.memberId, alarm: op.alarm as AlarmType };
        if (op.action === 'activate') {
          this.store.stageOps(this.alarms.activate(a));
          return { kind: 'alarm', alarms: [a], revision: this.store.currentRev };
        }
        const ops = this.alarms.deactivate(a);
        if (ops === undefined) return { kind: 'alarm', alarms: [], revision: this.store.currentRev };
        this.store.stageOps(ops);
        return { kind: 'alarm', alarms: [a], revision: this.store.currentRev };
      }
      case 'put':
        return applyPut(this.store, op, this.leases);
      case 'delete':
        return applyDelete(this.store, op, this.leases);
      case 'txn':
        return applyTxn(this.store, op, this.leases);
      case 'compact': {
        const keep = this.store.compact(op.revision);
        const done = this.compactor.schedule(op.revision, keep);
        done.catch((err: unknown) => this.fatal(err));
        return { kind: 'compact', revision: this.store.currentRev, done };
      }
      case 'member-attr': {
        const m = this.membership.get(op.memberId);
        if (m !== undefined) this.store.stageOps(this.membership.upsert({ ...m, name: op.name, clientURLs: op.clientURLs }));
        return { kind: 'member', revision: this.store.currentRev };
      }
      case 'lease-grant': {
        const g = this.lessor.grant(op.id, op.ttl);
        this.store.stageOps(g.ops);
        return { kind: 'lease', id: op.id, ttl: g.ttl, revision: this.store.currentRev };
      }
      case 'lease-revoke': {
        const r = this.lessor.revoke(op.id);
        if (r.keys.length > 0) {
          const txn = this.store.beginWrite();
          for (const k of r.keys) txn.deleteRange({ key: k, end: undefined });
          txn.end();
        }
        this.store.stageOps(r.ops);
        return { kind: 'lease', id: op.id, ttl: 0, revision: this.store.currentRev };
      }
      case 'member-update': {
        const m = this.membership.get(op.memberId);
        if (m === undefined) throw Errors.memberNotFound();
        this.store.stageOps(this.membership.upsert({ ...m, peerURLs: op.peerURLs }));
        if (op.memberId !== this.memberId) this.transport?.updatePeer(nodeId(op.memberId), op.peerURLs);
        return { kind: 'member', revision: this.store.currentRev };
      }
    }
  }

  /** Records a snapshot of the applied state and cuts the log behind it. */
  private async snapshot(last: Entry): Promise<void> {
    await this.store.flushed();
    await this.backend.sync();
    const node = this.driver.node;
    const cs = node.status().config;
    const snap = this.driver.storage.createSnapshot(last.index, cs, new Uint8Array(0));
    await this.driver.wal.saveSnapshot(snap.meta);
    const compactTo = last.index - this.opts.snapshotCatchUpEntries;
    if (compactTo > this.driver.storage.firstIndex()) this.driver.storage.compact(compactTo);
    this.snapshotIndex = last.index;
    await this.driver.wal.releaseTo(Math.max(0, compactTo));
    this.opts.logger.info('saved snapshot', { index: last.index });
  }

  private resolveAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const keep: typeof this.appliedWaiters = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.appliedIndex) w.resolve();
      else keep.push(w);
    }
    this.appliedWaiters = keep;
  }

  /** Publishes this member's name and client URLs through the log, once per start. */
  private publishAttributes(): void {
    if (this.attrsPublished) return;
    this.attrsPublished = true;
    const op: WriteOp = { kind: 'member-attr', memberId: this.memberId, name: this.opts.name, clientURLs: this.opts.clientUrls };
    const attempt = (): void => {
      this.propose(op).catch(() => {
        if (!this.stopping) setTimeout(attempt, 500).unref();
      });
    };
    attempt();
  }

  // ---------------------------------------------------------------- maintenance

  /**
   * etcd's quota check before proposing a write that adds `cost` bytes: past the quota the NOSPACE
   * alarm is raised (through the log) and the request fails.
   */
  checkQuota(cost: number): void {
    const q = this.opts.quotaBytes;
    if (this.alarms.has(AlarmType.NOSPACE)) throw Errors.noSpace();
    if (q === null) return;
    // Growth since the last size measurement counts too, so a burst cannot slip past the quota.
    if (this.dbSize + this.growthSinceMeasure + cost <= q) {
      this.growthSinceMeasure += cost;
      return;
    }
    if (!this.raisingNoSpace) {
      this.raisingNoSpace = true;
      this.propose({ kind: 'alarm', action: 'activate', memberId: this.memberId, alarm: AlarmType.NOSPACE })
        .catch(() => undefined)
        .finally(() => (this.raisingNoSpace = false));
    }
    throw Errors.noSpace();
  }

  /**
   * Hash of the MVCC key space up to `rev` (0: current), over the records compaction keeps, so every
   * member of a healthy cluster reports the same hash at the same revision.
   */
  async hashKV(rev: number): Promise<{ hash: number; compactRev: number; hashRev: number }> {
    const store = this.store;
    const compactRev = store.compactRev;
    if (rev > 0 && rev <= compactRev) throw Errors.compacted();
    if (rev > store.currentRev) throw Errors.futureRev();
    if (rev <= 0) rev = store.currentRev;
    await store.flushed();
    const keep = store.index.keep(rev);
    let h = crc32cUpdate(0, Buffer.from('key'));
    const gen = store.beginRead();
    try {
      for await (const [k, v] of store.backend.kv.iterator({ lt: encodeRevision(rev + 1, 0) })) {
        const r = decodeRevision(k);
        if (r.main <= compactRev && keep.size > 0 && !keep.has(revKey(r.main, r.sub))) continue;
        h = crc32cUpdate(h, k);
        h = crc32cUpdate(h, v);
      }
    } finally {
      store.endRead(gen);
    }
    return { hash: h >>> 0, compactRev: Math.max(compactRev, 0), hashRev: rev };
  }

  /** Hash of the whole state database (for testing, as etcd documents its Hash). */
  async hashAll(): Promise<number> {
    await this.store.flushed();
    let h = 0;
    for await (const [k, v] of this.backend.db.iterator({ keyEncoding: 'view', valueEncoding: 'view' })) {
      h = crc32cUpdate(h, k);
      h = crc32cUpdate(h, v);
    }
    return h >>> 0;
  }

  /** Compacts the LevelDB files of the whole key space (etcd's defragment); reads go on meanwhile. */
  async defragment(): Promise<void> {
    await this.store.flushed();
    const db = this.backend.db as unknown as { compactRange(a: Uint8Array, b: Uint8Array): Promise<void> };
    await db.compactRange(Buffer.alloc(0), Buffer.alloc(64, 0xff));
    await this.refreshSize();
  }

  /** Writes a point-in-time copy of the state to `file` (for the Snapshot stream). */
  async snapshotToFile(file: string): Promise<{ size: number; sha256: Buffer }> {
    await this.store.flushed();
    return writeSnapshotFile(this.backend.db, file);
  }

  // ---------------------------------------------------------------- writes

  /** The error for a request that timed out, following etcd's rules. */
  private timeoutError(start: number): EtcdError {
    const electionMs = this.opts.electionTicks * this.opts.heartbeatMs;
    if (start > this.leaderSince - 2 * electionMs && start < this.leaderSince) return Errors.timeoutDueToLeaderFail();
    if (this.leader !== NONE && this.leader !== nodeId(this.memberId) && this.transport !== undefined) {
      const since = this.transport.activeSince(this.leader);
      if (since === undefined || since > start) return Errors.timeoutDueToConnectionLost();
    }
    return Errors.timeout();
  }

  /** Proposes a write and resolves with its result once applied on this member. */
  propose(op: WriteOp): Promise<WriteResult> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    const id = this.ids.id();
    const data = encodeRequest(id, op);
    if (data.length > this.opts.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    const start = Date.now();
    return new Promise<WriteResult>((resolve, reject) => {
      this.addWaiter(id, resolve, reject, start);
      this.queueProposal(id, data);
    });
  }

  /**
   * Registers a caller waiting for request `id`. Timeouts are enforced by one periodic sweep rather
   * than a timer per request (cheaper on the hot path).
   */
  private addWaiter(id: bigint, resolve: (r: WriteResult) => void, reject: (e: Error) => void, start: number): void {
    this.waiters.set(id, { resolve, reject, start, deadline: start + this.opts.requestTimeoutMs });
    this.ensureSweep();
  }

  private ensureSweep(): void {
    if (this.sweepTimer !== undefined || this.stopping) return;
    this.sweepTimer = setInterval(() => this.sweepWaiters(), Math.min(100, this.opts.requestTimeoutMs));
    this.sweepTimer.unref();
  }

  private sweepWaiters(): void {
    const now = Date.now();
    for (const [id, w] of this.waiters) {
      if (w.deadline > now) continue;
      this.waiters.delete(id);
      this.opts.metrics?.proposalsFailed.inc();
      w.reject(this.timeoutError(w.start));
    }
    // Reads waiting for a read index: reject the expired ones (a later answer finds them settled).
    for (const batch of [this.inflightRead, this.nextRead]) {
      if (batch === undefined) continue;
      const live = batch.waiters.filter((w) => w.deadline > now);
      if (live.length === batch.waiters.length) continue;
      for (const w of batch.waiters) if (w.deadline <= now) w.reject(this.timeoutError(w.start));
      batch.waiters = live;
    }
  }

  private queueProposal(id: bigint, data: Uint8Array): void {
    this.driver.propose(data, (err) => this.retryLater(id, err, () => this.queueProposal(id, data)));
  }

  /** A proposal was dropped: retry when a leader is known (the request's timer still runs). */
  private retryLater(id: bigint, err: unknown, again: () => void): void {
    if (!(err instanceof ProposalDroppedError)) {
      // The core refused the request itself (e.g. an invalid configuration change).
      this.settle(id, undefined, err instanceof EtcdError ? err : new EtcdError(2, err instanceof Error ? err.message : String(err)));
      return;
    }
    const retry = (): void => {
      if (this.waiters.has(id)) again();
    };
    if (this.leader === NONE) this.leaderWaiters.push(retry);
    else setTimeout(retry, this.opts.heartbeatMs).unref();
  }

  private tryPropose(id: bigint, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.retryLater(id, err, () => this.tryPropose(id, fn));
    }
  }

  /** Proposes a membership change and resolves once it is applied here. */
  proposeConfChange(cc: ConfChange, member: Member | undefined): Promise<WriteResult> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    const id = this.ids.id();
    const start = Date.now();
    if (member !== undefined) {
      const ctx = JSON.parse(Buffer.from(encodeMember(member)).toString('utf8')) as Record<string, unknown>;
      ctx.reqId = id.toString(16);
      cc.context = Buffer.from(JSON.stringify(ctx));
    } else {
      cc.context = Buffer.from(JSON.stringify({ id: cc.nodeId.toString(16), reqId: id.toString(16) }));
    }
    return new Promise<WriteResult>((resolve, reject) => {
      this.addWaiter(id, resolve, reject, start);
      this.tryPropose(id, () => this.driver.proposeConfChange(cc));
    });
  }

  /** Put / DeleteRange / write Txn / Compact through Raft. */
  write(op: WriteOp): Promise<WriteResult> {
    return this.propose(op);
  }

  /** Transfers leadership to `to` (this member must be the leader). Resolves when it moved. */
  async moveLeader(to: bigint): Promise<void> {
    if (this.leader !== nodeId(this.memberId)) throw Errors.notLeader();
    const target = this.membership.get(to);
    if (target === undefined || target.isLearner) throw Errors.badLeaderTransferee();
    this.driver.transferLeader(nodeId(to));
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    while (Date.now() < deadline) {
      if (this.leader === nodeId(to)) return;
      await new Promise((r) => setTimeout(r, this.opts.heartbeatMs));
    }
    throw Errors.timeoutLeaderTransfer();
  }

  /**
   * True when a learner has caught up enough to be promoted (match ≥ 90% of the leader's). Only
   * the leader knows; a follower asks it.
   */
  learnerReady(id: bigint): Promise<boolean> {
    return this.toLeader({ op: 'learner-ready', id: id.toString() }, () => this.learnerReadyHere(id));
  }

  private learnerReadyHere(id: bigint): boolean {
    const st = this.driver.node.status();
    const p = st.progress?.get(nodeId(id));
    const mine = st.progress?.get(nodeId(this.memberId));
    if (p === undefined || mine === undefined) return false;
    return p.match >= mine.match * 0.9;
  }

  // ---------------------------------------------------------------- reads

  /** Waits until a read started now may be served linearizably from local state. */
  linearizableBarrier(): Promise<void> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    return new Promise<void>((resolve, reject) => {
      if (this.nextRead === undefined) {
        const ctx = Buffer.alloc(8);
        ctx.writeBigUInt64BE(BigInt(++this.readCounter));
        this.nextRead = { ctx, waiters: [] };
      }
      const start = Date.now();
      this.nextRead.waiters.push({ resolve, reject, start, deadline: start + this.opts.requestTimeoutMs });
      this.ensureSweep();
      this.issueRead();
    });
  }

  private issueRead(): void {
    if (this.inflightRead !== undefined || this.nextRead === undefined) return;
    const batch = this.nextRead;
    this.nextRead = undefined;
    this.inflightRead = batch;
    const issue = (): void => {
      if (this.inflightRead !== batch) return;
      try {
        this.driver.readIndex(batch.ctx);
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
    };
    issue();
    // A read index request can be dropped (no leader, leader changed): retry until answered.
    const retry = setInterval(() => {
      if (this.inflightRead !== batch || batch.waiters.length === 0) {
        clearInterval(retry);
        return;
      }
      issue();
    }, Math.max(this.opts.heartbeatMs * 5, 100));
    retry.unref();
  }

  private onReadStates(rs: ReadState[]): void {
    for (const r of rs) {
      const batch = this.inflightRead;
      if (batch === undefined || Buffer.compare(batch.ctx, r.ctx) !== 0) continue;
      this.inflightRead = undefined;
      const done = (): void => {
        for (const w of batch.waiters) w.resolve();
      };
      if (this.appliedIndex >= r.index) done();
      else this.appliedWaiters.push({ index: r.index, resolve: done });
    }
    this.issueRead();
  }

  /** Serves a Range: linearizable unless op.serializable. */
  async range(op: RangeOp): Promise<RangeResult> {
    if (!op.serializable) await this.linearizableBarrier();
    return range(this.store, op);
  }

  /** Serves a Txn: read-only ones locally (after a ReadIndex unless all serializable), others through Raft. */
  async txn(op: TxnOp): Promise<TxnResult> {
    if (txnIsReadOnly(op)) {
      if (!txnIsSerializable(op)) await this.linearizableBarrier();
      return applyTxn(this.store, op, this.leases, false);
    }
    return (await this.propose(op)) as TxnResult;
  }

  /** Stops the member: no new requests; pending ones fail with "server stopped". */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.expiryTimer !== undefined) clearInterval(this.expiryTimer);
    if (this.sizeTimer !== undefined) clearInterval(this.sizeTimer);
    this.hub.close();
    await this.driver.stop();
    await this.transport?.stop();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    for (const [id, w] of this.waiters) {
      w.reject(Errors.stopped());
      this.waiters.delete(id);
    }
    await this.store.flushed();
    await this.store.saveIndex();
    await this.backend.close();
  }
}

/** True when the request can add data (capped while the NOSPACE alarm is active). */
function addsData(op: WriteOp): boolean {
  if (op.kind === 'put' || op.kind === 'lease-grant') return true;
  if (op.kind !== 'txn') return false;
  const hasPut = (ops: typeof op.success): boolean =>
    ops.some((o) => o.kind === 'put' || (o.kind === 'txn' && (hasPut(o.success) || hasPut(o.failure))));
  return hasPut(op.success) || hasPut(op.failure);
}
