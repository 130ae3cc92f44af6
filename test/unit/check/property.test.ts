import * as fc from 'fast-check';
import { checkKvHistory } from '../../../src/check/check-kv';
import type { KvOp, KvOutput } from '../../../src/check/history';
import { describeOp } from '../../../src/check/history';
import { resolveIndeterminate } from '../../../src/check/events';
import { isPureKeyOp, keyModel, unknownKeyState } from '../../../src/check/kv-model';
import { partitionByKey } from '../../../src/check/partition';
import { checkLinearizable } from '../../../src/check/search';
import { buildHistory, intents } from './generate';

function explain(ops: readonly KvOp[]): string {
  return ops.map((o) => describeOp(o)).join('\n');
}

describe('histories from a sequential reference execution with random concurrency', () => {
  test('are always linearizable (per-key search, revision checks)', () => {
    fc.assert(
      fc.property(intents(), (list) => {
        const g = buildHistory(list);
        const r = checkKvHistory(g.ops);
        if (r.anomalies.length > 0) throw new Error(`${JSON.stringify(r.anomalies, null, 1)}\n${explain(g.ops)}`);
        expect(r.inconclusive).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  test('pass every check against their own event history, serializable reads included', () => {
    fc.assert(
      fc.property(intents(200), (list) => {
        const g = buildHistory(list);
        const r = checkKvHistory(g.ops, { events: g.events });
        if (r.anomalies.length > 0) throw new Error(`${JSON.stringify(r.anomalies, null, 1)}\n${explain(g.ops)}`);
        // Every indeterminate write is resolved by the event history (took effect or never).
        expect(r.resolved.candidates + r.resolved.at + r.resolved.never + r.resolved.open).toBe(r.ops.unknown);
      }),
      { numRuns: 300 },
    );
  });

  test('a read changed to a value nobody wrote is always caught', () => {
    fc.assert(
      fc.property(intents(), fc.nat(), (list, pick) => {
        const g = buildHistory(list);
        const reads = g.ops.filter((o) => o.status === 'ok' && o.output?.type === 'range' && o.output.kvs.length > 0 && o.input.type === 'range' && !o.input.serializable);
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length]!;
        const out = victim.output as Extract<KvOutput, { type: 'range' }>;
        const [first, ...rest] = out.kvs;
        const mutated: KvOp = { ...victim, output: { ...out, kvs: [{ ...first!, value: 'never-written' }, ...rest] } };
        const ops = g.ops.map((o) => (o === victim ? mutated : o));
        const r = checkKvHistory(ops, { minimize: false });
        expect(r.anomalies.some((a) => a.kind === 'nonlinearizable' && a.key === first!.key)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  test('an acknowledged write dropped from the store is caught', () => {
    fc.assert(
      fc.property(intents(80), (list) => {
        const g = buildHistory(list);
        // The last acknowledged put; a final read after everything that does not see it.
        const last = [...g.ops].reverse().find((o) => o.status === 'ok' && o.input.type === 'put');
        fc.pre(last !== undefined && last.input.type === 'put');
        const key = (last.input as { key: string }).key;
        // Nothing else could have removed it: every other write of the key and every revoke
        // completed before the put was invoked.
        const others = g.ops.filter((o) => o !== last && ((o.input.type !== 'range' && 'key' in o.input && o.input.key === key) || o.input.type === 'leaseRevoke'));
        fc.pre(others.every((o) => o.status !== 'unknown' && o.ret < last.call));
        const end = Math.max(...g.ops.map((o) => o.ret)) + 1;
        const final: KvOp = {
          id: g.ops.length,
          process: g.ops.length,
          call: end,
          ret: end + 1,
          status: 'ok',
          input: { type: 'range', key, rangeEnd: '', serializable: false },
          output: { type: 'range', revision: g.store.rev, kvs: [] },
        };
        const r = checkKvHistory([...g.ops, final]);
        expect(r.anomalies.some((a) => a.kind === 'nonlinearizable' && a.key === key)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  test('a write reported with another write\'s revision is caught', () => {
    fc.assert(
      fc.property(intents(), (list) => {
        const g = buildHistory(list);
        const puts = g.ops.filter((o) => o.status === 'ok' && o.output?.type === 'put');
        fc.pre(puts.length >= 2);
        const [a, b] = [puts[0]!, puts[puts.length - 1]!];
        const bo = b.output as Extract<KvOutput, { type: 'put' }>;
        const ao = a.output as Extract<KvOutput, { type: 'put' }>;
        const ops = g.ops.map((o) => (o === b ? { ...b, output: { ...bo, revision: ao.revision } } : o));
        const r = checkKvHistory(ops, { minimize: false });
        expect(r.anomalies.some((x) => x.kind === 'duplicate-revision')).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  test('every cut of them is linearizable from the unconstrained state (the minimizer\'s cut is sound)', () => {
    const top = keyModel(unknownKeyState());
    fc.assert(
      fc.property(intents(120), fc.double({ min: 0, max: 1, noNaN: true }), (list, where) => {
        const g = buildHistory(list);
        const keys = partitionByKey(g.ops, resolveIndeterminate(g.ops, g.events));
        for (const h of keys.values()) {
          const calls = h.ops.map((o) => o.call).sort((a, b) => a - b);
          const c = calls[Math.floor(where * (calls.length - 1))]!;
          const cut = h.ops.filter((o) => o.ret >= c && !(o.call < c && isPureKeyOp(o.op))).map((o) => (o.call < c ? { ...o, optional: true } : o));
          const r = checkLinearizable(top, cut);
          if (r.kind !== 'ok') throw new Error(`cut at ${c} of ${h.key}: ${r.kind}\n${explain(g.ops)}`);
        }
      }),
      { numRuns: 200 },
    );
  });
});
