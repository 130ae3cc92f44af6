/**
 * gRPC over the native HTTP/2 server, driven by a raw client: routing, statuses and their
 * percent-encoded messages, trailers-only answers, message framing rules (compression flag,
 * size limit, count), deadlines, metadata and request validation.
 */
import { FrameFlag, FrameType, H2Error } from '../../../src/api/h2/constants';
import { decodeGrpcMessage } from '../../../src/api/h2/grpc-codec';
import { RawH2Client, field, grpcMessage, splitMessages } from './raw-client';
import { TestServer, startTestServer } from './test-service';

let ts: TestServer | undefined;
const clients: RawH2Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await ts?.close();
  ts = undefined;
});

async function setup(opts: Parameters<typeof startTestServer>[0] = {}): Promise<{ s: TestServer; c: RawH2Client }> {
  ts = await startTestServer(opts);
  const c = await RawH2Client.connect(ts.port);
  clients.push(c);
  return { s: ts, c };
}

/** The status of a finished stream, from its trailers. */
function status(r: { trailers?: { name: string; value: string }[] }): { code: number; message: string } {
  return { code: Number(field(r.trailers, 'grpc-status')), message: decodeGrpcMessage(field(r.trailers, 'grpc-message') ?? '') };
}

test('an unknown method or service is UNIMPLEMENTED, as a trailers-only response', async () => {
  const { c } = await setup();
  c.request(1, '/test.Echo/Nope', Buffer.alloc(0));
  c.request(3, '/other.Svc/Call', Buffer.alloc(0));
  c.request(5, '/test.Echo/Missing', Buffer.alloc(0));
  const r1 = await c.response(1);
  expect(status(r1)).toEqual({ code: 12, message: 'unknown method Nope for service test.Echo' });
  expect(field(r1.trailers, ':status')).toBe('200');
  expect(field(r1.trailers, 'content-type')).toBe('application/grpc');
  expect(c.frames.filter((f) => f.streamId === 1 && f.type === FrameType.HEADERS)).toHaveLength(1);
  expect(status(await c.response(3))).toEqual({ code: 12, message: 'unknown service other.Svc' });
  expect(status(await c.response(5))).toEqual({ code: 12, message: 'unknown method Missing for service test.Echo' });
});

test('an error status: its message is percent-encoded in grpc-message', async () => {
  const { c } = await setup();
  c.request(1, '/test.Echo/Fail', Buffer.alloc(0));
  const r = await c.response(1);
  expect(field(r.trailers, 'grpc-message')).toBe('missing: %C3%BCn%C3%AFcode 100%25');
  expect(status(r)).toEqual({ code: 5, message: 'missing: ünïcode 100%' });
  expect(r.data.length).toBe(0);
});

test('a compressed message is UNIMPLEMENTED; a stream the client has not ended is then reset with NO_ERROR', async () => {
  const { c } = await setup();
  c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Unary')));
  c.send(c.dataFrame(1, grpcMessage(Buffer.from('zip'), true)));
  const r = await c.response(1);
  expect(status(r)).toEqual({ code: 12, message: 'compression not supported' });
  const rst = await c.waitFrame((f) => f.type === FrameType.RST_STREAM && f.streamId === 1);
  expect(rst.payload.readUInt32BE(0)).toBe(H2Error.NO_ERROR);
  // Late DATA on the reset stream is ignored; the connection goes on.
  c.send(c.dataFrame(1, Buffer.from('late'), true));
  c.request(3, '/test.Echo/Unary', Buffer.from('ok'));
  expect(splitMessages((await c.response(3)).data)).toEqual([Buffer.from('ok')]);
});

test('a message over the receive limit is RESOURCE_EXHAUSTED, seen from its length prefix', async () => {
  const { c } = await setup({ maxReceiveMessageLength: 1000 });
  c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Unary')));
  c.send(c.dataFrame(1, grpcMessage(Buffer.alloc(1001)).subarray(0, 100)));
  const r = await c.response(1);
  expect(status(r)).toEqual({ code: 8, message: 'grpc: received message larger than max (1001 vs. 1000)' });
  c.request(3, '/test.Echo/Unary', Buffer.alloc(1000, 1));
  expect(splitMessages((await c.response(3)).data)[0]!.length).toBe(1000);
});

test('an undecodable request is INTERNAL', async () => {
  const { c } = await setup();
  c.request(1, '/test.Echo/Strict', Buffer.from([0xff, 1]));
  const r = await c.response(1);
  expect(status(r)).toEqual({ code: 13, message: 'grpc: error unmarshalling request: invalid wire type' });
});

test('a unary call with no message or two messages is INTERNAL', async () => {
  const { c } = await setup();
  c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Unary'), { endStream: true }));
  expect(status(await c.response(1)).code).toBe(13);
  c.send(c.headersFrames(3, RawH2Client.requestFields('/test.Echo/Unary')));
  c.send(c.dataFrame(3, Buffer.concat([grpcMessage(Buffer.from('a')), grpcMessage(Buffer.from('b'))]), true));
  expect(status(await c.response(3)).code).toBe(13);
});

