import { checkKvHistory } from '../../../src/check/check-kv';
import { checkAgainstEvents, checkDurability, checkEventHistory, resolveIndeterminate } from '../../../src/check/events';
import type { RevisionEvents } from '../../../src/check/history';
import { H, kv } from './builders';

const EVENTS: RevisionEvents[] = [
  { revision: 2, events: [{ type: 'put', kv: kv('a', 'a1', 2) }] },
  { revision: 3, events: [{ type: 'put', kv: kv('a', 'a2', 3, { create: 2, version: 2 }) }] },
  { revision: 4, events: [{ type: 'delete', kv: kv('a', '', 4, { create: 0, version: 0 }) }] },
  { revision: 5, events: [{ type: 'put', kv: kv('b', 'b1', 5) }] },
];
const all = { isChecked: (): boolean => true };

describe('checks against the final event history', () => {
  test('indeterminate writes are resolved: at their revision, or never', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    const late = h.putUnknown('a', 'a2', 2, 3);
    const never = h.putUnknown('a', 'zz', 2, 3);
    const del = h.delUnknown('a', 4, 5);
    const delNoop = h.delUnknown('b', 4, 5);
    const casSeen = h.casUnknown('b', { target: 'mod', modRevision: 0 }, 'b1', 5, 6);
    const res = resolveIndeterminate(h.ops, EVENTS);
    expect(res.get(late.id)).toEqual({ kind: 'at', revision: 3 });
    expect(res.get(never.id)).toEqual({ kind: 'never' });
    expect(res.get(del.id)).toEqual({ kind: 'candidates', revisions: [4] });
    expect(res.get(delNoop.id)).toEqual({ kind: 'never' });
    expect(res.get(casSeen.id)).toEqual({ kind: 'at', revision: 5 });
    const r = checkKvHistory(h.ops, { events: EVENTS });
    expect(r.anomalies).toEqual([]);
    expect(r.resolved).toEqual({ at: 2, happened: 0, never: 2, candidates: 1, open: 0 });
  });

  test('a resolved write must still fit real time', () => {
    // The unknown put of a2 was invoked after a read at revision 3 returned: it cannot be revision 3.
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    h.get('a', 2, 3, 3, kv('a', 'a1', 2));
    h.putUnknown('a', 'a2', 4, 5);
    const r = checkKvHistory(h.ops, { events: EVENTS });
    expect(r.anomalies.map((a) => a.kind)).toContain('revision-order');
  });

  test('an acknowledged write missing at its revision is a lost write', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    const lost = h.put('a', 'a9', 2, 3, 3);
    const as = checkAgainstEvents(h.ops, EVENTS, all);
    expect(as.map((a) => a.kind)).toContain('lost-write');
    expect(as.find((a) => a.kind === 'lost-write')!.window!.map((w) => w.id)).toEqual([lost.id]);
  });

  test('a write nobody made is a phantom; a value written twice is a duplicate', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    const dup: RevisionEvents[] = [...EVENTS, { revision: 6, events: [{ type: 'put', kv: kv('a', 'a1', 6) }] }];
    const kinds = checkAgainstEvents(h.ops, dup, all).map((a) => a.kind);
    expect(kinds).toContain('phantom-write'); // a2 and b1 were never written by h
    expect(kinds).toContain('duplicate-write');
  });

  test('reads, serializable reads and prev_kv are compared with the state at their revision', () => {
    const ok = new H();
    ok.put('a', 'a1', 0, 1, 2);
    ok.put('a', 'a2', 2, 3, 3, { prev: kv('a', 'a1', 2) });
    ok.del('a', 4, 5, 4, 1, [kv('a', 'a2', 3, { create: 2, version: 2 })]);
    ok.put('b', 'b1', 6, 7, 5);
    ok.get('a', 8, 9, 2, kv('a', 'a1', 2), true); // stale but a real prefix state
    ok.range('a', 'c', 8, 9, 5, [kv('b', 'b1', 5)], true);
    expect(checkAgainstEvents(ok.ops, EVENTS, all)).toEqual([]);

    const bad = new H();
    bad.put('a', 'a1', 0, 1, 2);
    bad.put('a', 'a2', 2, 3, 3);
    bad.put('b', 'b1', 6, 7, 5);
    bad.get('a', 8, 9, 3, kv('a', 'a1', 2), true); // claims revision 3 but shows revision 2's state
    const as = checkAgainstEvents(bad.ops, EVENTS, all);
    expect(as.map((a) => a.kind)).toEqual(['serializable-read']);
  });

  test('the history itself: gaps and mislabelled events', () => {
    expect(checkEventHistory(EVENTS)).toEqual([]);
    const gap = [EVENTS[0]!, EVENTS[2]!];
    expect(checkEventHistory(gap).map((a) => a.message).join()).toMatch(/jump from 2 to 4/);
    const wrong: RevisionEvents[] = [{ revision: 2, events: [{ type: 'put', kv: kv('a', 'a1', 3) }] }];
    expect(checkEventHistory(wrong).map((a) => a.message).join()).toMatch(/carries mod revision 3/);
  });

  test('durability against the final read: present or superseded', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    h.put('a', 'a2', 2, 3, 3);
    h.del('a', 4, 5, 4, 1);
    h.put('b', 'b1', 6, 7, 5);
    expect(checkDurability(h.ops, [kv('b', 'b1', 5)], 5, all)).toEqual([]);
    // b1 missing from the final state with no delete after it.
    const lost = checkDurability(h.ops, [], 5, all);
    expect(lost.map((a) => a.kind)).toEqual(['lost-write']);
    expect(lost[0]!.message).toMatch(/b=b1 at revision 5/);
    // An older value in the final state is not "superseded".
    const g = new H();
    g.put('a', 'a1', 0, 1, 2);
    g.put('a', 'a2', 2, 3, 3);
    expect(checkDurability(g.ops, [kv('a', 'a1', 2)], 3, all).map((a) => a.kind)).toEqual(['lost-write']);
  });

  test('indeterminate lease grants and revokes are resolved from the final lease list', () => {
    const h = new H();
    h.grant('7', 0, 1, 1);
    h.put('a', 'a1', 2, 3, 2, { lease: '7' });
    h.del('a', 4, 5, 3, 1, [kv('a', 'a1', 2, { lease: '7' })]);
    // The revoke's outcome is unknown; the lease is gone at the end. The delete event at 3 holds
    // the lease in its prev_kv, but it is the DeleteRange's, not the revoke's.
    const revoke = h.ops.length;
    h.ops.push({ id: revoke, process: 99, call: 6, ret: 7, status: 'unknown', input: { type: 'leaseRevoke', lease: '7' }, error: { code: 4, message: 'deadline' } });
    const grant8 = h.ops.length;
    h.ops.push({ id: grant8, process: 98, call: 6, ret: 7, status: 'unknown', input: { type: 'leaseGrant', lease: '8', ttl: 60 }, error: { code: 4, message: 'deadline' } });
    h.put('b', 'b1', 8, 9, 4, { lease: '8' });
    const events: RevisionEvents[] = [
      { revision: 2, events: [{ type: 'put', kv: kv('a', 'a1', 2, { lease: '7' }) }] },
      { revision: 3, events: [{ type: 'delete', kv: kv('a', '', 3, { create: 0, version: 0 }), prevKv: kv('a', 'a1', 2, { lease: '7' }) }] },
      { revision: 4, events: [{ type: 'put', kv: kv('b', 'b1', 4, { lease: '8' }) }] },
    ];
    const res = resolveIndeterminate(h.ops, events, new Set(['8']));
    expect(res.get(revoke)).toEqual({ kind: 'happened' });
    expect(res.get(grant8)).toEqual({ kind: 'happened' });
    const r = checkKvHistory(h.ops, { events, finalLeases: new Set(['8']) });
    expect(r.anomalies).toEqual([]);
    // Had lease 7 still existed, the revoke never took effect.
    expect(resolveIndeterminate(h.ops, events, new Set(['7', '8'])).get(revoke)).toEqual({ kind: 'never' });
  });
});
