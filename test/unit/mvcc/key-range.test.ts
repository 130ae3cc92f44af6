import { bytesToKey, makeRange, prefixEnd, rangeContains, rangesOverlap } from '../../../src/mvcc/key-range';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');

describe('key ranges', () => {
  test('prefix end increments the last byte below 0xff', () => {
    expect(Buffer.from(prefixEnd(b('abc'))).toString('latin1')).toBe('abd');
    expect(Buffer.from(prefixEnd(b('a\xff'))).toString('latin1')).toBe('b');
    expect([...prefixEnd(b('\xff\xff'))]).toEqual([0]);
  });

  test('single key, interval, from-key', () => {
    const single = makeRange(b('k'), new Uint8Array(0));
    expect(rangeContains(single, 'k')).toBe(true);
    expect(rangeContains(single, 'k2')).toBe(false);
    const iv = makeRange(b('a'), b('c'));
    expect(['a', 'b', 'bz'].every((k) => rangeContains(iv, k))).toBe(true);
    expect(rangeContains(iv, 'c')).toBe(false);
    const from = makeRange(b('m'), Uint8Array.of(0));
    expect(rangeContains(from, '\xff\xff')).toBe(true);
    expect(rangeContains(from, 'l')).toBe(false);
  });

  test('binary keys compare bytewise', () => {
    const keys = [b('\x00'), b('\x7f'), b('\x80'), b('\xff'), b('a\x00'), b('a')];
    const byString = [...keys].sort((x, y) => (bytesToKey(x) < bytesToKey(y) ? -1 : 1));
    const byBytes = [...keys].sort((x, y) => Buffer.compare(x, y));
    expect(byString).toEqual(byBytes);
  });

  test('overlap', () => {
    expect(rangesOverlap(makeRange(b('a'), b('c')), makeRange(b('b'), new Uint8Array(0)))).toBe(true);
    expect(rangesOverlap(makeRange(b('a'), b('c')), makeRange(b('c'), b('d')))).toBe(false);
    expect(rangesOverlap(makeRange(b('a'), Uint8Array.of(0)), makeRange(b('z'), b('zz')))).toBe(true);
  });
});
