/**
 * Short chaos runs against our server: 3 members behind the fault proxy, kill -9, partitions and
 * pauses on fixed seeds, a concurrent KV and list+watch workload, then every checker. Also shows
 * the checkers are armed on the recorded data: a stale read planted into the real history is found.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkKvHistory } from '../../src/check/check-kv';
import { Replayer } from '../../src/check/events';
import type { KvOp, KvOutput, RevisionEvents } from '../../src/check/history';
import { runChaos } from '../../scripts/chaos/run';
import type { ChaosResult } from '../../scripts/chaos/run';

const results: ChaosResult[] = [];

afterAll(() => {
  for (const r of results) fs.rmSync(r.dir, { recursive: true, force: true });
});

test('3 members under kill -9, partitions and pauses: no anomalies, faults injected, work done', async () => {
  // Seeds whose schedules hold all three kinds and every partition shape between them.
  for (const seed of [5, 10]) {
    const r = await runChaos({ target: 'ours', members: 3, durationMs: 45000, seed, faults: ['kill', 'partition', 'pause'], clients: 6, watchers: 3 });
    results.push(r);
    if (r.anomalies.length > 0) throw new Error(r.summary);
    // Faults were injected, and the proxy really cut links.
    expect(r.proxy.identified).toBeGreaterThan(0);
    const injected = r.faults.filter((f) => f.injected);
    expect(injected.length).toBeGreaterThanOrEqual(5);
    expect(new Set(injected.map((f) => f.kind)).size).toBe(3);
    // Operations succeeded, and every key's history was decided.
    expect(r.kv.ops.ok).toBeGreaterThan(1000);
    expect(r.kv.keys.length).toBeGreaterThan(0);
    expect(r.kv.inconclusive).toEqual([]);
    expect(r.kv.keys.every((k) => k.result === 'ok')).toBe(true);
    // The members agree, and the watches were checked against a complete history.
    expect(r.final.lagging).toEqual([]);
    expect(r.final.comparison?.equal).toBe(true);
    expect(r.final.events?.length).toBe(r.final.revision - 1);
    expect(r.watch.eventsDelivered).toBeGreaterThan(1000);
  }
  const shapes = new Set(results.flatMap((r) => r.faults.filter((f) => f.injected && f.kind === 'partition').map((f) => f.shape)));
  expect(shapes.size).toBeGreaterThanOrEqual(3);
  expect(results.reduce((a, r) => a + r.proxy.bytesDropped, 0)).toBeGreaterThan(0);
}, 150000);

test('a stale read planted into a recorded history is found, with a small window', () => {
  const r = results[0];
  expect(r).toBeDefined();
  const ops = JSON.parse(fs.readFileSync(path.join(r!.dir, 'history.json'), 'utf8')) as KvOp[];
  const events = JSON.parse(fs.readFileSync(path.join(r!.dir, 'events.json'), 'utf8')) as RevisionEvents[];
  // A single-key linearizable read of a key's second or later version, from the middle of the run.
  const reads = ops.filter((o) => {
    const out = o.output;
    return o.status === 'ok' && o.input.type === 'range' && !o.input.serializable && o.input.rangeEnd === '' && out?.type === 'range' && out.kvs.length === 1 && out.kvs[0]!.version >= 2;
  });
  expect(reads.length).toBeGreaterThan(10);
  const victim = reads[Math.floor(reads.length / 2)]!;
  const out = victim.output as Extract<KvOutput, { type: 'range' }>;
  const cur = out.kvs[0]!;
  const older = new Replayer(events).at(cur.modRevision - 1).get(cur.key)!;
  expect(older).toBeDefined();
  const planted = ops.map((o) => (o.id === victim.id ? { ...victim, output: { ...out, kvs: [older] } } : o));
  const k = checkKvHistory(planted, { events });
  const bad = k.anomalies.find((a) => a.kind === 'nonlinearizable');
  expect(bad?.key).toBe(cur.key);
  expect(bad!.window!.map((w) => w.id)).toContain(victim.id);
  expect(bad!.window!.length).toBeLessThanOrEqual(4);
  expect(k.anomalies.some((a) => a.kind === 'read-mismatch')).toBe(true);
});