test('a message cut short by END_STREAM is INTERNAL', async () => {
  const { c } = await setup();
  c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
  c.send(c.dataFrame(1, grpcMessage(Buffer.from('abcdef')).subarray(0, 8), true));
  expect(status(await c.response(1)).code).toBe(13);
});

test('grpc-timeout: the call ends with DEADLINE_EXCEEDED and the handler sees the cancellation', async () => {
  const { c, s } = await setup();
  const t0 = Date.now();
  c.request(1, '/test.Echo/Hang', Buffer.alloc(0), [{ name: 'grpc-timeout', value: '150m' }]);
  const r = await c.response(1);
  const took = Date.now() - t0;
  expect(status(r)).toEqual({ code: 4, message: 'Deadline exceeded' });
  expect(took).toBeGreaterThanOrEqual(140);
  expect(took).toBeLessThan(1000);
  expect(s.observed.cancelled).toBe(1);
  expect(s.observed.hung[0]!.cancelled).toBe(true);
  // A call that answers in time is not affected by its deadline.
  c.request(3, '/test.Echo/Unary', Buffer.from('fast'), [{ name: 'grpc-timeout', value: '1S' }]);
  expect(status(await c.response(3)).code).toBe(0);
  expect(s.server.deadlines.size).toBe(0);
});

test('a malformed grpc-timeout is INTERNAL', async () => {
  const { c } = await setup();
  c.request(1, '/test.Echo/Unary', Buffer.from('x'), [{ name: 'grpc-timeout', value: '10x' }]);
  expect(status(await c.response(1)).code).toBe(13);
});

test('custom headers reach the handler as metadata; any :authority is accepted', async () => {
  const { c, s } = await setup();
  c.request(1, '/test.Echo/Unary', Buffer.from('md'), [
    { name: 'x-test', value: 'one' },
    { name: 'x-test', value: 'two' },
  ]);
  await c.response(1);
  expect(s.observed.lastMetadata).toEqual(['one', 'two']);
});

test('a method other than POST is reset with PROTOCOL_ERROR; a non-gRPC content-type gets HTTP 415', async () => {
  const { c } = await setup();
  const get = RawH2Client.requestFields('/test.Echo/Unary').map((f) => (f.name === ':method' ? { name: ':method', value: 'GET' } : f));
  c.send(c.headersFrames(1, get, { endStream: true }));
  const r1 = await c.response(1);
  expect(r1.rst).toBe(H2Error.PROTOCOL_ERROR);
  const json = RawH2Client.requestFields('/test.Echo/Unary').map((f) => (f.name === 'content-type' ? { name: 'content-type', value: 'application/json' } : f));
  c.send(c.headersFrames(3, json, { endStream: true }));
  const r3 = await c.response(3);
  expect(field(r3.trailers, ':status')).toBe('415');
  expect(status(r3).code).toBe(13);
  const plus = RawH2Client.requestFields('/test.Echo/Unary').map((f) => (f.name === 'content-type' ? { name: 'content-type', value: 'application/grpc+proto' } : f));
  c.send(Buffer.concat([c.headersFrames(5, plus), c.dataFrame(5, grpcMessage(Buffer.from('p')), true)]));
  expect(status(await c.response(5)).code).toBe(0);
});

test('trailers from the client end its side of a bidi stream', async () => {
  const { c, s } = await setup();
  c.send(c.headersFrames(1, RawH2Client.requestFields('/test.Echo/Bidi')));
  c.send(c.dataFrame(1, grpcMessage(Buffer.from('m'))));
  c.send(c.headersFrames(1, [{ name: 'x-trailer', value: '1' }], { endStream: true }));
  const r = await c.response(1);
  expect(splitMessages(r.data)).toEqual([Buffer.from('m')]);
  expect(s.observed.bidiEnded).toBe(1);
  expect(r.rst).toBeUndefined();
});

test('many concurrent streams on one connection, answered in one batch', async () => {
  const { c } = await setup();
  const n = 500;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const id = 1 + 2 * i;
    parts.push(c.headersFrames(id, RawH2Client.requestFields('/test.Echo/Unary')), c.dataFrame(id, grpcMessage(Buffer.from(String(i))), true));
  }
  c.send(Buffer.concat(parts));
  for (let i = 0; i < n; i++) {
    const r = await c.response(1 + 2 * i);
    expect(splitMessages(r.data)[0]!.toString()).toBe(String(i));
  }
  const endFlags = c.frames.filter((f) => f.type === FrameType.HEADERS && (f.flags & FrameFlag.END_STREAM) !== 0);
  expect(endFlags).toHaveLength(n);
});
