/**
 * The composition root of one member: WAL + Raft driver, the applier, the MVCC store, reads.
 *
 * Write path: a client write becomes an internal request (request id + one operation), is proposed,
 * and its caller waits on the id. The applier decodes committed entries, skips those at or below
 * the consistent index, applies them, writes one LevelDB batch per applied batch (with the new
 * consistent index), then resolves the waiters.
 *
 * Read path: linearizable reads batch behind one ReadIndex and wait until applied ≥ that index;
 * serializable reads are served locally at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Errors, EtcdError, InvariantError } from '../errors';
import { KvStore } from '../mvcc/kv-store';
import { Compactor } from '../mvcc/compactor';
import { Backend } from '../storage/backend';
import { Wal } from '../storage/wal';
import { MemoryStorage } from '../raft/memory-storage';
import { RawNode } from '../raft/raw-node';
import { SeededRng } from '../raft/rng';
import { ProposalDroppedError } from '../raft/errors';
import { decodeConfChange } from '../raft/confchange/codec';
import { Entry, EntryType, NodeId, NONE, ReadState, SoftState, nodeId } from '../raft/types';
import {
  CompactResult,
  RangeOp,
  RangeResult,
  TxnOp,
  TxnResult,
  WriteOp,
  WriteResult,
  decodeRequest,
  encodeRequest,
} from './requests';
import { LeaseHooks, applyDelete, applyPut, applyTxn, noLeases, range, txnIsReadOnly, txnIsSerializable } from './kv-apply';
import { IdGenerator, computeClusterId, computeMemberId } from './ids';
import { RaftDriver } from './raft-driver';
import { WatchHub } from '../watch/watch-hub';
import type { Logger } from './logger';

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
  initialClusterToken: string;
  clientUrls: string[];
  maxTxnOps: number;
  maxRequestBytes: number;
  snapshotCount: number;
  heartbeatMs: number;
  electionTicks: number;
  requestTimeoutMs: number;
  logger: Logger;
}

interface Waiter {
  resolve: (r: WriteResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface ReadBatch {
  ctx: Uint8Array;
  waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

/** Number of log entries kept behind a snapshot so slow followers can catch up from the log. */
const CATCH_UP_ENTRIES = 5000;

/** One running member. */
export class EtcdServer {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** Current Raft term (for response headers). */
  term = 0;
  /** Current leader (NONE when unknown). */
  leader: NodeId = NONE;
  /** Last applied log index. */
  appliedIndex = 0;
  private consistentIndex = 0;
  private snapshotIndex = 0;
  private readonly waiters = new Map<bigint, Waiter>();
  private readonly ids: IdGenerator;
  private appliedWaiters: { index: number; resolve: () => void }[] = [];
  private nextRead: ReadBatch | undefined;
  private inflightRead: ReadBatch | undefined;
  private readCounter = 0;
  private readonly leaderWaiters: (() => void)[] = [];
  private readonly leases: LeaseHooks = noLeases;
  private compactor: Compactor;
  /** The watch hub, fed by the applier through the store's commit listener. */
  readonly hub: WatchHub;
  private driver!: RaftDriver;
  private stopping = false;

  private constructor(
    readonly opts: ServerOptions,
    readonly backend: Backend,
    readonly store: KvStore,
  ) {
    const me = opts.initialCluster.filter((m) => m.name === opts.name).flatMap((m) => m.peerUrls);
    if (me.length === 0) throw new EtcdError(0, `couldn't find local name "${opts.name}" in the initial cluster configuration`);
    this.memberId = computeMemberId(me, opts.initialClusterToken);
    const byName = new Map<string, string[]>();
    for (const m of opts.initialCluster) byName.set(m.name, [...(byName.get(m.name) ?? []), ...m.peerUrls]);
    this.clusterId = computeClusterId([...byName.values()].map((urls) => computeMemberId(urls, opts.initialClusterToken)));
    this.ids = new IdGenerator(this.memberId, Date.now());
    this.compactor = new Compactor(store);
    this.hub = new WatchHub(store);
    store.onCommit = (rev, changes) => this.hub.notify(rev, changes);
  }

  /** Opens the data dir (creating it for a new member) and starts the member. */
  static async start(opts: ServerOptions): Promise<EtcdServer> {
    const log = opts.logger;
    const memberDir = path.join(opts.dataDir, 'member');
    fs.mkdirSync(memberDir, { recursive: true, mode: 0o700 });
    const backend = await Backend.open(path.join(memberDir, 'state'));
    const store = await KvStore.open(backend, (level, msg, fields) => log[level](msg, fields));
    const s = new EtcdServer(opts, backend, store);
    await s.startRaft(path.join(memberDir, 'wal'));
    await s.compactor.resume();
    return s;
  }

