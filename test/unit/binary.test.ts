import * as protobuf from 'protobufjs';
import { Reader, Writer } from '../../src/storage/binary';

/** protobufjs's int64 input: a Long-shaped object with the value's two 32-bit halves. */
function longOf(v: bigint): { low: number; high: number; unsigned: boolean } {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
}

function decode(bytes: Uint8Array): { value: bigint; pos: number } {
  const r = new Reader(bytes);
  const value = r.varint64();
  return { value, pos: r.pos };
}

describe('Reader.varint64', () => {
  const edge: bigint[] = [0n, 1n, 127n, 128n, 300n, -1n, -2n, (1n << 49n) - 1n, 1n << 49n, (1n << 53n) + 1n, (1n << 56n) - 1n, 1n << 56n, (1n << 63n) - 1n, -(1n << 63n), -(1n << 49n)];
  let seed = 12345;
  const rnd = (): bigint => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return BigInt(seed);
  };
  const random: bigint[] = [];
  for (let i = 0; i < 500; i++) random.push(BigInt.asIntN(64, (rnd() << 33n) ^ (rnd() << 11n) ^ rnd()) >> BigInt(Number(rnd() % 64n)));

  test.each([...edge, ...random].map((v) => [v]))('round-trips %p through Writer and protobufjs', (v) => {
    const ours = new Writer().varint64(v).finish();
    const pb = protobuf.Writer.create().int64(longOf(v)).finish();
    expect(Buffer.from(ours)).toEqual(Buffer.from(pb));
    const d = decode(ours);
    expect(d.value).toBe(v);
    expect(d.pos).toBe(ours.length);
  });

  test('keeps the low 64 bits of an over-wide tenth byte, as before', () => {
    const bytes = Uint8Array.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f]);
    expect(decode(bytes).value).toBe(BigInt.asIntN(64, 1n | (0x7fn << 63n)));
  });

  test('rejects a truncated or over-long varint', () => {
    expect(() => decode(Uint8Array.from([0x80]))).toThrow('truncated varint');
    expect(() => decode(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toThrow('truncated varint');
    expect(() => decode(new Uint8Array(11).fill(0x80))).toThrow('varint too long');
  });
});
