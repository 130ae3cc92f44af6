/**
 * The watcher group matches a key to exactly the watchers whose range holds it: single keys,
 * [key, end) ranges and from-key ranges, checked against a brute-force model.
 */
import fc from 'fast-check';
import { makeRange } from '../../../src/mvcc/key-range';
import { Watcher, WatcherGroup } from '../../../src/watch/watcher-group';

const stream = { paused: false };
const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');

function watcher(id: number, key: string, end?: string): Watcher {
  const range = makeRange(b(key), end === undefined ? undefined : end === '' ? Uint8Array.of(0) : b(end));
  return new Watcher(id, stream, range, 1, false, false, false, false, false);
}

function matching(g: WatcherGroup, key: string): number[] {
  const out: number[] = [];
  g.forMatching(key, (w) => out.push(w.id));
  return out.sort((x, y) => x - y);
}

test('single keys, ranges and from-key ranges; add is idempotent; delete and has', () => {
  const g = new WatcherGroup();
  const a = watcher(1, 'a');
  const ac = watcher(2, 'a', 'c');
  const fromB = watcher(3, 'b', '');
  const a2 = watcher(4, 'a');
  for (const w of [a, ac, fromB, a2, a]) g.add(w);
  expect(g.size).toBe(4);
  expect(matching(g, 'a')).toEqual([1, 2, 4]);
  expect(matching(g, 'b')).toEqual([2, 3]);
  expect(matching(g, 'c')).toEqual([3]);
  expect(matching(g, '\0')).toEqual([]);
  expect(g.delete(a)).toBe(true);
  expect(g.delete(a)).toBe(false);
  expect(g.has(a)).toBe(false);
  expect(g.has(a2)).toBe(true);
  expect(matching(g, 'a')).toEqual([2, 4]);
  expect([...g.all()].map((w) => w.id).sort()).toEqual([2, 3, 4]);
  expect(g.size).toBe(3);
  for (const w of [ac, fromB, a2]) g.delete(w);
  expect(g.size).toBe(0);
  expect([...g.all()]).toEqual([]);
});

test('filters: NOPUT and NODELETE', () => {
  const w = new Watcher(0, stream, makeRange(b('k'), undefined), 1, false, true, false, false, false);
  expect([w.wants('put'), w.wants('delete')]).toEqual([false, true]);
  const v = new Watcher(0, stream, makeRange(b('k'), undefined), 1, false, false, true, false, false);
  expect([v.wants('put'), v.wants('delete')]).toEqual([true, false]);
});

test('matching equals a brute-force check of every range', () => {
  const key = fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\0', '\xff'), maxLength: 3 });
  const spec = fc.tuple(key, fc.oneof(fc.constant(undefined), fc.constant(''), key));
  fc.assert(
    fc.property(fc.array(spec, { maxLength: 12 }), fc.array(key, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 4 }), (specs, keys, drops) => {
      const g = new WatcherGroup();
      const ws = specs.map(([k, e], i) => watcher(i, k === '' ? '\0' : k, e));
      for (const w of ws) g.add(w);
      const dropped = new Set(drops.filter(() => ws.length > 0).map((d) => d % ws.length));
      for (const d of dropped) g.delete(ws[d]!);
      for (const k of keys) {
        const want = ws
          .filter((w, i) => !dropped.has(i))
          .filter((w) => (w.range.end === undefined ? k === w.range.key : k >= w.range.key && (w.range.end === '' || k < w.range.end)))
          .map((w) => w.id);
        expect(matching(g, k)).toEqual(want);
      }
      expect(g.size).toBe(ws.length - dropped.size);
    }),
  );
});
