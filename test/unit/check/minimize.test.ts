import * as fc from 'fast-check';
import { checkKvHistory } from '../../../src/check/check-kv';
import { Replayer } from '../../../src/check/events';
import type { KvOp, KvOutput, KvRecord } from '../../../src/check/history';
import { buildHistory, intents } from './generate';

/** The pair of `key` just before revision `mod` (its previous version), from the event history. */
function previousVersion(events: ReturnType<typeof buildHistory>['events'], key: string, mod: number): KvRecord | undefined {
  return new Replayer(events).at(mod - 1).get(key);
}

describe('smallest failing window in long concurrent histories', () => {
  test('a stale read planted mid-history is reported within a window of at most four operations', () => {
    const samples = fc.sample(intents(400, 350), { numRuns: 6, seed: 4242 });
    let planted = 0;
    for (const list of samples) {
      const g = buildHistory(list);
      // A single-key linearizable read in the middle that saw version ≥ 2 of its key.
      const candidates = g.ops.filter((o) => {
        const out = o.output;
        return o.status === 'ok' && o.input.type === 'range' && !o.input.serializable && o.input.rangeEnd === '' && out?.type === 'range' && out.kvs.length === 1 && out.kvs[0]!.version >= 2 && o.id > 100 && o.id < 300;
      });
      if (candidates.length === 0) continue;
      const victim = candidates[Math.floor(candidates.length / 2)]!;
      const out = victim.output as Extract<KvOutput, { type: 'range' }>;
      const current = out.kvs[0]!;
      const older = previousVersion(g.events, current.key, current.modRevision);
      if (older === undefined) continue;
      const ops: KvOp[] = g.ops.map((o) => (o === victim ? { ...victim, output: { ...out, kvs: [older] } } : o));
      const r = checkKvHistory(ops, { events: g.events });
      const bad = r.anomalies.find((a) => a.kind === 'nonlinearizable');
      expect(bad).toBeDefined();
      expect(bad!.key).toBe(current.key);
      const ids = bad!.window!.map((w) => w.id);
      expect(ids).toContain(victim.id);
      // The read and at least one operation that shows the newer state (the write it missed, or
      // another observation of it), nothing else.
      expect(ids.length).toBeGreaterThanOrEqual(2);
      expect(ids.length).toBeLessThanOrEqual(4);
      const windowOps = ids.map((id) => ops[id]!);
      expect(windowOps.every((o) => 'key' in o.input && (o.input.key === current.key || (o.input.type === 'range' && o.input.rangeEnd !== '')))).toBe(true);
      // The same mutation also disagrees with the event history at the read's revision.
      expect(r.anomalies.some((a) => a.kind === 'read-mismatch' && a.window![0]!.id === victim.id)).toBe(true);
      planted++;
    }
    expect(planted).toBeGreaterThanOrEqual(3);
  });

  test('a few thousand operations with indeterminate ones check quickly', () => {
    const [list] = fc.sample(intents(3000, 2500), { numRuns: 1, seed: 7 });
    const g = buildHistory(list!);
    const t0 = Date.now();
    const r = checkKvHistory(g.ops, { events: g.events });
    expect(r.anomalies).toEqual([]);
    expect(r.ops.unknown).toBeGreaterThan(100);
    expect(Date.now() - t0).toBeLessThan(20000);
  });
});
