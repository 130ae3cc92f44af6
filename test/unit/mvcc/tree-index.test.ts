import fc from 'fast-check';
import { makeRange } from '../../../src/mvcc/key-range';
import { IndexedKey, TreeIndex } from '../../../src/mvcc/tree-index';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');

describe('TreeIndex', () => {
  test('range, limit, count and reads at past revisions', () => {
    const t = new TreeIndex();
    t.put('a', 2, 0);
    t.put('b', 3, 0);
    t.put('c', 4, 0);
    t.tombstone('b', 5, 0);
    t.put('d', 6, 0);
    const at = (rev: number, limit = 0): string[] => {
      const out: IndexedKey[] = [];
      t.range(makeRange(b('a'), Uint8Array.of(0)), rev, limit, out);
      return out.map((e) => e.key);
    };
    expect(at(4)).toEqual(['a', 'b', 'c']);
    expect(at(5)).toEqual(['a', 'c']);
    expect(at(6)).toEqual(['a', 'c', 'd']);
    expect(at(6, 2)).toEqual(['a', 'c']);
    const out: IndexedKey[] = [];
    expect(t.range(makeRange(b('a'), Uint8Array.of(0)), 6, 1, out)).toBe(3); // count ignores the limit
    expect(t.count(makeRange(b('b'), b('d')), 4)).toBe(2);
    expect(t.count(makeRange(b('d'), b('b')), 6)).toBe(0);
    expect(t.get('b', 3)).toMatchObject({ modMain: 3, version: 1 });
    expect(t.get('b', 5)).toBeUndefined();
  });

  test('compaction removes keys whose history ended and keeps reads at or after it', () => {
    const t = new TreeIndex();
    t.put('gone', 2, 0);
    t.tombstone('gone', 3, 0);
    t.put('live', 4, 0);
    t.put('live', 5, 0);
    const keep = t.compact(4);
    expect([...keep]).toEqual(['4_0']);
    expect(t.lookup('gone')).toBeUndefined();
    expect(t.size).toBe(1);
    expect(t.get('live', 4)).toMatchObject({ modMain: 4 });
    expect(t.get('live', 5)).toMatchObject({ modMain: 5, version: 2 });
  });

  test('agrees with a simple model on random histories', () => {
    const op = fc.record({ key: fc.constantFrom('a', 'ab', 'b', 'b\x00', 'c', '\xff'), del: fc.boolean() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.constantFrom('a', 'b', '\x00'), fc.constantFrom('b', 'c', '', '\xff\xff'), (ops, lo, hi) => {
        const t = new TreeIndex();
        const history: Map<string, boolean>[] = [new Map()];
        let rev = 1;
        for (const o of ops) {
          const cur = new Map(history[history.length - 1]);
          if (o.del) {
            if (!cur.get(o.key)) continue;
            rev++;
            t.tombstone(o.key, rev, 0);
            cur.set(o.key, false);
          } else {
            rev++;
            t.put(o.key, rev, 0);
            cur.set(o.key, true);
          }
          history[rev - 1] = cur;
        }
        const r = makeRange(b(lo), hi === '' ? Uint8Array.of(0) : b(hi));
        for (let at = 1; at <= rev; at++) {
          let state = history[at - 1];
          for (let k = at - 1; state === undefined && k >= 0; k--) state = history[k];
          const expected = [...(state ?? new Map<string, boolean>()).entries()]
            .filter(([k, live]) => live && k >= lo && (hi === '' || k < hi))
            .map(([k]) => k)
            .sort();
          const out: IndexedKey[] = [];
          t.range(r, at, 0, out);
          expect(out.map((e) => e.key)).toEqual(expected);
        }
      }),
    );
  });
});
