/**
 * A sequential reference of etcd's KV and lease semantics (global revision, per-key create/mod
 * revision and version, leases deleting their keys in one revision), used to generate histories
 * that are linearizable by construction, with the event history a watch from revision 1 would
 * deliver.
 */
import type { KvInput, KvOutput, KvRecord, RevisionEvents, WatchEvent } from '../../../src/check/history';
import { LEASE_NOT_FOUND_MESSAGE, inRange } from '../../../src/check/history';

/** The outcome of applying one input. */
export type Applied = { status: 'ok'; output: KvOutput } | { status: 'fail'; error: { code: number; message: string } };

/** The reference store. */
export class ReferenceStore {
  rev = 1;
  readonly kv = new Map<string, KvRecord>();
  readonly leases = new Map<string, Set<string>>();
  readonly history: RevisionEvents[] = [];

  private sorted(key: string, rangeEnd: string, state: ReadonlyMap<string, KvRecord> = this.kv): KvRecord[] {
    return [...state.values()].filter((kv) => inRange(kv.key, key, rangeEnd)).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /** The state at an earlier revision (replayed from the history). */
  stateAt(rev: number): Map<string, KvRecord> {
    const m = new Map<string, KvRecord>();
    for (const r of this.history) {
      if (r.revision > rev) break;
      for (const e of r.events) {
        if (e.type === 'put') m.set(e.kv.key, e.kv);
        else m.delete(e.kv.key);
      }
    }
    return m;
  }

  /** A serializable read served at an older revision `at` (≤ the current one). */
  staleRange(key: string, rangeEnd: string, at: number): KvOutput {
    return { type: 'range', revision: at, kvs: this.sorted(key, rangeEnd, this.stateAt(at)) };
  }

  private putRecord(key: string, value: string, lease: string, events: WatchEvent[]): { prev: KvRecord | undefined } {
    const prev = this.kv.get(key);
    if (prev !== undefined && prev.lease !== '0') this.leases.get(prev.lease)?.delete(key);
    const kv: KvRecord = {
      key,
      value,
      createRevision: prev === undefined ? this.rev : prev.createRevision,
      modRevision: this.rev,
      version: prev === undefined ? 1 : prev.version + 1,
      lease,
    };
    this.kv.set(key, kv);
    if (lease !== '0') this.leases.get(lease)!.add(key);
    events.push(prev === undefined ? { type: 'put', kv } : { type: 'put', kv, prevKv: prev });
    return { prev };
  }

  private deleteRecord(key: string, events: WatchEvent[]): KvRecord | undefined {
    const prev = this.kv.get(key);
    if (prev === undefined) return undefined;
    if (prev.lease !== '0') this.leases.get(prev.lease)?.delete(key);
    this.kv.delete(key);
    events.push({ type: 'delete', kv: { key, value: '', createRevision: 0, modRevision: this.rev, version: 0, lease: '0' }, prevKv: prev });
    return prev;
  }

  private commit(events: WatchEvent[]): void {
    if (events.length > 0) this.history.push({ revision: this.rev, events });
  }

  /** Applies one input and returns what etcd would answer. */
  apply(input: KvInput): Applied {
    switch (input.type) {
      case 'put': {
        if (input.lease !== '0' && !this.leases.has(input.lease)) return { status: 'fail', error: { code: 5, message: LEASE_NOT_FOUND_MESSAGE } };
        this.rev++;
        const events: WatchEvent[] = [];
        const { prev } = this.putRecord(input.key, input.value, input.lease, events);
        this.commit(events);
        return { status: 'ok', output: { type: 'put', revision: this.rev, ...(input.prevKv ? { prevKv: prev ?? null } : {}) } };
      }
      case 'range':
        return { status: 'ok', output: { type: 'range', revision: this.rev, kvs: this.sorted(input.key, input.rangeEnd) } };
      case 'delete': {
        if (!this.kv.has(input.key)) return { status: 'ok', output: { type: 'delete', revision: this.rev, deleted: 0, ...(input.prevKv ? { prevKvs: [] } : {}) } };
        this.rev++;
        const events: WatchEvent[] = [];
        const prev = this.deleteRecord(input.key, events)!;
        this.commit(events);
        return { status: 'ok', output: { type: 'delete', revision: this.rev, deleted: 1, ...(input.prevKv ? { prevKvs: [prev] } : {}) } };
      }
      case 'txn': {
        const cur = this.kv.get(input.key);
        const c = input.compare;
        const holds = c.target === 'value' ? cur !== undefined && cur.value === c.value : (cur?.modRevision ?? 0) === c.modRevision;
        if (!holds) return { status: 'ok', output: { type: 'txn', revision: this.rev, succeeded: false, kvs: cur === undefined ? [] : [cur] } };
        if (input.lease !== '0' && !this.leases.has(input.lease)) return { status: 'fail', error: { code: 5, message: LEASE_NOT_FOUND_MESSAGE } };
        this.rev++;
        const events: WatchEvent[] = [];
        this.putRecord(input.key, input.value, input.lease, events);
        this.commit(events);
        return { status: 'ok', output: { type: 'txn', revision: this.rev, succeeded: true } };
      }
      case 'leaseGrant': {
        if (this.leases.has(input.lease)) return { status: 'fail', error: { code: 9, message: 'etcdserver: lease already exists' } };
        this.leases.set(input.lease, new Set());
        return { status: 'ok', output: { type: 'leaseGrant', revision: this.rev, ttl: input.ttl } };
      }
      case 'leaseRevoke': {
        const keys = this.leases.get(input.lease);
        if (keys === undefined) return { status: 'fail', error: { code: 5, message: LEASE_NOT_FOUND_MESSAGE } };
        const list = [...keys].sort();
        if (list.length > 0) {
          this.rev++;
          const events: WatchEvent[] = [];
          for (const k of list) this.deleteRecord(k, events);
          this.commit(events);
        }
        this.leases.delete(input.lease);
        return { status: 'ok', output: { type: 'leaseRevoke', revision: this.rev } };
      }
    }
  }
}
