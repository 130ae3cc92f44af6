/**
 * Random histories that are linearizable by construction: operations are applied to the
 * reference store in sequence (that order is the linearization), and each gets a random interval
 * around its linearization point, so neighbours overlap at random. Some operations are
 * indeterminate: the client gave up, and the operation either took effect at its point or never.
 */
import * as fc from 'fast-check';
import type { KvInput, KvOp, RevisionEvents } from '../../../src/check/history';
import { ReferenceStore } from './reference';

/** One generated step: what to do and how it is timed. */
export interface Intent {
  readonly kind: number;
  readonly key: number;
  readonly x: number;
  readonly before: number;
  readonly after: number;
  readonly fate: number;
}

/** fast-check arbitrary of intents. */
export function intents(maxLength = 60, minLength = 1): fc.Arbitrary<Intent[]> {
  return fc.array(
    fc.record({
      kind: fc.integer({ min: 0, max: 10 }),
      key: fc.integer({ min: 0, max: 2 }),
      x: fc.integer({ min: 0, max: 5 }),
      before: fc.integer({ min: 0, max: 45 }),
      after: fc.integer({ min: 0, max: 45 }),
      fate: fc.integer({ min: 0, max: 11 }),
    }),
    { minLength, maxLength, size: 'max' },
  );
}

/** A generated history and the event history of its reference execution. */
export interface Generated {
  readonly ops: KvOp[];
  readonly events: RevisionEvents[];
  readonly store: ReferenceStore;
}

const KEYS = ['k0', 'k1', 'k2'];

/** Runs the intents against a fresh reference store. Linearization point of op i: 10·i. */
export function buildHistory(list: readonly Intent[]): Generated {
  const store = new ReferenceStore();
  const ops: KvOp[] = [];
  list.forEach((it, i) => {
    const key = KEYS[it.key]!;
    const lease = `10${it.key}`;
    const cur = store.kv.get(key);
    let input: KvInput;
    let staleAt: number | undefined;
    switch (it.kind) {
      case 0:
      case 1:
      case 2:
        input = { type: 'put', key, value: `v${i}`, lease: it.x === 5 ? lease : '0', prevKv: it.x % 2 === 0 };
        break;
      case 3:
        input = { type: 'range', key, rangeEnd: '', serializable: false };
        break;
      case 4:
        input = { type: 'range', key: 'k', rangeEnd: 'l', serializable: false };
        break;
      case 5:
        input = { type: 'delete', key, prevKv: it.x % 2 === 1 };
        break;
      case 6:
        input = { type: 'txn', key, compare: { target: 'mod', modRevision: it.x < 3 ? cur?.modRevision ?? 0 : it.x }, value: `v${i}`, lease: '0' };
        break;
      case 7:
        input = { type: 'txn', key, compare: { target: 'value', value: it.x < 3 ? cur?.value ?? 'none' : 'nope' }, value: `v${i}`, lease: it.x === 2 ? lease : '0' };
        break;
      case 8:
        input = it.x % 2 === 0 ? { type: 'leaseGrant', lease, ttl: 60 } : { type: 'leaseRevoke', lease };
        break;
      case 9:
        input = { type: 'range', key: it.x < 3 ? key : 'k', rangeEnd: it.x < 3 ? '' : 'l', serializable: true };
        staleAt = Math.max(1, store.rev - it.x);
        break;
      default:
        input = { type: 'put', key, value: `v${i}`, lease: '0', prevKv: false };
        break;
    }
    const point = 10 * i;
    const call = point - it.before;
    const ret = point + it.after;
    const isRead = input.type === 'range';
    if (it.fate <= 1 && !isRead) {
      // Indeterminate: took effect (fate 0) or never (fate 1).
      if (it.fate === 0) store.apply(input);
      ops.push({ id: i, process: i, call, ret, status: 'unknown', input, error: { code: 4, message: 'context deadline exceeded' } });
      return;
    }
    if (staleAt !== undefined && input.type === 'range') {
      ops.push({ id: i, process: i, call, ret, status: 'ok', input, output: store.staleRange(input.key, input.rangeEnd, staleAt) });
      return;
    }
    const r = store.apply(input);
    if (r.status === 'ok') ops.push({ id: i, process: i, call, ret, status: 'ok', input, output: r.output });
    else ops.push({ id: i, process: i, call, ret, status: 'fail', input, error: r.error });
  });
  return { ops, events: store.history, store };
}
