/**
 * The native HTTP/2 server at the frame level, driven by a raw client: preface and SETTINGS,
 * PING, CONTINUATION, padding, flow control both ways, SETTINGS changes, RST_STREAM, GOAWAY and
 * connection errors.
 */
import { FrameFlag, FrameType, H2Error, Setting } from '../../../src/api/h2/constants';
import { RawH2Client, field, frame, grpcMessage, settingsPayload, splitMessages } from './raw-client';
import { TestServer, startTestServer } from './test-service';

let ts: TestServer | undefined;
const clients: RawH2Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await ts?.close();
  ts = undefined;
});

async function setup(opts: Parameters<typeof startTestServer>[0] = {}, settings: [number, number][] = []): Promise<{ s: TestServer; c: RawH2Client }> {
  ts = await startTestServer(opts);
  const c = await RawH2Client.connect(ts.port, settings);
  clients.push(c);
  return { s: ts, c };
}

function goAwayOf(c: RawH2Client): { lastStreamId: number; code: number; debug: string } | undefined {
  const g = c.ofType(FrameType.GOAWAY)[0];
  if (g === undefined) return undefined;
  return { lastStreamId: g.payload.readUInt32BE(0), code: g.payload.readUInt32BE(4), debug: g.payload.subarray(8).toString() };
}

async function expectGoAway(c: RawH2Client, code: number): Promise<void> {
  await c.waitFrame((f) => f.type === FrameType.GOAWAY);
  expect(goAwayOf(c)?.code).toBe(code);
  await c.waitClosed();
}

describe('connection start', () => {
  test('the server sends SETTINGS first, raises the connection window and acknowledges ours', async () => {
    const { c } = await setup({ initialWindowSize: 1 << 20, connectionWindowSize: 1 << 24, maxConcurrentStreams: 50 });
    await c.waitFrame((f) => f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) !== 0);
    const first = c.frames[0]!;
    expect(first.type).toBe(FrameType.SETTINGS);
    expect(first.flags).toBe(0);
    const params = new Map<number, number>();
    for (let i = 0; i < first.payload.length; i += 6) params.set(first.payload.readUInt16BE(i), first.payload.readUInt32BE(i + 2));
    expect(params.get(Setting.INITIAL_WINDOW_SIZE)).toBe(1 << 20);
    expect(params.get(Setting.MAX_CONCURRENT_STREAMS)).toBe(50);
    const wu = await c.waitFrame((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    expect(wu.payload.readUInt32BE(0)).toBe((1 << 24) - 65535);
  });

  test('a first frame other than SETTINGS is a PROTOCOL_ERROR', async () => {
    ts = await startTestServer();
    const c = await RawH2Client.connect(ts.port, [], false);
    clients.push(c);
    c.send(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });

  test('the preface may arrive in pieces', async () => {
    ts = await startTestServer();
    const c = await RawH2Client.connect(ts.port, [], false);
    clients.push(c);
    c.autoAck = false; // nothing may precede the preface
    const all = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FrameType.SETTINGS, 0, 0)]);
    for (let i = 0; i < all.length; i++) {
      c.send(all.subarray(i, i + 1));
      await new Promise((r) => setImmediate(r));
    }
    c.request(1, '/test.Echo/Unary', Buffer.from('hi'));
    const r = await c.response(1);
    expect(splitMessages(r.data)).toEqual([Buffer.from('hi')]);
  });
});

