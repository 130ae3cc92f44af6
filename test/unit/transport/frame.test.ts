import fc from 'fast-check';
import { Backoff } from '../../../src/transport/backoff';
import { ChunkQueue } from '../../../src/transport/chunk-queue';
import {
  ConnectionKind,
  decodeHello,
  decodeRefusal,
  decodeSnapshotEnd,
  decodeSnapshotResult,
  encodeFrame,
  encodeHello,
  encodeRefusal,
  encodeSnapshotEnd,
  encodeSnapshotResult,
  FrameReader,
  FrameType,
  MAX_FRAME_PAYLOAD,
  PROTOCOL_VERSION,
  ProtocolError,
  RefusalCode,
} from '../../../src/transport/frame';
import type { Frame } from '../../../src/transport/frame';
import { parsePeerUrl } from '../../../src/transport/peer-url';

function drain(r: FrameReader): Frame[] {
  const out: Frame[] = [];
  for (let f = r.next(); f !== undefined; f = r.next()) out.push(f);
  return out;
}

function payloadOf(frame: Buffer): Buffer {
  const r = new FrameReader();
  r.push(frame);
  return r.next()!.payload;
}

describe('FrameReader', () => {
  test('reassembles frames however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 7 }), fc.uint8Array({ maxLength: 300 })), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 40 }),
        (frames, cuts) => {
          const wire = Buffer.concat(frames.map(([t, p]) => encodeFrame(t as FrameType, p)));
          const r = new FrameReader();
          const got: Frame[] = [];
          let off = 0;
          let k = 0;
          while (off < wire.length) {
            const n = cuts[k++ % cuts.length]!;
            r.push(wire.subarray(off, off + n));
            off += n;
            got.push(...drain(r));
          }
          expect(got.map((f) => [f.type, new Uint8Array(f.payload)])).toEqual(frames.map(([t, p]) => [t, p]));
          expect(r.buffered).toBe(0);
        },
      ),
    );
  });

  test('waits for a partial header and a partial payload', () => {
    const wire = encodeFrame(FrameType.Message, new Uint8Array([1, 2, 3]));
    const r = new FrameReader();
    r.push(wire.subarray(0, 3));
    expect(r.next()).toBeUndefined();
    r.push(wire.subarray(3, 6));
    expect(r.next()).toBeUndefined();
    r.push(wire.subarray(6));
    expect(r.next()).toEqual({ type: FrameType.Message, payload: Buffer.from([1, 2, 3]) });
    expect(r.next()).toBeUndefined();
  });

  test('refuses a length beyond the limit (a peer speaking another protocol)', () => {
    const r = new FrameReader();
    r.push(Buffer.from('GET / HTTP/1.1\r\n'));
    expect(() => r.next()).toThrow(ProtocolError);
    const big = Buffer.alloc(5);
    big.writeUInt32BE(MAX_FRAME_PAYLOAD + 1, 0);
    const r2 = new FrameReader();
    r2.push(big);
    expect(() => r2.next()).toThrow(/exceeds the limit/);
  });
});

describe('control payloads', () => {
  test('hello round-trips full 64-bit ids', () => {
    const h = {
      version: PROTOCOL_VERSION,
      kind: ConnectionKind.Snapshot,
      clusterId: 0xffff_ffff_ffff_fffen,
      from: 0x8000_0000_0000_0001n,
      to: 2n,
    };
    expect(decodeHello(payloadOf(encodeHello(h)))).toEqual(h);
  });

  test('hello of another layout reads as another version; bad kinds are protocol errors', () => {
    expect(decodeHello(Buffer.from([9, 1, 2])).version).toBe(9);
    expect(() => decodeHello(Buffer.from([PROTOCOL_VERSION, 1]))).toThrow(ProtocolError);
    const p = payloadOf(encodeHello({ version: 1, kind: ConnectionKind.Stream, clusterId: 1n, from: 2n, to: 3n }));
    p[1] = 9;
    expect(() => decodeHello(p)).toThrow(/unknown connection kind/);
  });

  test('refusals carry etcd reason texts', () => {
    expect(decodeRefusal(payloadOf(encodeRefusal(RefusalCode.ClusterIdMismatch)))).toEqual({
      code: RefusalCode.ClusterIdMismatch,
      reason: 'cluster ID mismatch',
    });
    expect(decodeRefusal(payloadOf(encodeRefusal(RefusalCode.MemberRemoved))).reason).toBe(
      'the member has been permanently removed from the cluster',
    );
    expect(() => decodeRefusal(Buffer.from([77]))).toThrow(ProtocolError);
  });

  test('snapshot end and result round-trip', () => {
    const sha = new Uint8Array(32).map((_, i) => i);
    const end = decodeSnapshotEnd(payloadOf(encodeSnapshotEnd({ sha256: sha, bytes: 2 ** 40 + 3 })));
    expect(new Uint8Array(end.sha256)).toEqual(sha);
    expect(end.bytes).toBe(2 ** 40 + 3);
    expect(() => decodeSnapshotEnd(Buffer.alloc(39))).toThrow(ProtocolError);
    expect(decodeSnapshotResult(payloadOf(encodeSnapshotResult({ ok: false, reason: 'nope' })))).toEqual({ ok: false, reason: 'nope' });
    expect(decodeSnapshotResult(payloadOf(encodeSnapshotResult({ ok: true, reason: '' })))).toEqual({ ok: true, reason: '' });
  });
});

