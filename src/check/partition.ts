/**
 * Splits a KV history into one history per key for the per-key model (`kv-model.ts`).
 *
 * - put, delete and txn touch their key;
 * - a linearizable range becomes one read per key of the key universe inside the range (absent
 *   keys read as absent), all with the range's header revision;
 * - a lease grant or revoke touches every key that any put or txn named that lease for;
 * - serializable ranges, failed operations (except a put or txn refused because its lease did not
 *   exist) and reads without an answer are left out: they have no effect.
 *
 * An indeterminate operation becomes optional with no return (it may take effect at any point
 * after its call, or never), unless a `Resolution` from the final event history says more.
 */
import type { KvOp, KvRecord } from './history';
import { inRange, isLeaseNotFound } from './history';
import type { KeyOp } from './kv-model';
import type { SearchOp } from './search';

/** What the final event history tells about an indeterminate operation. */
export type Resolution =
  /** It never took effect (or took no effect): leave it out. */
  | { readonly kind: 'never' }
  /** It took effect at this revision. */
  | { readonly kind: 'at'; readonly revision: number }
  /** It took effect (at a revision not known). */
  | { readonly kind: 'happened' }
  /** If it took effect, it did so at one of these revisions. */
  | { readonly kind: 'candidates'; readonly revisions: readonly number[] };

/** The operations of one key. */
export interface KeyHistory {
  readonly key: string;
  readonly ops: SearchOp<KeyOp>[];
}

/** Every key the history mentions: written, read by key, or returned by a range. */
export function keyUniverse(ops: readonly KvOp[]): string[] {
  const keys = new Set<string>();
  for (const op of ops) {
    const i = op.input;
    if (i.type === 'put' || i.type === 'delete' || i.type === 'txn') keys.add(i.key);
    if (i.type === 'range' && i.rangeEnd === '') keys.add(i.key);
    const o = op.output;
    if (o !== undefined && (o.type === 'range' || o.type === 'txn')) for (const kv of o.kvs ?? []) keys.add(kv.key);
  }
  return [...keys].sort();
}

/** For each lease, the keys any put or txn attached it to (whatever the outcome). */
export function leaseKeys(ops: readonly KvOp[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const op of ops) {
    const i = op.input;
    if ((i.type === 'put' || i.type === 'txn') && i.lease !== '0') {
      let s = m.get(i.lease);
      if (s === undefined) m.set(i.lease, (s = new Set()));
      s.add(i.key);
    }
  }
  return m;
}

function firstOrNull(kvs: readonly KvRecord[] | undefined, key: string): KvRecord | null | undefined {
  if (kvs === undefined) return undefined;
  return kvs.find((kv) => kv.key === key) ?? null;
}

/**
 * Builds the per-key histories. `resolutions` maps operation ids of indeterminate operations to
 * what the final history says about them.
 */
export function partitionByKey(ops: readonly KvOp[], resolutions: ReadonlyMap<number, Resolution> = new Map()): Map<string, KeyHistory> {
  const universe = keyUniverse(ops);
  const byLease = leaseKeys(ops);
  const out = new Map<string, KeyHistory>();
  const add = (key: string, sop: SearchOp<KeyOp>): void => {
    let h = out.get(key);
    if (h === undefined) out.set(key, (h = { key, ops: [] }));
    h.ops.push(sop);
  };

  for (const op of ops) {
    const i = op.input;
    const res = resolutions.get(op.id);
    if (op.status === 'unknown' && res?.kind === 'never') continue;
    const lnf = isLeaseNotFound(op);
    if (op.status === 'fail' && !lnf) continue;

    // Timing: an indeterminate operation may take effect any time after its call.
    const unknown = op.status === 'unknown';
    const ret = unknown ? Infinity : op.ret;
    const optional = unknown && res?.kind !== 'at' && res?.kind !== 'happened';
    const revision = res?.kind === 'at' ? res.revision : undefined;
    const revisions = res?.kind === 'candidates' ? res.revisions : undefined;
    const base = { call: op.call, ret, optional };

    switch (i.type) {
      case 'put': {
        if (lnf) {
          add(i.key, { ...base, op: { source: op.id, kind: 'put', value: i.value, lease: i.lease, known: true, leaseNotFound: true } });
        } else if (unknown) {
          add(i.key, { ...base, op: { source: op.id, kind: 'put', value: i.value, lease: i.lease, known: false, ...(revision !== undefined ? { revision } : {}) } });
        } else if (op.output?.type === 'put') {
          const o = op.output;
          const prev = o.prevKv === undefined ? {} : { prevKv: o.prevKv };
          add(i.key, { ...base, op: { source: op.id, kind: 'put', value: i.value, lease: i.lease, known: true, revision: o.revision, ...prev } });
        }
        break;
      }
      case 'delete': {
        if (unknown) {
          const extra = revision !== undefined ? { revision } : revisions !== undefined ? { revisions } : {};
          add(i.key, { ...base, op: { source: op.id, kind: 'delete', known: false, ...extra } });
        } else if (op.output?.type === 'delete') {
          const o = op.output;
          const prev = o.prevKvs === undefined ? {} : { prevKv: firstOrNull(o.prevKvs, i.key) ?? null };
          add(i.key, { ...base, op: { source: op.id, kind: 'delete', known: true, revision: o.revision, deleted: o.deleted > 0, ...prev } });
        }
        break;
      }
      case 'txn': {
        const common = { source: op.id, kind: 'cas' as const, value: i.value, lease: i.lease, compare: i.compare };
        if (lnf) {
          add(i.key, { ...base, op: { ...common, known: true, leaseNotFound: true } });
        } else if (unknown) {
          add(i.key, { ...base, op: { ...common, known: false, ...(revision !== undefined ? { revision } : {}) } });
        } else if (op.output?.type === 'txn') {
          const o = op.output;
          const kv = o.succeeded ? {} : o.kvs === undefined ? {} : { kv: firstOrNull(o.kvs, i.key) ?? null };
          add(i.key, { ...base, op: { ...common, known: true, revision: o.revision, succeeded: o.succeeded, ...kv } });
        }
        break;
      }
      case 'range': {
        if (i.serializable || op.status !== 'ok' || op.output?.type !== 'range') break;
        const o = op.output;
        for (const k of universe) {
          if (!inRange(k, i.key, i.rangeEnd)) continue;
          const kv = o.kvs.find((x) => x.key === k) ?? null;
          add(k, { ...base, op: { source: op.id, kind: 'read', known: true, revision: o.revision, kv } });
        }
        break;
      }
      case 'leaseGrant': {
        for (const k of byLease.get(i.lease) ?? []) {
          if (unknown) add(k, { ...base, op: { source: op.id, kind: 'grant', lease: i.lease, known: false } });
          else if (op.output?.type === 'leaseGrant') add(k, { ...base, op: { source: op.id, kind: 'grant', lease: i.lease, known: true, revision: op.output.revision } });
        }
        break;
      }
      case 'leaseRevoke': {
        const keys = byLease.get(i.lease);
        if (keys === undefined) break;
        for (const k of keys) {
          if (unknown) {
            add(k, { ...base, op: { source: op.id, kind: 'revoke', lease: i.lease, known: false, ...(revision !== undefined ? { revision } : {}) } });
          } else if (op.output?.type === 'leaseRevoke') {
            add(k, { ...base, op: { source: op.id, kind: 'revoke', lease: i.lease, known: true, revision: op.output.revision } });
          }
        }
        break;
      }
    }
  }
  return out;
}
