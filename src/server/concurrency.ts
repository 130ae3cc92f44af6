/**
 * Distributed locks and leader elections served by the member itself (the v3lock and v3election
 * services), built only from the member's own Txn, Range and DeleteRange and an in-process watch.
 * They use the key layout of etcd's client-side recipes, so a lock taken here and one taken by
 * `etcdctl lock` (or any client using etcd's concurrency package) on the same name exclude each
 * other, and an `etcdctl elect` campaigner competes with Campaign callers.
 *
 * Key layout, for a lock or election called NAME:
 *   - every contender owns one key `NAME/<lease id in lowercase hex>`, attached to its lease, so
 *     the key disappears when the contender's lease ends;
 *   - the contender whose key has the lowest create revision under `NAME/` holds the lock (leads);
 *   - the others queue in create-revision order; each one waits only for the deletion of its
 *     predecessor (the key with the largest create revision below its own), then looks again.
 *
 * Worked example (lock "job", leases 0x1a and 0x2b):
 *   rev 10  Txn [create(job/1a) = 0] → Put job/1a (lease 0x1a); holder = job/1a     → acquired
 *   rev 11  Txn [create(job/2b) = 0] → Put job/2b (lease 0x2b); holder = job/1a     → waits
 *           Range job/ with max create revision 10, last by create → job/1a; watch its deletion
 *   rev 12  Delete job/1a (Unlock, or lease 0x1a expired)                            → wakes
 *           Range again → nothing below 11; own key still there (created at 11)     → acquired
 *
 * A lease id of 0 in a request makes the member grant a fresh lease of SESSION_TTL_SECONDS that
 * nobody keeps alive, as etcd does. Every failure is a plain error for the caller (see
 * `asPlainError`).
 */
import { Code, EtcdError, Errors, InvariantError } from '../errors';
import { KeyRange, makeRange, prefixEnd } from '../mvcc/key-range';
import type { KeyValue } from '../mvcc/kv-codec';
import type { WatchEvent, WatchHub, WatchSink } from '../watch/watch-hub';
import { Watcher } from '../watch/watcher-group';
import {
  Compare,
  CompareResult,
  CompareTarget,
  DeleteOp,
  PutOp,
  RangeOp,
  RangeResult,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnOp,
  TxnResult,
  WriteOp,
  WriteResult,
} from './requests';

/** TTL in seconds of the lease granted for a request that names no lease (etcd's session default). */
export const SESSION_TTL_SECONDS = 60;

/** Event batches an in-process watch buffers before it asks the hub to hold back. */
const MAX_BUFFERED_BATCHES = 64;

const EMPTY = new Uint8Array(0);

/** What locks and elections need from the member: its client-facing reads and writes and its watch hub. */
export interface MemberAccess {
  /** A Range; linearizable unless op.serializable. */
  range(op: RangeOp): Promise<RangeResult>;
  /** A Txn (through the log unless read-only). */
  txn(op: TxnOp): Promise<TxnResult>;
  /** A write through the log. */
  write(op: WriteOp): Promise<WriteResult>;
  /** The member's watch hub. */
  readonly hub: WatchHub;
}

/** A held lock: the owner key and the revision of the response header. */
export interface LockResult {
  /** `NAME/<lease hex>`: exists while the lock is held; its create revision is a fencing token. */
  key: Uint8Array;
  /** Header revision: the store revision at which the lock was seen held. */
  revision: number;
}

/** Identifies a leader (etcd's LeaderKey). */
export interface LeaderKey {
  name: Uint8Array;
  /** The leader's key, `NAME/<lease hex>`. */
  key: Uint8Array;
  /** Create revision of `key`. */
  rev: number;
  lease: bigint;
}

/** Result of a won campaign. */
export interface CampaignResult {
  leader: LeaderKey;
  /** Header revision: the revision of the campaign's own Txn (as etcd reports it). */
  revision: number;
}

/** The current leader of an election. */
export interface LeaderResult {
  kv: KeyValue;
  /** Header revision of the read. */
  revision: number;
}

/**
 * etcd serves locks and elections through an internal client, so every failure, whatever its
 * status on the KV API, reaches the caller as a plain error: gRPC UNKNOWN with the same message.
 * Returns the error to report for `err`.
 */
export function asPlainError(err: unknown): Error {
  if (err instanceof EtcdError) return err.code === Code.UNKNOWN ? err : new EtcdError(Code.UNKNOWN, err.message);
  return err instanceof Error ? err : new Error(String(err));
}

/** The prefix under which contenders of `name` put their keys: `name/`. */
export function contenderPrefix(name: Uint8Array): Uint8Array {
  return Buffer.concat([name, Buffer.from('/')]);
}

