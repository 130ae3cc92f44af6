/**
 * The header block rewriter: a client connection is built frame by frame with a client-side HPACK
 * encoder (dynamic table and Huffman, as grpc-go encodes), run through the rewriter whole and one
 * byte at a time, and the output is decoded as the server would: same frames in the same order,
 * header blocks equal but for the authority, the listener's SETTINGS ACK gone.
 */
import * as net from 'node:net';
import { AuthorityFixStream, AuthorityRewriter, H2RewriteError, normalizeAuthority } from '../../../src/api/h2-authority-fix';
import { FrameFlag, FrameType } from '../../../src/api/h2-frames';
import { HeaderField, HpackDecoder, HpackEncoder } from '../../../src/api/hpack';
import { Frame, PREFACE, clientSettings, data, frame, headers, parseFrames, ping, settingsAck, windowUpdate } from './h2-test-frames';

describe('normalizeAuthority', () => {
  test.each([
    ['http://127.0.0.1:2379', '127.0.0.1:2379'],
    ['https://etcd-0.example.com:2379', 'etcd-0.example.com:2379'],
    ['http://[::1]:2379/', '[::1]:2379'],
    ['http://10.0.0.1:2379/some/path?q#f', '10.0.0.1:2379'],
    ['http://user:pw@host:1', 'host:1'],
    ['unix://localhost:23790', 'localhost:23790'],
    ['unix:///var/run/etcd.sock', 'localhost'],
    ['127.0.0.1:2379', '127.0.0.1:2379'],
    ['localhost', 'localhost'],
    ['', ''],
  ])('%j → %j', (input, output) => {
    expect(normalizeAuthority(input)).toBe(output);
  });
});

function request(authority: string, path: string, extra: HeaderField[] = []): HeaderField[] {
  return [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: path },
    { name: ':authority', value: authority },
    { name: 'content-type', value: 'application/grpc' },
    { name: 'user-agent', value: 'grpc-go/1.26.0' },
    { name: 'te', value: 'trailers' },
    ...extra,
  ];
}

function pairs(fields: readonly HeaderField[]): [string, string][] {
  return fields.map((f) => [f.name, f.value]);
}

function fixed(fields: readonly HeaderField[]): [string, string][] {
  return fields.map((f) => [f.name, f.name === ':authority' ? normalizeAuthority(f.value) : f.value]);
}

/** Runs input through a rewriter in the given chunk sizes and returns everything it output. */
function rewrite(input: Buffer, chunk: number | undefined, strip = true): Buffer {
  const r = new AuthorityRewriter({ stripFirstSettingsAck: strip });
  const out: Buffer[] = [];
  const step = chunk ?? input.length;
  for (let pos = 0; pos < input.length; pos += step) out.push(...r.push(input.subarray(pos, pos + step)));
  return Buffer.concat(out);
}

/** Joins HEADERS + CONTINUATION frames into blocks (with the HEADERS frame kept), other frames as they are. */
interface Unit {
  frame: Frame;
  block?: Buffer;
}
function units(frames: Frame[]): Unit[] {
  const out: Unit[] = [];
  for (const f of frames) {
    if (f.type === FrameType.CONTINUATION) {
      const last = out[out.length - 1];
      if (last?.block === undefined) throw new Error('CONTINUATION without HEADERS');
      last.block = Buffer.concat([last.block, f.payload]);
      continue;
    }
    if (f.type === FrameType.HEADERS) {
      let start = 0;
      let end = f.payload.length;
      if ((f.flags & FrameFlag.PADDED) !== 0) {
        start = 1;
        end -= f.payload[0] ?? 0;
      }
      if ((f.flags & FrameFlag.PRIORITY) !== 0) start += 5;
      out.push({ frame: f, block: f.payload.subarray(start, end) });
    } else {
      out.push({ frame: f });
    }
  }
  return out;
}

