/**
 * The connection sniffer: HTTP/1 vs HTTP/2 preface detection, finding the first request's
 * authority, waiting for the ACK of the listener's SETTINGS, and the fallbacks; every case is also
 * fed one byte at a time and in random splits.
 */
import fc from 'fast-check';
import { HpackEncoder } from '../../../src/api/hpack';
import { ConnectionSniffer, SniffVerdict, authorityHasScheme } from '../../../src/api/protocol-sniffer';
import { PREFACE, clientSettings, data, frame, headers, settingsAck, windowUpdate } from './h2-test-frames';

function requestBlock(authority: string | undefined, huffman = true): Buffer {
  const fields = [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/etcdserverpb.KV/Range' },
    ...(authority === undefined ? [] : [{ name: ':authority', value: authority }]),
    { name: 'content-type', value: 'application/grpc' },
    { name: 'te', value: 'trailers' },
  ];
  return new HpackEncoder({ huffman }).encode(fields);
}

/** Feeds chunks; returns the verdict after each chunk. */
function feed(s: ConnectionSniffer, chunks: readonly Buffer[]): SniffVerdict[] {
  return chunks.map((c) => s.push(c));
}

function bytesOf(buf: Buffer): Buffer[] {
  return [...buf].map((b) => Buffer.from([b]));
}

/** A grpc-go-like opening: preface, SETTINGS, WINDOW_UPDATE, (server SETTINGS arrives) ACK, HEADERS, DATA. */
function grpcGoOpening(authority: string): { opening: Buffer; ackOffset: number } {
  const before = Buffer.concat([PREFACE, clientSettings(), windowUpdate(983041)]);
  const after = Buffer.concat([headers(1, requestBlock(authority)), data(1, Buffer.from([0, 0, 0, 0, 2, 10, 0]), true)]);
  return { opening: Buffer.concat([before, settingsAck(), after]), ackOffset: before.length };
}

describe('HTTP/1 detection', () => {
  test.each([
    ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 1],
    ['HEAD /health HTTP/1.0\r\n\r\n', 1],
    ['POST /v3/kv/range HTTP/1.1\r\n', 2], // 'P' is also the preface's first byte
  ])('%j is HTTP/1 from byte %d on', (req, at) => {
    const s = new ConnectionSniffer();
    const verdicts = feed(s, bytesOf(Buffer.from(req)).slice(0, at));
    expect(verdicts).toEqual([...Array<SniffVerdict>(at - 1).fill('pending'), 'http1']);
    expect(s.prefaceComplete).toBe(false);
    expect(s.bytes().toString()).toBe(req.slice(0, at));
  });

  test('a request line that shares a prefix with the preface is decided at the first differing byte', () => {
    const req = Buffer.from('PRI * HTTP/1.1\r\n\r\n');
    const s = new ConnectionSniffer();
    const verdicts = feed(s, bytesOf(req).slice(0, 12));
    expect(verdicts.slice(0, 11)).toEqual(Array(11).fill('pending'));
    expect(verdicts[11]).toBe('http1');
    expect(s.bytes().equals(req.subarray(0, 12))).toBe(true);
  });

  test('later pushes do not change the verdict', () => {
    const s = new ConnectionSniffer();
    expect(s.push(Buffer.from('G'))).toBe('http1');
    expect(s.push(Buffer.from(PREFACE))).toBe('http1');
    expect(s.decision).toBe('http1');
  });
});

describe('HTTP/2 preface', () => {
  test('prefaceComplete turns true exactly at the 24th byte', () => {
    const s = new ConnectionSniffer();
    bytesOf(PREFACE).forEach((b, i) => {
      expect(s.push(b)).toBe('pending');
      expect(s.prefaceComplete).toBe(i === PREFACE.length - 1);
    });
  });

  test('the preface in one chunk with frames after it', () => {
    const s = new ConnectionSniffer();
    expect(s.push(Buffer.concat([PREFACE, clientSettings()]))).toBe('pending');
    expect(s.prefaceComplete).toBe(true);
  });
});

