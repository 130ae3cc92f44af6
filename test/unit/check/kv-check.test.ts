import { checkKvHistory } from '../../../src/check/check-kv';
import type { Anomaly } from '../../../src/check/anomaly';
import { H, kv } from './builders';

function kinds(as: readonly Anomaly[]): string[] {
  return [...new Set(as.map((a) => a.kind))].sort();
}

describe('KV histories that are linearizable', () => {
  test('puts, reads, versions and create revisions in sequence', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    h.get('a', 2, 3, 2, kv('a', 'a1', 2));
    h.put('a', 'a2', 4, 5, 3, { prev: kv('a', 'a1', 2) });
    h.get('a', 6, 7, 3, kv('a', 'a2', 3, { create: 2, version: 2 }));
    h.del('a', 8, 9, 4, 1, [kv('a', 'a2', 3, { create: 2, version: 2 })]);
    h.get('a', 10, 11, 4, null);
    h.del('a', 12, 13, 4, 0, []);
    h.put('a', 'a3', 14, 15, 5, { prev: null });
    h.get('a', 16, 17, 5, kv('a', 'a3', 5));
    const r = checkKvHistory(h.ops);
    expect(r.anomalies).toEqual([]);
    expect(r.keys).toEqual([expect.objectContaining({ key: 'a', result: 'ok' })]);
  });

  test('a read concurrent with a put may see the old or the new value', () => {
    for (const seen of ['old', 'new'] as const) {
      const h = new H();
      h.put('a', 'a1', 0, 1, 2);
      h.put('a', 'a2', 2, 10, 3);
      if (seen === 'old') h.get('a', 3, 9, 2, kv('a', 'a1', 2));
      else h.get('a', 3, 9, 3, kv('a', 'a2', 3, { create: 2, version: 2 }));
      expect(checkKvHistory(h.ops).anomalies).toEqual([]);
    }
  });

  test('compare-and-set on mod revision and on value, with the failure branch read', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    h.cas('a', { target: 'mod', modRevision: 2 }, 'a2', 2, 3, 3, true);
    h.cas('a', { target: 'mod', modRevision: 2 }, 'a3', 4, 5, 3, false, kv('a', 'a2', 3, { create: 2, version: 2 }));
    h.cas('a', { target: 'value', value: 'a2' }, 'a4', 6, 7, 4, true);
    h.cas('a', { target: 'value', value: 'a2' }, 'a5', 8, 9, 4, false, kv('a', 'a4', 4, { create: 2, version: 3 }));
    h.cas('b', { target: 'mod', modRevision: 0 }, 'b1', 10, 11, 5, true);
    h.cas('c', { target: 'value', value: '' }, 'c1', 12, 13, 5, false, null);
    expect(checkKvHistory(h.ops).anomalies).toEqual([]);
  });

  test('a range across keys projects onto each key, absent keys included', () => {
    const h = new H();
    h.put('k1', 'x', 0, 1, 2);
    h.put('k2', 'y', 0, 1, 3);
    h.range('k', 'l', 2, 3, 3, [kv('k1', 'x', 2), kv('k2', 'y', 3)]);
    h.del('k1', 4, 5, 4, 1);
    h.range('k', 'l', 6, 7, 4, [kv('k2', 'y', 3)]);
    expect(checkKvHistory(h.ops).anomalies).toEqual([]);
  });

  test('leases: keys go with their lease in one revision; a put on a revoked lease fails', () => {
    const h = new H();
    h.grant('7', 0, 1, 1);
    h.put('a', 'a1', 2, 3, 2, { lease: '7' });
    h.put('b', 'b1', 2, 3, 3, { lease: '7' });
    h.revoke('7', 4, 5, 4);
    h.range('a', 'c', 6, 7, 4, []);
    h.putLeaseNotFound('a', 'a2', '7', 8, 9);
    expect(checkKvHistory(h.ops).anomalies).toEqual([]);
  });

  test('indeterminate operations may take effect late or never', () => {
    const h = new H();
    h.put('a', 'a1', 0, 1, 2);
    h.putUnknown('a', 'lost', 2, 3); // never
    h.putUnknown('a', 'late', 4, 5); // seen later
    h.get('a', 6, 7, 2, kv('a', 'a1', 2));
    h.get('a', 8, 9, 5, kv('a', 'late', 5, { create: 2, version: 2 }));
    h.delUnknown('a', 10, 11);
    h.get('a', 12, 13, 5, kv('a', 'late', 5, { create: 2, version: 2 }));
    expect(checkKvHistory(h.ops).anomalies).toEqual([]);
  });
});