describe('requests and responses', () => {
  test('a unary call: headers, one message, trailers; later responses use indexed fields', async () => {
    const { c } = await setup();
    c.request(1, '/test.Echo/Unary', Buffer.from('hello'));
    const r1 = await c.response(1);
    expect(field(r1.headers, ':status')).toBe('200');
    expect(field(r1.headers, 'content-type')).toBe('application/grpc');
    expect(splitMessages(r1.data)).toEqual([Buffer.from('hello')]);
    expect(field(r1.trailers, 'grpc-status')).toBe('0');
    expect(field(r1.trailers, 'grpc-message')).toBeUndefined();
    expect(r1.rst).toBeUndefined();
    c.request(3, '/test.Echo/Unary', Buffer.from('again'));
    const r2 = await c.response(3);
    expect(splitMessages(r2.data)).toEqual([Buffer.from('again')]);
    const h = c.frames.filter((f) => f.type === FrameType.HEADERS && f.streamId === 3);
    expect(h.map((f) => f.payload.length)).toEqual([2, 1]);
  });

  test('PING is answered with an ACK carrying the same octets', async () => {
    const { c } = await setup();
    c.send(frame(FrameType.PING, 0, 0, Buffer.from('abcdefgh')));
    const ack = await c.waitFrame((f) => f.type === FrameType.PING);
    expect(ack.flags).toBe(FrameFlag.ACK);
    expect(ack.payload.toString()).toBe('abcdefgh');
  });

  test('a header block split over CONTINUATION frames, with padding and priority', async () => {
    const { c } = await setup();
    const fields = RawH2Client.requestFields('/test.Echo/Unary', [{ name: 'x-test', value: 'v'.repeat(300) }]);
    c.send(c.headersFrames(1, fields, { splitAt: 7, pad: 5, priority: true }));
    c.send(c.dataFrame(1, grpcMessage(Buffer.from('cont')), true, 9));
    const r = await c.response(1);
    expect(splitMessages(r.data)).toEqual([Buffer.from('cont')]);
    expect(ts!.observed.lastMetadata).toEqual(['v'.repeat(300)]);
  });

  test('another frame inside a header block is a PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    const hf = c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Unary'), { splitAt: 4 });
    c.send(hf.subarray(0, 9 + 4)); // HEADERS without END_HEADERS
    c.send(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });

  test('padding longer than the DATA payload is a PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Unary')));
    c.send(frame(FrameType.DATA, FrameFlag.PADDED, 1, Buffer.from([4, 1, 2, 3])));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });

  test('messages split across DATA frames and several messages in one frame', async () => {
    const { c } = await setup();
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
    const msgs = [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(40000, 7), Buffer.from('four')];
    const wire = Buffer.concat(msgs.map((m) => grpcMessage(m)));
    // First the bytes one or a few at a time, then the rest in one frame.
    let pos = 0;
    for (const n of [1, 1, 1, 2, 3, 7, 11]) {
      c.send(c.dataFrame(1, wire.subarray(pos, pos + n)));
      pos += n;
    }
    while (wire.length - pos > 16000) {
      c.send(c.dataFrame(1, wire.subarray(pos, pos + 16000)));
      pos += 16000;
    }
    c.send(c.dataFrame(1, wire.subarray(pos), true));
    const r = await c.response(1);
    expect(splitMessages(r.data)).toEqual(msgs);
    expect(field(r.trailers, 'grpc-status')).toBe('0');
    expect(ts!.observed.bidiEnded).toBe(1);
  });

  test('a header block too big for one frame is sent with CONTINUATION', async () => {
    const { c } = await setup();
    // The Fail status message is short; make a long one with a long unknown method path.
    const path = `/test.Echo/${'m'.repeat(40000)}`;
    c.send(c.headersFrames(1, RawH2Client.requestFields(path), { splitAt: 16000, endStream: true }));
    const r = await c.response(1);
    expect(field(r.trailers, 'grpc-status')).toBe('12');
    expect(c.frames.some((f) => f.type === FrameType.CONTINUATION && f.streamId === 1)).toBe(true);
  });
});

