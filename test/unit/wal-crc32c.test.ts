import fc from 'fast-check';
import { crc32c, crc32cUpdate } from '../../src/storage/crc32c';

/** Bit-at-a-time reference implementation of CRC-32C. */
function referenceCrc32c(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  test('standard check value and RFC 3720 test vectors', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  test('matches a bitwise reference on arbitrary data and sub-ranges', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (data, a, b) => {
        expect(crc32c(data)).toBe(referenceCrc32c(data));
        const lo = data.length === 0 ? 0 : a % (data.length + 1);
        const hi = lo + (data.length === 0 ? 0 : b % (data.length - lo + 1));
        expect(crc32c(data, lo, hi)).toBe(referenceCrc32c(data.subarray(lo, hi)));
      }),
      { numRuns: 500 },
    );
  });

  test('updating in pieces equals one pass over the concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (x, y) => {
        const joined = new Uint8Array(x.length + y.length);
        joined.set(x);
        joined.set(y, x.length);
        expect(crc32cUpdate(crc32c(x), y)).toBe(crc32c(joined));
      }),
    );
  });
});