describe('planted anomalies are found with a small window', () => {
  test('stale read', () => {
    const h = new H();
    for (let i = 0; i < 10; i++) h.put('a', `v${i}`, 10 * i, 10 * i + 2, i + 2);
    h.put('a', 'v10', 100, 102, 12);
    const stale = h.get('a', 103, 104, 12, kv('a', 'v9', 11, { create: 2, version: 10 }));
    for (let i = 11; i < 15; i++) h.put('a', `v${i}`, 10 * i, 10 * i + 2, i + 2);
    const r = checkKvHistory(h.ops);
    const bad = r.anomalies.find((a) => a.kind === 'nonlinearizable');
    expect(bad?.key).toBe('a');
    const ids = bad!.window!.map((w) => w.id);
    expect(ids).toContain(stale.id);
    expect(ids).toContain(10); // the put of v10 it missed
    expect(ids.length).toBeLessThanOrEqual(3);
    expect(bad!.window!.every((w) => typeof w.call === 'number')).toBe(true);
  });

  test('stale read with a stale header: also a real-time revision violation', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 2);
    h.put('a', 'v2', 2, 3, 3);
    h.get('a', 4, 5, 2, kv('a', 'v1', 2));
    const r = checkKvHistory(h.ops);
    expect(kinds(r.anomalies)).toEqual(['nonlinearizable', 'revision-order']);
  });

  test('lost write', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 2);
    h.put('b', 'w1', 2, 3, 3);
    h.get('a', 4, 5, 3, null);
    const r = checkKvHistory(h.ops);
    const bad = r.anomalies.find((a) => a.kind === 'nonlinearizable');
    expect(bad?.key).toBe('a');
    expect(bad!.window!.map((w) => w.id).sort()).toEqual([0, 2]);
  });

  test('duplicated write (a put applied twice)', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 2);
    h.put('a', 'v2', 2, 3, 3);
    h.get('a', 10, 11, 4, kv('a', 'v1', 4, { create: 2, version: 3 }));
    const r = checkKvHistory(h.ops, {
      events: [
        { revision: 2, events: [{ type: 'put', kv: kv('a', 'v1', 2) }] },
        { revision: 3, events: [{ type: 'put', kv: kv('a', 'v2', 3, { create: 2, version: 2 }) }] },
        { revision: 4, events: [{ type: 'put', kv: kv('a', 'v1', 4, { create: 2, version: 3 }) }] },
      ],
    });
    expect(kinds(r.anomalies)).toEqual(['duplicate-write', 'nonlinearizable']);
  });

  test('reordered pair: a later write got an earlier revision', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 3);
    h.put('a', 'v2', 2, 3, 2);
    const r = checkKvHistory(h.ops);
    expect(kinds(r.anomalies)).toEqual(['nonlinearizable', 'revision-order']);
    const order = r.anomalies.find((a) => a.kind === 'revision-order')!;
    expect(order.window!.map((w) => w.id)).toEqual([0, 1]);
  });

  test('reordered pair on different keys is a revision-order anomaly only', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 3);
    h.put('b', 'w1', 2, 3, 2);
    expect(kinds(checkKvHistory(h.ops).anomalies)).toEqual(['revision-order']);
  });

  test('two writes with one revision', () => {
    const h = new H();
    h.put('a', 'v1', 0, 5, 2);
    h.put('b', 'w1', 0, 5, 2);
    expect(kinds(checkKvHistory(h.ops).anomalies)).toEqual(['duplicate-revision']);
  });

  test('a range that is not one snapshot', () => {
    const h = new H();
    h.put('k1', 'x', 0, 1, 2);
    h.put('k2', 'y', 2, 3, 3);
    h.range('k', 'l', 4, 5, 3, [kv('k1', 'x', 2)]);
    const r = checkKvHistory(h.ops);
    expect(r.anomalies.map((a) => [a.kind, a.key])).toEqual([['nonlinearizable', 'k2']]);
  });

  test('a compare-and-set that succeeded though its compare was false', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 2);
    h.cas('a', { target: 'mod', modRevision: 5 }, 'v2', 2, 3, 3, true);
    expect(kinds(checkKvHistory(h.ops).anomalies)).toEqual(['nonlinearizable']);
    const g = new H();
    g.put('a', 'v1', 0, 1, 2);
    g.cas('a', { target: 'value', value: 'v1' }, 'v2', 2, 3, 2, false, kv('a', 'v1', 2));
    expect(kinds(checkKvHistory(g.ops).anomalies)).toEqual(['nonlinearizable']);
  });

  test('lease anomalies: a key outliving its lease, a put on a revoked lease, a lease missing too early', () => {
    const a = new H();
    a.grant('7', 0, 1, 1);
    a.put('a', 'v1', 2, 3, 2, { lease: '7' });
    a.revoke('7', 4, 5, 3);
    a.get('a', 6, 7, 3, kv('a', 'v1', 2, { lease: '7' }));
    expect(kinds(checkKvHistory(a.ops).anomalies)).toEqual(['nonlinearizable']);

    const b = new H();
    b.grant('7', 0, 1, 1);
    b.revoke('7', 2, 3, 1);
    b.put('a', 'v1', 4, 5, 2, { lease: '7' });
    expect(kinds(checkKvHistory(b.ops).anomalies)).toEqual(['nonlinearizable']);

    const c = new H();
    c.grant('7', 0, 1, 1);
    c.putLeaseNotFound('a', 'v1', '7', 2, 3);
    c.revoke('7', 4, 5, 1);
    expect(kinds(checkKvHistory(c.ops).anomalies)).toEqual(['nonlinearizable']);

    // A lease never granted is simply not found.
    const d = new H();
    d.putLeaseNotFound('a', 'v1', '7', 0, 1);
    expect(checkKvHistory(d.ops).anomalies).toEqual([]);
  });

  test('a header revision below the mod revision it returns', () => {
    const h = new H();
    h.put('a', 'v1', 0, 1, 5);
    h.get('a', 2, 3, 4, kv('a', 'v1', 5));
    expect(kinds(checkKvHistory(h.ops).anomalies)).toContain('nonlinearizable');
  });
});
