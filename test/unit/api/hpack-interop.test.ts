/**
 * Our HPACK codec against an independent implementation, nghttp2 inside Node's HTTP/2: header
 * blocks Node's client sends are decoded by our decoder, and blocks our encoder makes are decoded
 * by Node's server. The values are chosen so that each of the 224 octets allowed in a header
 * value is Huffman-coded (common letters around it make the Huffman form the shorter one), so
 * every one of those codes is checked in both directions, with the dynamic tables in play.
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { FrameFlag, FrameType, emptySettingsFrame } from '../../../src/api/h2-frames';
import { HeaderField, HpackDecoder, HpackEncoder } from '../../../src/api/hpack';
import { PREFACE, frame, headers, parseFrames } from './h2-test-frames';

/** Octets Node accepts in a header value: HTAB, SP..~, 0x80..0xff. */
const SYMBOLS = [0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
const PAD = 'a'.repeat(20);

/** The test headers, in batches of at most 60 per request: x-s<octet> = PAD + octet + PAD. */
function batches(): [string, string][][] {
  const all = SYMBOLS.map((s): [string, string] => [`x-s${s}`, PAD + String.fromCharCode(s) + PAD]);
  const out: [string, string][][] = [];
  for (let i = 0; i < all.length; i += 60) out.push(all.slice(i, i + 60));
  return out;
}

test('there are 224 octets to check', () => {
  expect(SYMBOLS).toHaveLength(224);
});

test('our decoder reads what nghttp2 encodes (Huffman, dynamic table)', async () => {
  const sent = batches();
  const decoded: [string, string][][] = [];
  let huffmanBlocks = 0;
  const sink = net.createServer((socket) => {
    let buf = Buffer.alloc(0);
    const dec = new HpackDecoder();
    let pos = PREFACE.length;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (pos + 9 <= buf.length) {
        const len = buf.readUIntBE(pos, 3);
        if (pos + 9 + len > buf.length) break;
        const [f] = parseFrames(buf.subarray(pos, pos + 9 + len), false);
        pos += 9 + len;
        if (f === undefined || f.type !== FrameType.HEADERS) continue;
        expect(f.flags & FrameFlag.END_HEADERS).toBe(FrameFlag.END_HEADERS);
        // Every test field is new to the tables, so a block smaller than the fields' raw text means
        // the values went Huffman-coded.
        const rawText = sent[decoded.length]!.reduce((n, [k, v]) => n + k.length + v.length, 0);
        if (f.payload.length < rawText) huffmanBlocks++;
        decoded.push(dec.decode(f.payload).filter((h) => h.name.startsWith('x-s')).map((h): [string, string] => [h.name, h.value]));
      }
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const port = (sink.address() as net.AddressInfo).port;
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  for (const b of sent) {
    const req = session.request({ ':path': '/', ...Object.fromEntries(b) });
    req.on('error', () => undefined);
  }
  const deadline = Date.now() + 5000;
  while (decoded.length < sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  session.destroy();
  sink.close();
  expect(decoded).toEqual(sent);
  expect(huffmanBlocks).toBe(sent.length);
});

test('nghttp2 reads what our encoder produces (Huffman, dynamic table)', async () => {
  const sent = batches();
  const received: [string, string][][] = [];
  const server = http2.createServer();
  server.on('stream', (stream, hdrs) => {
    received.push(Object.entries(hdrs).filter(([k]) => k.startsWith('x-s')).map(([k, v]): [string, string] => [k, String(v)]));
    stream.respond({ ':status': 200 });
    stream.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const enc = new HpackEncoder({ huffman: true });
  const out: Buffer[] = [PREFACE, emptySettingsFrame(), frame(FrameType.SETTINGS, FrameFlag.ACK, 0)];
  sent.forEach((b, i) => {
    const fields: HeaderField[] = [
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: '/' },
      { name: ':authority', value: `127.0.0.1:${port}` },
      ...b.map(([name, value]) => ({ name, value })),
    ];
    out.push(headers(2 * i + 1, enc.encode(fields), { endStream: true }));
  });
  // Each request twice: the second time every field is sent by dynamic table index.
  sent.forEach((b, i) => {
    const fields: HeaderField[] = [
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: '/' },
      { name: ':authority', value: `127.0.0.1:${port}` },
      ...b.map(([name, value]) => ({ name, value })),
    ];
    out.push(headers(2 * (sent.length + i) + 1, enc.encode(fields), { endStream: true }));
  });
  socket.write(Buffer.concat(out));
  const deadline = Date.now() + 5000;
  while (received.length < 2 * sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  expect(received).toEqual([...sent, ...sent]);
});