describe('flow control of what the server sends', () => {
  test('DATA stops at the stream window and resumes on WINDOW_UPDATE; trailers come last', async () => {
    const { c } = await setup({}, [[Setting.INITIAL_WINDOW_SIZE, 100]]);
    c.request(1, '/test.Echo/Size', Buffer.from('1000'));
    await c.waitFrame((f) => f.type === FrameType.DATA && f.streamId === 1);
    await new Promise((r) => setTimeout(r, 50));
    const sent = (): number => c.frames.filter((f) => f.type === FrameType.DATA && f.streamId === 1).reduce((n, f) => n + f.payload.length, 0);
    expect(sent()).toBe(100);
    expect(c.frames.some((f) => f.type === FrameType.HEADERS && (f.flags & FrameFlag.END_STREAM) !== 0)).toBe(false);
    c.windowUpdate(1, 500);
    await c.waitFrame(() => sent() === 600);
    c.windowUpdate(1, 10000);
    const r = await c.response(1);
    expect(splitMessages(r.data)).toEqual([Buffer.alloc(1000, 'x')]);
    expect(field(r.trailers, 'grpc-status')).toBe('0');
  });

  test('DATA stops at the connection window', async () => {
    const { c } = await setup({}, [[Setting.INITIAL_WINDOW_SIZE, 1 << 20]]);
    c.request(1, '/test.Echo/Size', Buffer.from('100000'));
    await c.waitFrame((f) => f.type === FrameType.DATA);
    await new Promise((r) => setTimeout(r, 50));
    const sent = (): number => c.ofType(FrameType.DATA).reduce((n, f) => n + f.payload.length, 0);
    expect(sent()).toBe(65535);
    c.windowUpdate(0, 50000);
    const r = await c.response(1);
    expect(splitMessages(r.data)[0]!.length).toBe(100000);
  });

  test('a larger SETTINGS_INITIAL_WINDOW_SIZE reopens a stalled stream', async () => {
    const { c } = await setup({}, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    c.request(1, '/test.Echo/Size', Buffer.from('3000'));
    await c.waitFrame((f) => f.type === FrameType.HEADERS && f.streamId === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.ofType(FrameType.DATA)).toHaveLength(0);
    c.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.INITIAL_WINDOW_SIZE, 65535]])));
    const r = await c.response(1);
    expect(splitMessages(r.data)[0]!.length).toBe(3000);
  });

  test('DATA frames honour the peer SETTINGS_MAX_FRAME_SIZE', async () => {
    const { c } = await setup({}, [
      [Setting.INITIAL_WINDOW_SIZE, 1 << 20],
      [Setting.MAX_FRAME_SIZE, 20000],
    ]);
    c.windowUpdate(0, 1 << 20);
    c.request(1, '/test.Echo/Size', Buffer.from('50000'));
    const r = await c.response(1);
    const sizes = c.ofType(FrameType.DATA).map((f) => f.payload.length);
    expect(Math.max(...sizes)).toBe(20000);
    expect(splitMessages(r.data)[0]!.length).toBe(50000);
  });

  test('a slow reader: write() answers false and drain comes once the client opens its window', async () => {
    const { c } = await setup({ streamHighWaterMark: 1000 }, [[Setting.INITIAL_WINDOW_SIZE, 500]]);
    c.request(1, '/test.Echo/Stream', Buffer.from('20,400'));
    await c.waitFrame((f) => f.type === FrameType.DATA);
    await new Promise((r) => setTimeout(r, 50));
    const st = ts!.observed.streams[0]!;
    expect(st.falses).toBe(1);
    expect(st.drains).toBe(0);
    expect(st.done).toBe(false);
    for (let i = 0; i < 40 && !st.done; i++) {
      c.windowUpdate(1, 1000);
      await new Promise((r) => setTimeout(r, 10));
    }
    c.windowUpdate(1, 100000);
    const r = await c.response(1);
    expect(st.done).toBe(true);
    expect(st.drains).toBe(st.falses);
    expect(st.falses).toBeGreaterThan(1);
    const msgs = splitMessages(r.data);
    expect(msgs).toHaveLength(20);
    msgs.forEach((m, i) => expect(m).toEqual(Buffer.alloc(400, i)));
  });

  test('a WINDOW_UPDATE that overflows the connection window is a FLOW_CONTROL_ERROR', async () => {
    const { c } = await setup();
    c.windowUpdate(0, 0x7fffffff);
    await expectGoAway(c, H2Error.FLOW_CONTROL_ERROR);
  });

  test('a WINDOW_UPDATE of 0 on a stream resets it with PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    c.request(1, '/test.Echo/Hang', Buffer.alloc(0));
    await new Promise((r) => setTimeout(r, 20));
    c.windowUpdate(1, 0);
    const rst = await c.waitFrame((f) => f.type === FrameType.RST_STREAM);
    expect(rst.payload.readUInt32BE(0)).toBe(H2Error.PROTOCOL_ERROR);
    expect(ts!.observed.cancelled).toBe(1);
  });
});