  private async startRaft(walDir: string): Promise<void> {
    const log = this.opts.logger;
    this.consistentIndex = await this.store.consistentIndex();
    const opened = await Wal.open(walDir, {
      log: (level, msg, fields) => log[level](msg, fields),
    });
    const storage = new MemoryStorage();
    const fresh = opened.snapshot === undefined && opened.entries.length === 0 && opened.hardState.term === 0;
    if (opened.snapshot !== undefined) {
      storage.applySnapshot({ meta: opened.snapshot, data: new Uint8Array(0) });
      this.snapshotIndex = opened.snapshot.index;
    }
    if (opened.entries.length > 0) storage.append(opened.entries);
    storage.setHardState(opened.hardState);
    this.term = opened.hardState.term;
    if (this.consistentIndex < this.snapshotIndex) {
      throw new InvariantError(`state at index ${this.consistentIndex} is behind the snapshot at ${this.snapshotIndex}`);
    }
    const node = new RawNode({
      id: nodeId(this.memberId),
      electionTick: this.opts.electionTicks,
      heartbeatTick: 1,
      storage,
      applied: this.snapshotIndex,
      rng: new SeededRng(Date.now() ^ Number(this.memberId & 0xffffffn)),
      logger: (level, msg, fields) => log[level === 'debug' ? 'debug' : level](msg, fields),
    });
    if (fresh) {
      const byName = new Map<string, string[]>();
      for (const m of this.opts.initialCluster) byName.set(m.name, [...(byName.get(m.name) ?? []), ...m.peerUrls]);
      node.bootstrap(
        [...byName.entries()].map(([name, urls]) => ({
          id: nodeId(computeMemberId(urls, this.opts.initialClusterToken)),
          context: Buffer.from(JSON.stringify({ name, peerURLs: urls })),
        })),
      );
    }
    this.driver = new RaftDriver(
      node,
      storage,
      opened.wal,
      {
        send: () => undefined,
        apply: (entries) => this.applyEntries(entries),
        readStates: (rs) => this.onReadStates(rs),
        softState: (ss) => this.onSoftState(ss),
        fatal: (err) => this.fatal(err),
      },
      log,
    );
    this.driver.start(this.opts.heartbeatMs);
    if (this.opts.initialCluster.length === 1 || new Set(this.opts.initialCluster.map((m) => m.name)).size === 1) {
      this.driver.campaign();
    }
  }

  private fatal(err: unknown): void {
    this.opts.logger.error('fatal error, stopping', { error: err instanceof Error ? err.stack ?? err.message : String(err) });
    process.exit(1);
  }

  private onSoftState(ss: SoftState): void {
    if (ss.lead !== this.leader) {
      this.opts.logger.info('leader changed', { leader: ss.lead.toString(16), role: ss.role });
      this.leader = ss.lead;
      if (ss.lead !== NONE) for (const w of this.leaderWaiters.splice(0)) w();
    }
  }

  /** The response header for the current state. */
  header(): { clusterId: bigint; memberId: bigint; revision: number; raftTerm: number } {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: this.store.currentRev, raftTerm: this.driver.storage.hardState().term };
  }

  // ---------------------------------------------------------------- apply

  private async applyEntries(entries: Entry[]): Promise<void> {
    let last: Entry | undefined;
    for (const e of entries) {
      last = e;
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        this.driver.node.applyConfChange(cc);
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
        result = await this.applyOp(req.op);
      } catch (err) {
        if (err instanceof EtcdError) failure = err;
        else throw err;
      }
      const w = this.waiters.get(req.id);
      if (w !== undefined) {
        this.waiters.delete(req.id);
        clearTimeout(w.timer);
        if (failure !== undefined) w.reject(failure);
        else w.resolve(result!);
      }
    }
    if (last === undefined) return;
    this.appliedIndex = last.index;
    if (last.index > this.consistentIndex) {
      this.consistentIndex = last.index;
      this.store.flush(last.index, last.term).catch((err: unknown) => this.fatal(err));
    }
    this.resolveAppliedWaiters();
    if (this.appliedIndex - this.snapshotIndex >= this.opts.snapshotCount) await this.snapshot(last);
  }

  private async applyOp(op: WriteOp): Promise<WriteResult> {
    switch (op.kind) {
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
    const compactTo = last.index - CATCH_UP_ENTRIES;
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

  // ---------------------------------------------------------------- writes

  /** Proposes a write and resolves with its result once applied on this member. */
  propose(op: WriteOp): Promise<WriteResult> {
    if (this.stopping) return Promise.reject(Errors.stopped());
    const id = this.ids.id();
    const data = encodeRequest(id, op);
    if (data.length > this.opts.maxRequestBytes) return Promise.reject(Errors.requestTooLarge());
    return new Promise<WriteResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(Errors.timeout());
      }, this.opts.requestTimeoutMs);
      this.waiters.set(id, { resolve, reject, timer });
      this.tryPropose(id, data);
    });
  }

  private tryPropose(id: bigint, data: Uint8Array): void {
    try {
      this.driver.propose(data);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      // No leader yet: retry when one is known (the request timer still runs).
      this.leaderWaiters.push(() => {
        if (this.waiters.has(id)) this.tryPropose(id, data);
      });
    }
  }

  /** Put / DeleteRange / write Txn / Compact through Raft. */
  async write(op: WriteOp): Promise<WriteResult> {
    const res = await this.propose(op);
    if (res.kind === 'compact') return res as CompactResult;
    return res;
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
      const timer = setTimeout(() => reject(Errors.timeout()), this.opts.requestTimeoutMs);
      this.nextRead.waiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.issueRead();
    });
  }

  private issueRead(): void {
    if (this.inflightRead !== undefined || this.nextRead === undefined) return;
    const batch = this.nextRead;
    this.nextRead = undefined;
    this.inflightRead = batch;
    try {
      this.driver.readIndex(batch.ctx);
    } catch (err) {
      this.inflightRead = undefined;
      for (const w of batch.waiters) w.reject(err instanceof EtcdError ? err : Errors.noLeader());
    }
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
    this.hub.close();
    await this.driver.stop();
    for (const [id, w] of this.waiters) {
      clearTimeout(w.timer);
      w.reject(Errors.stopped());
      this.waiters.delete(id);
    }
    await this.store.flushed();
    await this.backend.close();
  }
}
