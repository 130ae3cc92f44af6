import fc from 'fast-check';
import { compareRev, decodeRevision, encodeRevision } from '../../../src/mvcc/revision';

describe('revision codec', () => {
  const rev = fc.record({ main: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), sub: fc.integer({ min: 0, max: 2 ** 40 }) });

  test('round trip, with and without the tombstone mark', () => {
    fc.assert(
      fc.property(rev, fc.boolean(), (r, t) => {
        const d = decodeRevision(encodeRevision(r.main, r.sub, t));
        expect(d).toEqual({ main: r.main, sub: r.sub, tombstone: t });
      }),
    );
  });

  test('byte order equals revision order', () => {
    fc.assert(
      fc.property(rev, rev, (a, b) => {
        const byBytes = Math.sign(Buffer.compare(encodeRevision(a.main, a.sub), encodeRevision(b.main, b.sub)));
        expect(byBytes).toBe(Math.sign(compareRev(a.main, a.sub, b.main, b.sub)));
      }),
    );
  });

  test('rejects malformed input', () => {
    expect(() => decodeRevision(new Uint8Array(5))).toThrow();
    const bad = new Uint8Array(17);
    bad[16] = 1;
    expect(() => decodeRevision(bad)).toThrow();
  });
});