/** The key a contender with `lease` owns under `name`: `name/<lease in lowercase hex>` (negative ids keep their sign, like Go's %x). */
export function contenderKey(name: Uint8Array, lease: bigint): Uint8Array {
  return Buffer.concat([name, Buffer.from(`/${lease.toString(16)}`)]);
}

function rangeOp(key: Uint8Array, rangeEnd: Uint8Array, o: Partial<RangeOp> = {}): RangeOp {
  return {
    kind: 'range',
    key,
    rangeEnd,
    limit: 0,
    revision: 0,
    sortOrder: SortOrder.NONE,
    sortTarget: SortTarget.KEY,
    serializable: false,
    keysOnly: false,
    countOnly: false,
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
    ...o,
  };
}

/** The oldest contender under `prefix` (lowest create revision). */
function firstCreated(prefix: Uint8Array): RangeOp {
  return rangeOp(prefix, prefixEnd(prefix), { sortTarget: SortTarget.CREATE, sortOrder: SortOrder.ASCEND, limit: 1 });
}

/** The youngest contender under `prefix` created at or before `maxCreateRev`. */
function lastCreatedUpTo(prefix: Uint8Array, maxCreateRev: number): RangeOp {
  return rangeOp(prefix, prefixEnd(prefix), {
    sortTarget: SortTarget.CREATE,
    sortOrder: SortOrder.DESCEND,
    limit: 1,
    maxCreateRevision: maxCreateRev,
  });
}

function createRevisionIs(key: Uint8Array, rev: number): Compare {
  return { result: CompareResult.EQUAL, target: CompareTarget.CREATE, key, rangeEnd: EMPTY, union: { field: 'create', num: rev } };
}

function putOp(key: Uint8Array, value: Uint8Array, lease: bigint): PutOp {
  return { kind: 'put', key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false };
}

function deleteOp(key: Uint8Array): DeleteOp {
  return { kind: 'delete', key, rangeEnd: EMPTY, prevKv: false };
}

function txnOp(compare: Compare[], success: RequestOp[], failure: RequestOp[]): TxnOp {
  return { kind: 'txn', compare, success, failure };
}

function rangeAt(res: TxnResult, i: number): RangeResult {
  const r = res.responses[i];
  if (r === undefined || r.kind !== 'range') throw new InvariantError(`txn response ${i} is not a range`);
  return r;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** One batch of events handed over by the hub; `rev` is its header revision. */
interface EventBatch {
  events: WatchEvent[];
  rev: number;
}

let nextInternalWatchId = 1;

/**
 * A watcher registered on the member's hub from inside the process: the hub hands it events in
 * revision order; `next()` takes them one batch at a time. It holds back the hub (reports paused)
 * while MAX_BUFFERED_BATCHES batches wait to be taken. Call `close()` when done.
 */
class InternalWatch implements WatchSink {
  private readonly batches: EventBatch[] = [];
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly watcher: Watcher;

  constructor(
    private readonly hub: WatchHub,
    range: KeyRange,
    startRev: number,
  ) {
    this.watcher = new Watcher(-nextInternalWatchId++, this, range, startRev, false, false, false, false, false);
    hub.add(this.watcher);
  }

  get paused(): boolean {
    return this.batches.length >= MAX_BUFFERED_BATCHES;
  }

  sendEvents(_w: Watcher, events: WatchEvent[], rev: number): void {
    this.batches.push({ events, rev });
    this.notify();
  }

  sendCompacted(): void {
    this.failure = Errors.compacted();
    this.notify();
  }

  sendProgress(): void {
    // Never asked for.
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** The next batch; rejects when the watch was compacted away or `signal` aborts. */
  async next(signal: AbortSignal): Promise<EventBatch> {
    for (;;) {
      if (signal.aborted) throw Errors.requestCanceled();
      const wasPaused = this.paused;
      const b = this.batches.shift();
      if (b !== undefined) {
        if (wasPaused) this.hub.kick();
        return b;
      }
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        this.wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
  }

  /** Removes the watcher from the hub. */
  close(): void {
    this.hub.remove(this.watcher);
  }
}

const LEADER_CHANGED = Errors.leaderChanged().message;

/** Shared plumbing of locks and elections. */
abstract class Recipe {
  constructor(
    protected readonly member: MemberAccess,
    private readonly newLeaseId: () => bigint,
  ) {}

  /** A range; one cut off by a leader change is tried again, as etcd's client does for its own. */
  protected async read(op: RangeOp): Promise<RangeResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.member.range(op);
      } catch (err) {
        if (attempt >= 5 || !(err instanceof EtcdError) || err.message !== LEADER_CHANGED) throw err;
      }
    }
  }

  /** The lease a request names, or (for 0) a fresh SESSION_TTL_SECONDS lease granted now. */
  protected async session(lease: bigint): Promise<bigint> {
    if (lease !== 0n) return lease;
    let id = 0n;
    while (id === 0n) id = this.newLeaseId() & ((1n << 63n) - 1n);
    await this.member.write({ kind: 'lease-grant', id, ttl: SESSION_TTL_SECONDS });
    return id;
  }

  /** Resolves at the first deletion of `key` at or after `rev`. */
  protected async waitDelete(key: Uint8Array, rev: number, signal: AbortSignal): Promise<void> {
    const watch = new InternalWatch(this.member.hub, makeRange(key, undefined), rev);
    try {
      for (;;) {
        const b = await watch.next(signal);
        if (b.events.some((e) => e.type === 'delete')) return;
      }
    } finally {
      watch.close();
    }
  }

  /**
   * Waits until no contender under `prefix` was created at or before `maxCreateRev`: watches the
   * youngest such key until it is deleted, then looks again. Resolves with the revision of the
   * last read.
   */
  protected async waitPredecessors(prefix: Uint8Array, maxCreateRev: number, signal: AbortSignal): Promise<number> {
    for (;;) {
      if (signal.aborted) throw Errors.requestCanceled();
      const r = await this.read(lastCreatedUpTo(prefix, maxCreateRev));
      const pred = r.kvs[0];
      if (pred === undefined) return r.revision;
      await this.waitDelete(pred.key, r.revision, signal);
    }
  }

  /** Deletes `key`, ignoring failures (clean-up after a failed or abandoned wait). */
  protected async deleteQuietly(key: Uint8Array): Promise<void> {
    try {
      await this.member.write(deleteOp(key));
    } catch {
      // The key goes with its lease in any case.
    }
  }
}