describe('Backoff', () => {
  test('doubles from the minimum up to the maximum, with jitter in [d/2, d], and resets', () => {
    const lo = new Backoff({ minMs: 50, maxMs: 2000 }, () => 0);
    const hi = new Backoff({ minMs: 50, maxMs: 2000 }, () => 0.999999);
    const los = Array.from({ length: 8 }, () => lo.next());
    const his = Array.from({ length: 8 }, () => hi.next());
    expect(los).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000]);
    expect(his).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
    lo.reset();
    expect(lo.next()).toBe(25);
  });
});

describe('parsePeerUrl', () => {
  test.each([
    ['http://127.0.0.1:2380', { host: '127.0.0.1', port: 2380 }],
    ['http://[::1]:2380', { host: '::1', port: 2380 }],
    ['http://node-1.example:12380/', { host: 'node-1.example', port: 12380 }],
    ['10.0.0.5:2380', { host: '10.0.0.5', port: 2380 }],
  ])('accepts %s', (url, want) => {
    expect(parsePeerUrl(url)).toEqual({ url, ...want });
  });

  test.each(['https://127.0.0.1:2380', 'http://127.0.0.1', 'http://127.0.0.1:2380/raft', 'unix://x', 'not a url', 'http://h:0'])(
    'refuses %s',
    (url) => {
      expect(parsePeerUrl(url)).toBeUndefined();
    },
  );
});

describe('ChunkQueue', () => {
  function queue(): { q: ChunkQueue; events: string[] } {
    const events: string[] = [];
    const q = new ChunkQueue({ highWater: 10, lowWater: 4, onFull: () => events.push('full'), onDrained: () => events.push('drained') });
    return { q, events };
  }

  test('signals full above the high watermark and drained at the low one', async () => {
    const { q, events } = queue();
    const it = q[Symbol.asyncIterator]();
    for (let i = 0; i < 4; i++) q.push(new Uint8Array(3));
    expect(events).toEqual(['full']);
    await it.next();
    await it.next();
    expect(events).toEqual(['full']);
    await it.next();
    expect(events).toEqual(['full', 'drained']);
    await it.next();
    q.end();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  test('a waiting consumer gets chunks directly, then a failure', async () => {
    const { q } = queue();
    const it = q[Symbol.asyncIterator]();
    const p = it.next();
    q.push(new Uint8Array([5]));
    expect((await p).value).toEqual(new Uint8Array([5]));
    const p2 = it.next();
    q.fail(new Error('broken'));
    await expect(p2).rejects.toThrow('broken');
    await expect(it.next()).rejects.toThrow('broken');
  });

  test('a failure drops buffered chunks; discard stops buffering; one iteration only', async () => {
    const { q, events } = queue();
    const it = q[Symbol.asyncIterator]();
    expect(() => q[Symbol.asyncIterator]()).toThrow(/only once/);
    q.push(new Uint8Array(11));
    q.fail(new Error('bad'));
    expect(q.buffered).toBe(0);
    expect(events).toEqual(['full', 'drained']);
    await expect(it.next()).rejects.toThrow('bad');

    const { q: q2 } = queue();
    const it2 = q2[Symbol.asyncIterator]();
    q2.push(new Uint8Array(2));
    await it2.return!();
    q2.push(new Uint8Array(2));
    expect(q2.buffered).toBe(0);
    expect(await it2.next()).toEqual({ value: undefined, done: true });
  });
});