describe('flow control of what the server receives', () => {
  test('the server refills stream and connection windows as it consumes data', async () => {
    const { c } = await setup({ initialWindowSize: 65535, connectionWindowSize: 65535 });
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
    const msg = grpcMessage(Buffer.alloc(16000, 1));
    for (let i = 0; i < 3; i++) c.send(c.dataFrame(1, msg));
    const wuStream = await c.waitFrame((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 1);
    const wuConn = await c.waitFrame((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === 0);
    expect(wuStream.payload.readUInt32BE(0)).toBe(3 * msg.length);
    expect(wuConn.payload.readUInt32BE(0)).toBe(3 * msg.length);
    // The refilled windows let the client go on well past 64 KiB in total.
    for (let i = 0; i < 5; i++) c.send(c.dataFrame(1, msg));
    c.send(c.dataFrame(1, Buffer.alloc(0), true));
    c.windowUpdate(1, 1 << 20);
    c.windowUpdate(0, 1 << 20);
    const r = await c.response(1);
    expect(splitMessages(r.data)).toHaveLength(8);
  });

  test('DATA beyond the stream window resets the stream with FLOW_CONTROL_ERROR', async () => {
    const { c } = await setup({ initialWindowSize: 1000, connectionWindowSize: 1 << 20 });
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
    c.send(c.dataFrame(1, Buffer.alloc(1001)));
    const rst = await c.waitFrame((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
    expect(rst.payload.readUInt32BE(0)).toBe(H2Error.FLOW_CONTROL_ERROR);
    expect(ts!.observed.bidiClosed).toBe(1);
  });

  test('DATA beyond the connection window is a FLOW_CONTROL_ERROR', async () => {
    const { c } = await setup({ initialWindowSize: 1 << 20, connectionWindowSize: 65535, maxFrameSize: 100000 });
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
    c.send(c.dataFrame(1, Buffer.alloc(65536)));
    await expectGoAway(c, H2Error.FLOW_CONTROL_ERROR);
  });
});

describe('SETTINGS changes', () => {
  test('HEADER_TABLE_SIZE 0: the encoder announces the size and stops indexing', async () => {
    const { c } = await setup({}, [[Setting.HEADER_TABLE_SIZE, 0]]);
    c.request(1, '/test.Echo/Unary', Buffer.from('a'));
    await c.response(1);
    c.request(3, '/test.Echo/Unary', Buffer.from('b'));
    const r = await c.response(3);
    expect(field(r.headers, 'content-type')).toBe('application/grpc');
    const first = c.frames.find((f) => f.type === FrameType.HEADERS && f.streamId === 1)!;
    expect(first.payload[0]).toBe(0x20); // dynamic table size update to 0
    expect(c.decoder.table.length).toBe(0);
    const later = c.frames.filter((f) => f.type === FrameType.HEADERS && f.streamId === 3);
    expect(later[0]!.payload.length).toBeGreaterThan(2);
  });

  test('an invalid MAX_FRAME_SIZE is a PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    c.send(frame(FrameType.SETTINGS, 0, 0, settingsPayload([[Setting.MAX_FRAME_SIZE, 100]])));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });

  test('a SETTINGS payload that is not a multiple of 6 is a FRAME_SIZE_ERROR', async () => {
    const { c } = await setup();
    c.send(frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(5)));
    await expectGoAway(c, H2Error.FRAME_SIZE_ERROR);
  });
});

describe('streams', () => {
  test('RST_STREAM from the client cancels the call', async () => {
    const { c, s } = await setup();
    c.request(1, '/test.Echo/Hang', Buffer.alloc(0));
    await new Promise((r) => setTimeout(r, 30));
    expect(s.observed.hung).toHaveLength(1);
    c.rst(1, H2Error.CANCEL);
    await new Promise((r) => setTimeout(r, 30));
    expect(s.observed.cancelled).toBe(1);
    expect(s.observed.hung[0]!.cancelled).toBe(true);
    // The connection goes on.
    c.request(3, '/test.Echo/Unary', Buffer.from('after'));
    expect(splitMessages((await c.response(3)).data)).toEqual([Buffer.from('after')]);
  });

  test('streams beyond MAX_CONCURRENT_STREAMS are refused', async () => {
    const { c } = await setup({ maxConcurrentStreams: 2 });
    for (const id of [1, 3, 5]) c.request(id, '/test.Echo/Hang', Buffer.alloc(0));
    const rst = await c.waitFrame((f) => f.type === FrameType.RST_STREAM);
    expect(rst.streamId).toBe(5);
    expect(rst.payload.readUInt32BE(0)).toBe(H2Error.REFUSED_STREAM);
  });

  test('a stream id lower than one already used is ignored; an even id is a PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    c.request(5, '/test.Echo/Unary', Buffer.from('5'));
    await c.response(5);
    c.request(3, '/test.Echo/Unary', Buffer.from('3'));
    c.request(7, '/test.Echo/Unary', Buffer.from('7'));
    await c.response(7);
    expect(c.frames.some((f) => f.streamId === 3)).toBe(false);
    c.request(8, '/test.Echo/Unary', Buffer.from('8'));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });

  test('the server resets a stream the client keeps sending on after the response', async () => {
    const { c } = await setup();
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Fail')));
    c.send(c.dataFrame(1, grpcMessage(Buffer.from('x')))); // no END_STREAM
    // Fail answers at END_STREAM only for unary calls, so end it and look at the order.
    c.send(c.dataFrame(1, Buffer.alloc(0), true));
    const r = await c.response(1);
    expect(field(r.trailers, 'grpc-status')).toBe('5');
    expect(r.rst).toBeUndefined();
  });

  test('DATA on an idle stream is a PROTOCOL_ERROR', async () => {
    const { c } = await setup();
    c.send(c.dataFrame(9, Buffer.from('x')));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
  });
});

describe('connection errors and GOAWAY', () => {
  test.each([
    ['DATA on stream 0', (): Buffer => frame(FrameType.DATA, 0, 0, Buffer.alloc(1)), H2Error.PROTOCOL_ERROR],
    ['a frame over the maximum frame size', (): Buffer => frame(FrameType.DATA, 0, 1, Buffer.alloc(16385)), H2Error.FRAME_SIZE_ERROR],
    ['a PING of 7 octets', (): Buffer => frame(FrameType.PING, 0, 0, Buffer.alloc(7)), H2Error.FRAME_SIZE_ERROR],
    ['PUSH_PROMISE', (): Buffer => frame(FrameType.PUSH_PROMISE, 0, 1, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
    ['a connection WINDOW_UPDATE of 0', (): Buffer => frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
    ['a bad HPACK block', (): Buffer => frame(FrameType.HEADERS, FrameFlag.END_HEADERS, 1, Buffer.from([0x80])), H2Error.COMPRESSION_ERROR],
    ['CONTINUATION without HEADERS', (): Buffer => frame(FrameType.CONTINUATION, FrameFlag.END_HEADERS, 1, Buffer.alloc(1)), H2Error.PROTOCOL_ERROR],
    ['RST_STREAM on an idle stream', (): Buffer => frame(FrameType.RST_STREAM, 0, 11, Buffer.alloc(4)), H2Error.PROTOCOL_ERROR],
  ])('%s ends the connection with GOAWAY', async (_name, make, code) => {
    const { c } = await setup();
    c.send(make());
    await expectGoAway(c, code);
  });

  test('a connection error cancels the open calls', async () => {
    const { c, s } = await setup();
    c.request(1, '/test.Echo/Hang', Buffer.alloc(0));
    await new Promise((r) => setTimeout(r, 20));
    c.send(frame(FrameType.DATA, 0, 0, Buffer.alloc(1)));
    await expectGoAway(c, H2Error.PROTOCOL_ERROR);
    expect(goAwayOf(c)?.lastStreamId).toBe(1);
    expect(s.observed.cancelled).toBe(1);
  });

  test('shutdown: GOAWAY(NO_ERROR), open calls finish, new streams are refused, then the connection closes', async () => {
    const { c, s } = await setup();
    c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
    c.send(c.dataFrame(1, grpcMessage(Buffer.from('first'))));
    await c.waitFrame((f) => f.type === FrameType.DATA && f.streamId === 1);
    let done = false;
    s.server.tryShutdown(() => {
      done = true;
    });
    await c.waitFrame((f) => f.type === FrameType.GOAWAY);
    expect(goAwayOf(c)).toEqual({ lastStreamId: 1, code: H2Error.NO_ERROR, debug: '' });
    c.request(3, '/test.Echo/Unary', Buffer.from('late'));
    const refused = await c.waitFrame((f) => f.type === FrameType.RST_STREAM && f.streamId === 3);
    expect(refused.payload.readUInt32BE(0)).toBe(H2Error.REFUSED_STREAM);
    // The open stream still works.
    c.send(c.dataFrame(1, grpcMessage(Buffer.from('second')), true));
    const r = await c.response(1);
    expect(splitMessages(r.data)).toEqual([Buffer.from('first'), Buffer.from('second')]);
    await c.waitClosed();
    await new Promise((r2) => setTimeout(r2, 20));
    expect(done).toBe(true);
  });

  test('a client GOAWAY: the connection closes once its streams are done', async () => {
    const { c } = await setup();
    c.request(1, '/test.Echo/Unary', Buffer.from('x'));
    await c.response(1);
    c.send(frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(8)));
    await c.waitClosed();
  });
});