describe('AuthorityRewriter', () => {
  const AUTH = 'http://127.0.0.1:2379';
  const client = new HpackEncoder({ huffman: true });
  const reqs = [
    request(AUTH, '/etcdserverpb.Maintenance/Status'),
    request(AUTH, '/etcdserverpb.KV/Put', [{ name: 'grpc-timeout', value: '4999m' }]),
    request(AUTH, '/etcdserverpb.KV/Range', [{ name: 'authorization', value: 'secret-token', indexing: 'never' }]),
    request(AUTH, '/etcdserverpb.KV/Range'),
  ];
  const blocks = reqs.map((r) => client.encode(r));
  const body = Buffer.from([0, 0, 0, 0, 3, 10, 1, 97]);
  const input = Buffer.concat([
    PREFACE,
    clientSettings(),
    windowUpdate(983041),
    settingsAck(), // answers the listener's SETTINGS: dropped
    headers(1, blocks[0]!),
    data(1, body, true),
    settingsAck(), // answers the server's SETTINGS: kept
    headers(3, blocks[1]!, { pad: 4 }),
    data(3, body, true),
    ping(),
    headers(5, blocks[2]!, { priority: { dependsOn: 3, weight: 200 }, pad: 2, splitAt: 6 }),
    data(5, body, true),
    headers(7, blocks[3]!, { endStream: true }),
    windowUpdate(100, 1),
  ]);

  test.each([
    ['whole', undefined],
    ['one byte at a time', 1],
    ['7-byte chunks', 7],
  ])('rewrites every request of a connection (%s)', (_name, chunk) => {
    const out = rewrite(input, chunk);
    expect(out.subarray(0, PREFACE.length).equals(PREFACE)).toBe(true);
    const got = units(parseFrames(out));
    const want = units(parseFrames(input));
    // The first SETTINGS ACK is gone; everything else is there in order.
    const ackIndex = want.findIndex((u) => u.frame.type === FrameType.SETTINGS && (u.frame.flags & FrameFlag.ACK) !== 0);
    want.splice(ackIndex, 1);
    expect(got.map((u) => [u.frame.type, u.frame.streamId])).toEqual(want.map((u) => [u.frame.type, u.frame.streamId]));

    const server = new HpackDecoder();
    let r = 0;
    got.forEach((u, i) => {
      const w = want[i]!;
      if (u.block === undefined) {
        expect(u.frame.flags).toBe(w.frame.flags);
        expect(u.frame.payload.equals(w.frame.payload)).toBe(true);
        return;
      }
      const fields = server.decode(u.block);
      expect(pairs(fields)).toEqual(fixed(reqs[r]!));
      // Sensitivity survives the rewrite.
      for (const f of fields) if (f.name === 'authorization') expect(f.indexing).toBe('never');
      r++;
      // END_STREAM and PRIORITY are kept, padding is dropped, the block fits one frame.
      const keep = FrameFlag.END_STREAM | FrameFlag.PRIORITY;
      expect(u.frame.flags).toBe((w.frame.flags & keep) | FrameFlag.END_HEADERS);
      if ((w.frame.flags & FrameFlag.PRIORITY) !== 0) {
        const wp = (w.frame.flags & FrameFlag.PADDED) !== 0 ? 1 : 0;
        expect(u.frame.payload.subarray(0, 5).equals(w.frame.payload.subarray(wp, wp + 5))).toBe(true);
      }
    });
    expect(r).toBe(reqs.length);
  });

  test('later requests reuse the server-side dynamic table (the rewritten authority is sent by index)', () => {
    const out = units(parseFrames(rewrite(input, undefined)));
    const hb = out.filter((u) => u.block !== undefined).map((u) => u.block!);
    expect(hb.length).toBe(4);
    // The last request repeats the first one's fields: every one is an indexed field (one octet each).
    expect(hb[3]!.length).toBe(reqs[3]!.length);
    expect([...hb[3]!].every((b) => (b & 0x80) !== 0)).toBe(true);
  });

  test('without stripping, every SETTINGS ACK passes', () => {
    const out = parseFrames(rewrite(input, 3, false));
    expect(out.filter((f) => f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) !== 0)).toHaveLength(2);
  });

  test('a block larger than the frame size is split into HEADERS + CONTINUATION', () => {
    const enc = new HpackEncoder({ huffman: true });
    const big = request(AUTH, '/x', [{ name: 'x-big', value: 'y'.repeat(40000), indexing: 'none' }]);
    const conn = Buffer.concat([PREFACE, headers(1, enc.encode(big), { splitAt: 10000, endStream: true })]);
    const frames = parseFrames(rewrite(conn, 4096));
    expect(frames.map((f) => f.type)).toEqual([FrameType.HEADERS, FrameType.CONTINUATION, FrameType.CONTINUATION]);
    for (const f of frames) expect(f.payload.length).toBeLessThanOrEqual(16384);
    expect(frames.map((f) => f.flags & FrameFlag.END_HEADERS)).toEqual([0, 0, FrameFlag.END_HEADERS]);
    expect(frames[0]!.flags & FrameFlag.END_STREAM).toBe(FrameFlag.END_STREAM);
    const fields = new HpackDecoder().decode(Buffer.concat(frames.map((f) => f.payload)));
    expect(pairs(fields)).toEqual(fixed(big));
  });

  test('follows the client encoder across dynamic table size updates', () => {
    const enc = new HpackEncoder({ huffman: true });
    const parts = [PREFACE];
    const sent: HeaderField[][] = [];
    for (let i = 0; i < 6; i++) {
      if (i === 2) enc.setMaxTableSize(0);
      if (i === 3) enc.setMaxTableSize(300);
      const r = request(`http://node-${i % 2}:2379`, `/p${i}`, [{ name: `x-${i}`, value: 'v'.repeat(i * 20) }]);
      sent.push(r);
      parts.push(headers(2 * i + 1, enc.encode(r), { endStream: true }));
    }
    const server = new HpackDecoder();
    const got = units(parseFrames(rewrite(Buffer.concat(parts), 5))).map((u) => pairs(server.decode(u.block!)));
    expect(got).toEqual(sent.map(fixed));
  });

  test.each([
    ['a DATA frame inside a header block', Buffer.concat([PREFACE, headers(1, Buffer.from([0x82, 0x86]), { splitAt: 1 }).subarray(0, 10), data(1, Buffer.alloc(1))]), /interrupted/],
    ['CONTINUATION without HEADERS', Buffer.concat([PREFACE, frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, Buffer.from([0x82]))]), /without a header block/],
    ['padding longer than the frame', Buffer.concat([PREFACE, frame(FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.PADDED, 1, Buffer.from([9, 0x82]))]), /padding/],
    ['a bad HPACK block', Buffer.concat([PREFACE, headers(1, Buffer.from([0x80]))]), /compression/],
    ['HEADERS on stream 0', Buffer.concat([PREFACE, headers(0, Buffer.from([0x82]))]), /stream 0/],
    ['a wrong preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'), /preface/],
  ])('%s is a connection error', (_name, conn, message) => {
    const r = new AuthorityRewriter({ stripFirstSettingsAck: true });
    expect(() => r.push(conn)).toThrow(H2RewriteError);
    expect(() => new AuthorityRewriter({ stripFirstSettingsAck: true }).push(conn)).toThrow(message);
  });
});

