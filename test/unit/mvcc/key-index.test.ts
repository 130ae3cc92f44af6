import fc from 'fast-check';
import { KeyIndex } from '../../../src/mvcc/key-index';

describe('KeyIndex', () => {
  test('generations, versions and reads at past revisions', () => {
    const ki = new KeyIndex();
    ki.put(2, 0);
    ki.put(3, 0);
    expect(ki.tombstone(4, 0)).toBe(true);
    ki.put(6, 1);
    expect(ki.get(1)).toBeUndefined();
    expect(ki.get(2)).toEqual({ modMain: 2, modSub: 0, createdMain: 2, createdSub: 0, version: 1 });
    expect(ki.get(3)).toMatchObject({ modMain: 3, version: 2, createdMain: 2 });
    expect(ki.get(4)).toBeUndefined();
    expect(ki.get(5)).toBeUndefined();
    expect(ki.get(6)).toMatchObject({ modMain: 6, modSub: 1, version: 1, createdMain: 6, createdSub: 1 });
    expect(ki.get(100)).toMatchObject({ modMain: 6 });
  });

  test('tombstone of a key that is not live is refused', () => {
    const ki = new KeyIndex();
    expect(ki.tombstone(2, 0)).toBe(false);
    ki.put(2, 0);
    ki.tombstone(3, 0);
    expect(ki.tombstone(4, 0)).toBe(false);
  });

  test('put must move forward', () => {
    const ki = new KeyIndex();
    ki.put(5, 0);
    expect(() => ki.put(5, 0)).toThrow();
    expect(() => ki.put(4, 9)).toThrow();
  });

  test('compaction keeps the last revision at or before the point and drops ended generations', () => {
    const ki = new KeyIndex();
    ki.put(2, 0);
    ki.put(3, 0);
    ki.tombstone(4, 0);
    ki.put(6, 0);
    ki.put(7, 0);
    let keep = new Set<string>();
    ki.compact(3, keep);
    expect([...keep]).toEqual(['3_0']);
    expect(ki.get(3)).toMatchObject({ modMain: 3, version: 2 });
    keep = new Set<string>();
    ki.compact(4, keep);
    // A tombstone exactly at the compaction revision stays (a watch from 4 must still see the delete).
    expect([...keep]).toEqual(['4_0']);
    expect(ki.gens.length).toBe(2);
    expect(ki.get(4)).toBeUndefined();
    keep = new Set<string>();
    ki.compact(5, keep);
    expect([...keep]).toEqual([]); // now the ended generation is gone
    expect(ki.gens.length).toBe(1);
    keep = new Set<string>();
    ki.compact(6, keep);
    expect([...keep]).toEqual(['6_0']);
    expect(ki.get(7)).toMatchObject({ modMain: 7, version: 2, createdMain: 6 });
  });

  test('compaction keeps a tombstone at the compaction revision, and drops it past it', () => {
    const ki = new KeyIndex();
    ki.put(2, 0);
    ki.tombstone(3, 0);
    let keep = new Set<string>();
    ki.compact(3, keep);
    expect([...keep]).toEqual(['3_0']);
    expect(ki.isEmpty()).toBe(false);
    keep = new Set<string>();
    ki.compact(4, keep);
    expect(keep.size).toBe(0);
    expect(ki.isEmpty()).toBe(true);
  });

  test('a tombstone restored without its earlier revisions reads as absent', () => {
    const ki = new KeyIndex();
    ki.restoreTombstone(5, 1);
    expect(ki.isLive()).toBe(false);
    expect(ki.get(5)).toBeUndefined();
    expect(ki.get(9)).toBeUndefined();
    ki.put(7, 0);
    expect(ki.get(7)).toMatchObject({ version: 1, createdMain: 7 });
  });

  test('keep() predicts what compact() keeps', () => {
    const op = fc.oneof(fc.constant('put' as const), fc.constant('del' as const));
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 40 }), (ops, at) => {
        const ki = new KeyIndex();
        let rev = 2;
        for (const o of ops) {
          if (o === 'put') ki.put(rev, 0);
          else ki.tombstone(rev, 0);
          rev++;
        }
        const predicted = new Set<string>();
        ki.keep(at, predicted);
        const kept = new Set<string>();
        ki.compact(at, kept);
        expect([...kept].sort()).toEqual([...predicted].sort());
      }),
    );
  });

  test('reads at or after the compaction point are unchanged by compaction', () => {
    const op = fc.oneof(fc.constant('put' as const), fc.constant('del' as const));
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 40 }), (ops, at) => {
        const ki = new KeyIndex();
        let rev = 2;
        for (const o of ops) {
          if (o === 'put') ki.put(rev, 0);
          else ki.tombstone(rev, 0);
          rev++;
        }
        const before: unknown[] = [];
        for (let r = at; r <= rev + 1; r++) before.push(ki.get(r));
        ki.compact(at, new Set());
        const after: unknown[] = [];
        for (let r = at; r <= rev + 1; r++) after.push(ki.get(r));
        expect(after).toEqual(before);
      }),
    );
  });
});
