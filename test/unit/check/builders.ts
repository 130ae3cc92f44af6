/** Terse builders of hand-made KV histories for the checker tests. */
import type { KvInput, KvOp, KvOutput, KvRecord, OpStatus, TxnCompare } from '../../../src/check/history';
import { LEASE_NOT_FOUND_MESSAGE } from '../../../src/check/history';

/** Builds operations with increasing ids. */
export class H {
  readonly ops: KvOp[] = [];

  private add(input: KvInput, call: number, ret: number, status: OpStatus, output?: KvOutput, error?: { code: number; message: string }): KvOp {
    const op: KvOp = { id: this.ops.length, process: this.ops.length, call, ret, status, input, ...(output !== undefined ? { output } : {}), ...(error !== undefined ? { error } : {}) };
    this.ops.push(op);
    return op;
  }

  put(key: string, value: string, call: number, ret: number, rev: number, opts: { lease?: string; prev?: KvRecord | null } = {}): KvOp {
    const prevKv = opts.prev !== undefined;
    return this.add({ type: 'put', key, value, lease: opts.lease ?? '0', prevKv }, call, ret, 'ok', { type: 'put', revision: rev, ...(prevKv ? { prevKv: opts.prev } : {}) });
  }

  /** A put whose outcome is unknown. */
  putUnknown(key: string, value: string, call: number, ret: number, lease = '0'): KvOp {
    return this.add({ type: 'put', key, value, lease, prevKv: false }, call, ret, 'unknown', undefined, { code: 4, message: 'context deadline exceeded' });
  }

  putLeaseNotFound(key: string, value: string, lease: string, call: number, ret: number): KvOp {
    return this.add({ type: 'put', key, value, lease, prevKv: false }, call, ret, 'fail', undefined, { code: 5, message: LEASE_NOT_FOUND_MESSAGE });
  }

  get(key: string, call: number, ret: number, rev: number, kv: KvRecord | null, serializable = false): KvOp {
    return this.add({ type: 'range', key, rangeEnd: '', serializable }, call, ret, 'ok', { type: 'range', revision: rev, kvs: kv === null ? [] : [kv] });
  }

  range(key: string, rangeEnd: string, call: number, ret: number, rev: number, kvs: KvRecord[], serializable = false): KvOp {
    return this.add({ type: 'range', key, rangeEnd, serializable }, call, ret, 'ok', { type: 'range', revision: rev, kvs });
  }

  del(key: string, call: number, ret: number, rev: number, deleted: number, prev?: KvRecord[]): KvOp {
    return this.add({ type: 'delete', key, prevKv: prev !== undefined }, call, ret, 'ok', { type: 'delete', revision: rev, deleted, ...(prev !== undefined ? { prevKvs: prev } : {}) });
  }

  delUnknown(key: string, call: number, ret: number): KvOp {
    return this.add({ type: 'delete', key, prevKv: false }, call, ret, 'unknown', undefined, { code: 14, message: 'etcdserver: request timed out' });
  }

  cas(key: string, compare: TxnCompare, value: string, call: number, ret: number, rev: number, succeeded: boolean, current?: KvRecord | null, lease = '0'): KvOp {
    const kvs = succeeded ? undefined : current === undefined ? undefined : current === null ? [] : [current];
    return this.add({ type: 'txn', key, compare, value, lease }, call, ret, 'ok', { type: 'txn', revision: rev, succeeded, ...(kvs !== undefined ? { kvs } : {}) });
  }

  casUnknown(key: string, compare: TxnCompare, value: string, call: number, ret: number): KvOp {
    return this.add({ type: 'txn', key, compare, value, lease: '0' }, call, ret, 'unknown', undefined, { code: 14, message: 'etcdserver: request timed out' });
  }

  grant(lease: string, call: number, ret: number, rev: number): KvOp {
    return this.add({ type: 'leaseGrant', lease, ttl: 3600 }, call, ret, 'ok', { type: 'leaseGrant', revision: rev, ttl: 3600 });
  }

  revoke(lease: string, call: number, ret: number, rev: number): KvOp {
    return this.add({ type: 'leaseRevoke', lease }, call, ret, 'ok', { type: 'leaseRevoke', revision: rev });
  }
}

/** A key-value pair; create defaults to mod and version to 1. */
export function kv(key: string, value: string, mod: number, opts: { create?: number; version?: number; lease?: string } = {}): KvRecord {
  return { key, value, modRevision: mod, createRevision: opts.create ?? mod, version: opts.version ?? 1, lease: opts.lease ?? '0' };
}
