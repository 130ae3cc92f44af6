/**
 * Small parts of the native server: grpc-timeout parsing, grpc-message percent-encoding, the
 * content-type rule, handler errors as statuses, request metadata and the deadline queue.
 */
import fc from 'fast-check';
import { DeadlineEntry, DeadlineQueue } from '../../../src/api/h2/deadlines';
import { decodeGrpcMessage, encodeGrpcMessage, isGrpcContentType, parseGrpcTimeout, statusFromError } from '../../../src/api/h2/grpc-codec';
import { CallMetadata } from '../../../src/api/h2/metadata';

test('grpc-timeout values', () => {
  expect(parseGrpcTimeout('1H')).toBe(3_600_000);
  expect(parseGrpcTimeout('2M')).toBe(120_000);
  expect(parseGrpcTimeout('5S')).toBe(5000);
  expect(parseGrpcTimeout('150m')).toBe(150);
  expect(parseGrpcTimeout('2500u')).toBeCloseTo(2.5);
  expect(parseGrpcTimeout('99999999n')).toBeCloseTo(99.999999);
  for (const bad of ['', 'S', '1', '123456789S', '1s', '-1S', '1.5S', ' 1S']) expect(parseGrpcTimeout(bad)).toBeUndefined();
});

test('grpc-message percent-encoding round-trips any text and leaves printable ASCII alone', () => {
  expect(encodeGrpcMessage('etcdserver: key not found')).toBe('etcdserver: key not found');
  expect(encodeGrpcMessage('100%\n')).toBe('100%25%0A');
  expect(encodeGrpcMessage('ü')).toBe('%C3%BC');
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), (s) => {
      const e = encodeGrpcMessage(s);
      expect(/^[\x20-\x7e]*$/.test(e)).toBe(true);
      expect(decodeGrpcMessage(e)).toBe(s);
    }),
  );
});

test('content types that are gRPC', () => {
  for (const ok of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8']) expect(isGrpcContentType(ok)).toBe(true);
  for (const bad of ['', 'application/json', 'application/grpcx', 'application/grpc-web']) expect(isGrpcContentType(bad)).toBe(false);
});

test('handler errors become statuses as grpc-js reads them', () => {
  expect(statusFromError({ code: 5, details: 'nope' })).toEqual({ code: 5, details: 'nope' });
  expect(statusFromError(new Error('boom'))).toEqual({ code: 2, details: 'boom' });
  expect(statusFromError({ code: 99, message: 'odd' })).toEqual({ code: 2, details: 'odd' });
  expect(statusFromError('text')).toEqual({ code: 2, details: 'text' });
});

test('metadata: every value of a key, -bin values decoded', () => {
  const md = new CallMetadata(['hasleader', 'true', 'x-a', '1', 'x-a', '2', 'trace-bin', Buffer.from([1, 2, 3]).toString('base64')]);
  expect(md.get('hasleader')).toEqual(['true']);
  expect(md.get('X-A')).toEqual(['1', '2']);
  expect(md.get('missing')).toEqual([]);
  expect(md.get('trace-bin')).toEqual([Buffer.from([1, 2, 3])]);
  expect(md.getMap()).toEqual({ hasleader: 'true', 'x-a': '1', 'trace-bin': Buffer.from([1, 2, 3]) });
});

describe('DeadlineQueue', () => {
  class Entry implements DeadlineEntry {
    heapIndex = -1;
    expired = false;
    constructor(
      public deadline: number,
      readonly log: number[],
    ) {}
    expire(): void {
      this.expired = true;
      this.log.push(this.deadline);
    }
  }

  test('expires entries in deadline order; removed entries never expire', async () => {
    const q = new DeadlineQueue();
    const log: number[] = [];
    const now = Date.now();
    const entries = [60, 20, 40, 10, 50, 30].map((d) => new Entry(now + d, log));
    for (const e of entries) q.add(e);
    q.remove(entries[4]!); // +50
    expect(q.size).toBe(5);
    await new Promise((r) => setTimeout(r, 120));
    expect(log.map((d) => d - now)).toEqual([10, 20, 30, 40, 60]);
    expect(entries[4]!.expired).toBe(false);
    expect(q.size).toBe(0);
  });

  test('the heap stays ordered under random adds and removes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 1000 })), { maxLength: 200 }), async (ops) => {
        let clock = 0;
        const q = new DeadlineQueue(() => clock);
        const log: number[] = [];
        const live: Entry[] = [];
        for (const [add, v] of ops) {
          if (add || live.length === 0) {
            const e = new Entry(1_000_000 + v, log);
            q.add(e);
            live.push(e);
          } else {
            const e = live.splice(v % live.length, 1)[0]!;
            q.remove(e);
          }
        }
        expect(q.size).toBe(live.length);
        // Move the clock past every deadline; an entry due at once re-arms the timer for now.
        clock = 2_000_000;
        const now = new Entry(0, log);
        q.add(now);
        await new Promise((r) => setTimeout(r, 5));
        expect(log).toEqual([0, ...live.map((e) => e.deadline).sort((a, b) => a - b)]);
        expect(q.size).toBe(0);
      }),
      { numRuns: 50 },
    );
  });
});