/** Server-side mutexes (the v3lock service). */
export class Locks extends Recipe {
  /**
   * Acquires the lock `name` for `lease` (0: a fresh session lease). Resolves once this
   * contender's key is the oldest under `name/`. Re-entrant per lease: a lease that already holds
   * the lock gets it again at once. When `signal` aborts or the wait fails, the promise rejects and
   * the contender's key is deleted (a key an earlier call holds is kept if the abort comes before
   * any wait). Rejects with "mutex: session is expired" when the key vanished
   * while waiting (its lease ended), and with "etcdserver: requested lease not found" for an
   * unknown lease.
   */
  async lock(name: Uint8Array, lease: bigint, signal: AbortSignal): Promise<LockResult> {
    const id = await this.session(lease);
    const prefix = contenderPrefix(name);
    const key = contenderKey(name, id);
    const owner = firstCreated(prefix);
    const res = await this.member.txn(
      txnOp([createRevisionIs(key, 0)], [putOp(key, EMPTY, id), owner], [rangeOp(key, EMPTY), owner]),
    );
    let myRev = res.revision;
    if (!res.succeeded) {
      const mine = rangeAt(res, 0).kvs[0];
      if (mine === undefined) throw new InvariantError('lock key missing in the txn that found it');
      myRev = mine.createRevision;
    }
    if (signal.aborted) {
      // The caller is gone: take back a key this call created (not one an earlier call holds).
      if (res.succeeded) await this.deleteQuietly(key);
      throw Errors.requestCanceled();
    }
    const holder = rangeAt(res, 1).kvs[0];
    if (holder === undefined || holder.createRevision === myRev) return { key, revision: res.revision };

    let check: RangeResult;
    try {
      await this.waitPredecessors(prefix, myRev - 1, signal);
      check = await this.read(rangeOp(key, EMPTY));
    } catch (err) {
      await this.deleteQuietly(key);
      throw err;
    }
    // The key may have gone with its lease while waiting: then this contender holds nothing.
    const now = check.kvs[0];
    if (now === undefined || now.createRevision !== myRev) throw Errors.sessionExpired();
    return { key, revision: check.revision };
  }

  /** Releases a lock by deleting its key (a missing key is not an error). Resolves with the header revision. */
  async unlock(key: Uint8Array): Promise<number> {
    if (key.length === 0) throw Errors.emptyKey();
    const res = await this.member.write(deleteOp(key));
    return res.revision;
  }
}