describe('AuthorityFixStream', () => {
  /** A connected pair of sockets on 127.0.0.1. */
  async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address() as net.AddressInfo;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(addr.port, '127.0.0.1');
    await new Promise<void>((r) => client.once('connect', () => r()));
    const serverSide = await accepted;
    return [client, serverSide, () => server.close()];
  }

  test('rewrites client → server, passes server → client, propagates end and close', async () => {
    const [client, serverSide, closeServer] = await socketPair();
    const clientGot: Buffer[] = [];
    client.on('data', (c: Buffer) => clientGot.push(c));
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    serverSide.pause();
    const enc = new HpackEncoder();
    const opening = Buffer.concat([PREFACE, clientSettings()]);
    const stream = new AuthorityFixStream(serverSide, opening, { stripFirstSettingsAck: true });
    const received: Buffer[] = [];
    stream.on('data', (c: Buffer) => received.push(c));
    const ended = new Promise<void>((r) => stream.once('end', () => r()));
    const streamClosed = new Promise<void>((r) => stream.once('close', () => r()));

    stream.write(Buffer.from('server-bytes'));
    client.write(Buffer.concat([settingsAck(), headers(1, enc.encode(request('http://127.0.0.1:1', '/a')), { endStream: true })]));
    client.end();
    await ended;

    const frames = parseFrames(Buffer.concat(received));
    expect(frames.map((f) => f.type)).toEqual([FrameType.SETTINGS, FrameType.HEADERS]);
    expect(pairs(new HpackDecoder().decode(frames[1]!.payload))).toEqual(fixed(request('http://127.0.0.1:1', '/a')));
    expect(stream.counters).toEqual({ headerBlocks: 1, authoritiesRewritten: 1 });

    stream.end();
    await clientClosed;
    await streamClosed;
    expect(Buffer.concat(clientGot).toString()).toBe('server-bytes');
    expect(serverSide.destroyed).toBe(true);
    closeServer();
  });

  test('a protocol violation destroys the stream and the socket', async () => {
    const [client, serverSide, closeServer] = await socketPair();
    serverSide.pause();
    const stream = new AuthorityFixStream(serverSide, PREFACE, { stripFirstSettingsAck: true });
    stream.resume();
    const err = new Promise<Error>((r) => stream.once('error', r));
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    client.on('error', () => undefined);
    client.write(frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, Buffer.from([0x82])));
    expect((await err).message).toMatch(/CONTINUATION without a header block/);
    await clientClosed;
    expect(serverSide.destroyed).toBe(true);
    closeServer();
  });
});
