/**
 * The lessor: leases, their TTLs and attached keys.
 *
 * - State changes (grant, revoke, attach, detach) happen only through applied log entries, so every
 *   member holds the same leases and keys. Leases are persisted in the `lease` sublevel (8-byte id →
 *   8-byte TTL); attached keys are not stored separately: they are rebuilt from the keys' lease
 *   fields at start.
 * - Only the leader tracks deadlines (a heap). An expired lease is handed to the server, which
 *   proposes its revocation, so every member deletes the same keys at the same revision.
 * - A member that becomes leader extends every deadline by `extendMs` before expiring anything,
 *   so an election alone never expires a live lease. Followers keep no deadlines.
 * - Keep-alives are leader-local and not logged.
 *
 * Time comes in through the injected `now()`; the lessor has no timers.
 */
import { Errors } from '../errors';
import type { Backend, BatchOp } from '../storage/backend';
import { LeaseHeap } from './lease-heap';

/** Longest TTL a lease may have, in seconds (etcd's MaxLeaseTTL). */
export const MAX_LEASE_TTL = 9_000_000_000;

/** One lease. */
export interface Lease {
  id: bigint;
  /** Granted TTL in seconds (after raising to the minimum). */
  ttl: number;
  /** Attached keys (binary-string form). */
  keys: Set<string>;
  /** Leader only: deadline in ms; Infinity on followers. */
  deadline: number;
}

function idKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, id));
  return b;
}

/** The lease table of one member. */
export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  private readonly heap = new LeaseHeap();
  private primary = false;
  /** Leases whose revocation was proposed and not applied yet (leader only). */
  private readonly revoking = new Set<bigint>();

  constructor(
    private backend: Backend,
    private readonly minTtl: number,
    private readonly now: () => number,
  ) {}

  /** Loads leases from `lease` and attaches keys given by `forEachLeasedKey`. */
  async load(backend: Backend, forEachLeasedKey: (fn: (key: string, lease: bigint) => void) => void): Promise<void> {
    this.backend = backend;
    this.leases.clear();
    this.heap.clear();
    this.revoking.clear();
    for await (const [k, v] of backend.lease.iterator()) {
      const id = BigInt.asIntN(64, Buffer.from(k.buffer, k.byteOffset, 8).readBigUInt64BE(0));
      const ttl = Number(Buffer.from(v.buffer, v.byteOffset, 8).readBigUInt64BE(0));
      this.leases.set(id, { id, ttl, keys: new Set(), deadline: Infinity });
    }
    forEachLeasedKey((key, lease) => this.leases.get(lease)?.keys.add(key));
    if (this.primary) this.promote(0);
  }

  /** True when the lease exists. */
  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  /** A lease by id. */
  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  /** Every lease id. */
  ids(): bigint[] {
    return [...this.leases.keys()];
  }

  /** Applies a grant; returns the writes and the granted TTL. Throws "lease already exists". */
  grant(id: bigint, ttl: number): { ops: BatchOp[]; ttl: number } {
    if (this.leases.has(id)) throw Errors.leaseExists();
    const granted = Math.max(ttl, this.minTtl);
    const lease: Lease = { id, ttl: granted, keys: new Set(), deadline: Infinity };
    this.leases.set(id, lease);
    if (this.primary) this.refresh(lease, 0);
    const v = Buffer.alloc(8);
    v.writeBigUInt64BE(BigInt(granted));
    return { ops: [{ type: 'put', sublevel: this.backend.lease, key: idKey(id), value: v }], ttl: granted };
  }

  /** Applies a revoke: removes the lease; returns its keys in sorted order and the writes. */
  revoke(id: bigint): { keys: string[]; ops: BatchOp[] } {
    const lease = this.leases.get(id);
    if (lease === undefined) throw Errors.leaseNotFound();
    this.leases.delete(id);
    this.revoking.delete(id);
    const keys = [...lease.keys].sort();
    return { keys, ops: [{ type: 'del', sublevel: this.backend.lease, key: idKey(id) }] };
  }

  /** A key's lease changed from `previous` to `lease` (0n: none). */
  onAttach(key: string, previous: bigint, lease: bigint): void {
    if (previous !== 0n) this.leases.get(previous)?.keys.delete(key);
    if (lease !== 0n) this.leases.get(lease)?.keys.add(key);
  }

  private refresh(lease: Lease, extendMs: number): void {
    lease.deadline = this.now() + extendMs + lease.ttl * 1000;
    this.heap.push(lease.id, lease.deadline);
    // Every renewal leaves a stale entry behind; keep the heap within a few times the leases.
    if (this.heap.size > 2 * this.leases.size + 1024) this.rebuildHeap();
  }

  /** Rebuilds the deadline heap from the leases' present deadlines, dropping stale entries. */
  private rebuildHeap(): void {
    this.heap.clear();
    for (const l of this.leases.values()) {
      if (l.deadline !== Infinity && !this.revoking.has(l.id)) this.heap.push(l.id, l.deadline);
    }
  }

  /** Entries in the deadline heap, stale ones included (for tests and metrics). */
  get heapSize(): number {
    return this.heap.size;
  }

  /** This member became leader: track deadlines, each extended by `extendMs`. */
  promote(extendMs: number): void {
    this.primary = true;
    this.heap.clear();
    this.revoking.clear();
    for (const l of this.leases.values()) this.refresh(l, extendMs);
  }

  /** This member is no longer leader: keep no deadlines. */
  demote(): void {
    this.primary = false;
    this.heap.clear();
    this.revoking.clear();
    for (const l of this.leases.values()) l.deadline = Infinity;
  }

  /** True while this member tracks deadlines. */
  get isPrimary(): boolean {
    return this.primary;
  }

  /**
   * Leader: renews a lease; returns its TTL, or 0 when the lease is unknown or already expired
   * (etcd answers a keep-alive for such a lease with TTL 0).
   */
  renew(id: bigint): number {
    const l = this.leases.get(id);
    if (l === undefined || this.revoking.has(id)) return 0;
    if (l.deadline <= this.now()) return 0;
    this.refresh(l, 0);
    return l.ttl;
  }

  /** Leader: remaining seconds of a lease (truncated), or -1 when unknown. */
  remaining(id: bigint): number {
    const l = this.leases.get(id);
    if (l === undefined) return -1;
    if (!this.primary || l.deadline === Infinity) return l.ttl;
    return Math.max(0, Math.trunc((l.deadline - this.now()) / 1000));
  }

  /** Leader: up to `limit` expired leases not yet being revoked; they are marked as being revoked. */
  takeExpired(limit: number): bigint[] {
    if (!this.primary) return [];
    const ids = this.heap.popExpired(this.now(), limit, (id) => (this.revoking.has(id) ? undefined : this.leases.get(id)?.deadline));
    for (const id of ids) this.revoking.add(id);
    return ids;
  }

  /** A proposed revocation failed: let the lease be picked up again. */
  revokeFailed(id: bigint): void {
    this.revoking.delete(id);
    const l = this.leases.get(id);
    if (l !== undefined && this.primary) this.heap.push(id, l.deadline);
  }
}