describe('first request', () => {
  test.each([
    ['whole chunks', (b: Buffer) => [b]],
    ['one byte at a time', bytesOf],
  ])('plain authority → h2, replay without the SETTINGS ACK (%s)', (_n, split) => {
    const { opening, ackOffset } = grpcGoOpening('127.0.0.1:2379');
    const s = new ConnectionSniffer();
    // Like the listener, stop feeding once decided.
    let consumed = 0;
    for (const c of split(opening)) {
      consumed += c.length;
      if (s.push(c) !== 'pending') break;
    }
    expect(s.decision).toBe('h2');
    expect(s.authority).toBe('127.0.0.1:2379');
    const seen = opening.subarray(0, consumed);
    const expected = Buffer.concat([seen.subarray(0, ackOffset), seen.subarray(ackOffset + 9)]);
    expect(s.replayForServer().equals(expected)).toBe(true);
    expect(s.bytes().equals(seen)).toBe(true);
  });

  test('the verdict comes exactly when the header block completes (ACK earlier)', () => {
    const { opening } = grpcGoOpening('127.0.0.1:2379');
    const s = new ConnectionSniffer();
    const verdicts = feed(s, bytesOf(opening));
    const firstDecided = verdicts.findIndex((v) => v !== 'pending');
    const headersEnd = opening.length - data(1, Buffer.from([0, 0, 0, 0, 2, 10, 0]), true).length;
    expect(firstDecided).toBe(headersEnd - 1);
  });

  test.each([
    ['http://127.0.0.1:2379', 'h2-rewrite'],
    ['https://etcd.example:2379', 'h2-rewrite'],
    ['unix://localhost:0', 'h2-rewrite'],
    ['localhost:2379', 'h2'],
    ['[::1]:2379', 'h2'],
  ])('authority %s → %s, one byte at a time', (authority, verdict) => {
    const { opening } = grpcGoOpening(authority);
    const s = new ConnectionSniffer();
    const verdicts = feed(s, bytesOf(opening));
    expect(verdicts[verdicts.length - 1]).toBe(verdict);
    expect(s.authority).toBe(authority);
  });

  test('an ACK that comes after the header block is waited for', () => {
    const s = new ConnectionSniffer();
    expect(s.push(Buffer.concat([PREFACE, clientSettings(), headers(1, requestBlock('127.0.0.1:2379'))]))).toBe('pending');
    expect(s.authority).toBe('127.0.0.1:2379');
    expect(s.push(data(1, Buffer.from([0, 0, 0, 0, 0]), true))).toBe('pending');
    expect(s.push(settingsAck())).toBe('h2');
    expect(parseAckCount(s.replayForServer())).toBe(0);
  });

  test('only the first ACK is taken out of the replay', () => {
    const s = new ConnectionSniffer();
    s.push(Buffer.concat([PREFACE, clientSettings(), settingsAck(), settingsAck()]));
    expect(s.push(headers(1, requestBlock('h:1')))).toBe('h2');
    expect(parseAckCount(s.replayForServer())).toBe(1);
  });

  test('padded, prioritized header block split over CONTINUATION frames', () => {
    const block = requestBlock('http://10.0.0.1:2379');
    const opening = Buffer.concat([
      PREFACE,
      clientSettings(),
      settingsAck(),
      headers(3, block, { pad: 7, priority: { dependsOn: 0, weight: 15 }, splitAt: 5 }),
    ]);
    for (const split of [(b: Buffer) => [b], bytesOf]) {
      const s = new ConnectionSniffer();
      const v = feed(s, split(opening));
      expect(v[v.length - 1]).toBe('h2-rewrite');
      expect(s.authority).toBe('http://10.0.0.1:2379');
    }
  });

  test('a raw (non-Huffman) authority is read as well', () => {
    const s = new ConnectionSniffer();
    s.push(Buffer.concat([PREFACE, clientSettings(), settingsAck()]));
    expect(s.push(headers(1, requestBlock('http://h:1', false)))).toBe('h2-rewrite');
  });

  test('no authority, or a malformed block, goes to the server as is (it will answer)', () => {
    const s1 = new ConnectionSniffer();
    s1.push(Buffer.concat([PREFACE, clientSettings(), settingsAck()]));
    expect(s1.push(headers(1, requestBlock(undefined)))).toBe('h2');
    expect(s1.authority).toBeUndefined();

    const s2 = new ConnectionSniffer();
    s2.push(Buffer.concat([PREFACE, clientSettings(), settingsAck()]));
    expect(s2.push(headers(1, Buffer.from([0x80])))).toBe('h2');
    expect(s2.authority).toBeUndefined();
  });

  test('frames other than HEADERS before the first request are skipped', () => {
    const s = new ConnectionSniffer();
    s.push(Buffer.concat([PREFACE, clientSettings(), windowUpdate(5), frame(0x6, 0, 0, Buffer.alloc(8)), settingsAck()]));
    expect(s.decision).toBe('pending');
    expect(s.push(headers(5, requestBlock('http://h:2')))).toBe('h2-rewrite');
  });
});