/** Server-side elections (the v3election service). */
export class Elections extends Recipe {
  /**
   * Campaigns in election `name` with `lease` (0: a fresh session lease) and `value`; resolves
   * when this contender leads. If the contender's key already exists with another value, the value
   * is proclaimed first. When `signal` aborts, the contender resigns (unless it already led
   * through an earlier call). Like etcd, it does not check that its key outlived the wait.
   */
  async campaign(name: Uint8Array, lease: bigint, value: Uint8Array, signal: AbortSignal): Promise<CampaignResult> {
    const id = await this.session(lease);
    const prefix = contenderPrefix(name);
    const key = contenderKey(name, id);
    const res = await this.member.txn(txnOp([createRevisionIs(key, 0)], [putOp(key, value, id)], [rangeOp(key, EMPTY)]));
    const leader: LeaderKey = { name, key, rev: res.revision, lease: id };
    if (signal.aborted && res.succeeded) {
      await this.resignQuietly(leader);
      throw Errors.requestCanceled();
    }
    if (!res.succeeded) {
      const mine = rangeAt(res, 0).kvs[0];
      if (mine === undefined) throw new InvariantError('campaign key missing in the txn that found it');
      leader.rev = mine.createRevision;
      if (!sameBytes(mine.value, value)) {
        try {
          await this.proclaim(leader, value);
        } catch (err) {
          await this.resignQuietly(leader);
          throw err;
        }
      }
    }
    try {
      await this.waitPredecessors(prefix, leader.rev - 1, signal);
    } catch (err) {
      if (signal.aborted) await this.resignQuietly(leader);
      throw err;
    }
    return { leader, revision: res.revision };
  }

  /**
   * Sets the leader's value, if `leader` still leads (its key has create revision `leader.rev`);
   * otherwise rejects with "election: not leader". Resolves with the header revision.
   */
  async proclaim(leader: LeaderKey, value: Uint8Array): Promise<number> {
    if (leader.key.length === 0) throw Errors.emptyKey();
    const lease = await this.session(leader.lease);
    const res = await this.member.txn(txnOp([createRevisionIs(leader.key, leader.rev)], [putOp(leader.key, value, lease)], []));
    if (!res.succeeded) throw Errors.electionNotLeader();
    return res.revision;
  }

  /** Gives up leadership: deletes the leader's key if it still has create revision `leader.rev`. Resolves with the header revision. */
  async resign(leader: LeaderKey): Promise<number> {
    if (leader.key.length === 0) throw Errors.emptyKey();
    const res = await this.member.txn(txnOp([createRevisionIs(leader.key, leader.rev)], [deleteOp(leader.key)], []));
    return res.revision;
  }

  private async resignQuietly(leader: LeaderKey): Promise<void> {
    try {
      await this.resign(leader);
    } catch {
      // The key goes with its lease in any case.
    }
  }

  /** The current leader's key-value; rejects with "election: no leader" when nobody campaigns. */
  async leader(name: Uint8Array): Promise<LeaderResult> {
    const r = await this.read(firstCreated(contenderPrefix(name)));
    const kv = r.kvs[0];
    if (kv === undefined) throw Errors.electionNoLeader();
    return { kv, revision: r.revision };
  }

  /**
   * Reports the leader of `name` and every change of it, in order, to `emit` (awaited before the
   * next report): the current leader (or, with none, the first contender to appear), each new
   * value it proclaims, and after its key is deleted, the leader then current. Resolves when
   * `signal` aborts, or when a read or watch fails (etcd then ends the stream without an error).
   */
  async observe(name: Uint8Array, signal: AbortSignal, emit: (revision: number, kv: KeyValue) => Promise<void>): Promise<void> {
    const prefix = contenderPrefix(name);
    try {
      while (!signal.aborted) {
        const r = await this.read(firstCreated(prefix));
        let kv = r.kvs[0];
        let rev = r.revision;
        if (kv === undefined) {
          const watch = new InternalWatch(this.member.hub, makeRange(prefix, prefixEnd(prefix)), r.revision);
          try {
            while (kv === undefined) {
              const b = await watch.next(signal);
              kv = b.events.find((e) => e.type === 'put')?.kv;
            }
          } finally {
            watch.close();
          }
          rev = kv.modRevision;
        }
        await emit(rev, kv);
        await this.followLeader(kv.key, rev + 1, signal, emit);
      }
    } catch {
      // Abort, compaction or a failed read: the observation ends.
    }
  }

  /** Emits every put of the leader's key from `fromRev` on; resolves when the key is deleted. */
  private async followLeader(
    key: Uint8Array,
    fromRev: number,
    signal: AbortSignal,
    emit: (revision: number, kv: KeyValue) => Promise<void>,
  ): Promise<void> {
    const watch = new InternalWatch(this.member.hub, makeRange(key, undefined), fromRev);
    try {
      for (;;) {
        const b = await watch.next(signal);
        for (const e of b.events) {
          if (e.type === 'delete') return;
          await emit(b.rev, e.kv);
        }
      }
    } finally {
      watch.close();
    }
  }
}