describe('bounds', () => {
  test('past maxBytes without a decision a complete preface takes the rewriting path', () => {
    const s = new ConnectionSniffer({ maxBytes: 200 });
    expect(s.push(Buffer.concat([PREFACE, clientSettings()]))).toBe('pending');
    expect(s.push(windowUpdate(1))).toBe('pending');
    // A header block that is not finished and an ACK that never comes.
    expect(s.push(headers(1, Buffer.alloc(300, 0x82), { splitAt: 100 }).subarray(0, 150))).toBe('h2-rewrite');
  });

  test('a header block without the ACK falls back once the bound is passed', () => {
    const s = new ConnectionSniffer({ maxBytes: 150 });
    expect(s.push(Buffer.concat([PREFACE, clientSettings(), headers(1, requestBlock('a:1'))]))).toBe('pending');
    expect(s.push(data(1, Buffer.alloc(100)))).toBe('h2-rewrite');
  });

  test('time limit: nothing or a partial preface → http1, a complete preface → h2-rewrite', () => {
    expect(new ConnectionSniffer().timeout()).toBe('http1');
    const partial = new ConnectionSniffer();
    partial.push(PREFACE.subarray(0, 10));
    expect(partial.timeout()).toBe('http1');
    const h2 = new ConnectionSniffer();
    h2.push(Buffer.concat([PREFACE, clientSettings(), settingsAck()]));
    expect(h2.timeout()).toBe('h2-rewrite');
    const decided = new ConnectionSniffer();
    decided.push(Buffer.from('GET'));
    expect(decided.timeout()).toBe('http1');
  });
});

test('any split of a connection opening gives the same verdict, authority and replay', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('127.0.0.1:2379', 'http://127.0.0.1:2379', 'https://a.b:1/x'),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      (authority, sizes, ackLate) => {
        const parts = [PREFACE, clientSettings(), windowUpdate(65535)];
        const hdr = headers(1, requestBlock(authority), { splitAt: 7 });
        const opening = Buffer.concat(ackLate ? [...parts, hdr, settingsAck()] : [...parts, settingsAck(), hdr]);
        const whole = new ConnectionSniffer();
        const wv = whole.push(opening);
        const s = new ConnectionSniffer();
        let pos = 0;
        let i = 0;
        let v: SniffVerdict = 'pending';
        while (pos < opening.length) {
          const n = sizes[i++ % sizes.length] ?? 1;
          v = s.push(opening.subarray(pos, pos + n));
          pos += n;
        }
        expect(v).toBe(wv);
        expect(v).toBe(authorityHasScheme(authority) ? 'h2-rewrite' : 'h2');
        expect(s.authority).toBe(authority);
        expect(s.replayForServer().equals(whole.replayForServer())).toBe(true);
        expect(parseAckCount(s.replayForServer())).toBe(0);
      },
    ),
  );
});

/** Counts SETTINGS ACK frames after the preface. */
function parseAckCount(buf: Buffer): number {
  let n = 0;
  let pos = PREFACE.length;
  while (pos + 9 <= buf.length) {
    const len = buf.readUIntBE(pos, 3);
    if (buf[pos + 3] === 0x4 && ((buf[pos + 4] ?? 0) & 1) === 1) n++;
    pos += 9 + len;
  }
  return n;
}
