/**
 * The native gRPC server against a real gRPC client library (grpc-js): messages of several MiB
 * in both directions (beyond every flow-control window), thousands of concurrent calls, a client
 * that stops reading (server-side backpressure), cancellation, deadlines and keepalive pings.
 */
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import { FrameType } from '../../src/api/h2/constants';
import { ECHO_SERVICE, Observed, TestServer, startTestServer } from '../unit/h2/test-service';

let ts: TestServer;
const clients: grpc.Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await ts.close();
});

const Echo = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');

function client(opts: grpc.ClientOptions = {}): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const c = new Echo(`127.0.0.1:${ts.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    ...opts,
  });
  clients.push(c);
  return c as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
}

function unary(c: ReturnType<typeof client>, method: string, req: Buffer, deadlineMs = 20000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    c[method]!(req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Buffer) => (err ? reject(err) : resolve(res)));
  });
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('messages of several MiB both ways, beyond the stream and connection windows', async () => {
  ts = await startTestServer({ maxReceiveMessageLength: 32 * 1024 * 1024, initialWindowSize: 256 * 1024, connectionWindowSize: 1024 * 1024 });
  const c = client();
  for (const size of [3 * 1024 * 1024 + 17, 9 * 1024 * 1024]) {
    const req = pattern(size, size & 0xff);
    const res = await unary(c, 'Unary', req);
    expect(res.length).toBe(size);
    expect(res.equals(req)).toBe(true);
  }
  // Several big calls at once share the connection window.
  const reqs = [1, 2, 3, 4].map((i) => pattern(2 * 1024 * 1024 + i, i));
  const res = await Promise.all(reqs.map((r) => unary(c, 'Unary', r)));
  res.forEach((r, i) => expect(r.equals(reqs[i]!)).toBe(true));
}, 60000);

test('a message over the receive limit fails with RESOURCE_EXHAUSTED and the connection goes on', async () => {
  ts = await startTestServer({ maxReceiveMessageLength: 1024 * 1024 });
  const c = client();
  await expect(unary(c, 'Unary', Buffer.alloc(3 * 1024 * 1024))).rejects.toMatchObject({
    code: grpc.status.RESOURCE_EXHAUSTED,
    details: `grpc: received message larger than max (${3 * 1024 * 1024} vs. ${1024 * 1024})`,
  });
  expect((await unary(c, 'Unary', Buffer.from('still here'))).toString()).toBe('still here');
}, 30000);

test('thousands of concurrent unary calls and many bidi streams on one connection', async () => {
  ts = await startTestServer();
  const c = client();
  const calls = Array.from({ length: 3000 }, (_v, i) => unary(c, 'Unary', Buffer.from(`m${i}`)));
  const streams = Array.from({ length: 50 }, (_v, s) =>
    new Promise<string[]>((resolve, reject) => {
      const call = c.makeBidiStreamRequest('/test.Echo/Bidi', (b: Buffer) => b, (b: Buffer) => b);
      const got: string[] = [];
      call.on('data', (b: Buffer) => got.push(b.toString()));
      call.on('error', reject);
      call.on('end', () => resolve(got));
      for (let i = 0; i < 40; i++) call.write(Buffer.from(`${s}:${i}`));
      call.end();
    }),
  );
  const res = await Promise.all(calls);
  res.forEach((r, i) => expect(r.toString()).toBe(`m${i}`));
  const st = await Promise.all(streams);
  st.forEach((got, s) => expect(got).toEqual(Array.from({ length: 40 }, (_v, i) => `${s}:${i}`)));
  expect(ts.server.connectionCount).toBe(1);
}, 60000);

test('a client that stops reading: write() answers false, drain comes after it resumes, nothing is lost', async () => {
  ts = await startTestServer({ streamHighWaterMark: 64 * 1024 });
  const c = client();
  const count = 400;
  const size = 16 * 1024; // 6.4 MiB in all, far beyond the client's windows
  const call = c.makeServerStreamRequest('/test.Echo/Stream', (b: Buffer) => b, (b: Buffer) => b, Buffer.from(`${count},${size}`));
  const got: Buffer[] = [];
  const ended = new Promise<void>((resolve, reject) => {
    call.on('end', resolve);
    call.on('error', reject);
  });
  call.on('data', (b: Buffer) => {
    got.push(b);
    if (got.length === 5) {
      call.pause();
      setTimeout(() => call.resume(), 500);
    }
  });
  await new Promise((r) => setTimeout(r, 300));
  const st: Observed['streams'][number] = ts.observed.streams[0]!;
  // The server is blocked on backpressure while the client does not read.
  expect(st.falses).toBeGreaterThanOrEqual(1);
  expect(st.done).toBe(false);
  await ended;
  expect(st.done).toBe(true);
  expect(st.drains).toBe(st.falses);
  expect(got).toHaveLength(count);
  got.forEach((m, i) => expect(m.equals(Buffer.alloc(size, i % 256))).toBe(true));
}, 30000);

test('client cancellation reaches the handler as cancelled', async () => {
  ts = await startTestServer();
  const c = client();
  const call = c.makeUnaryRequest('/test.Echo/Hang', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('x'), () => undefined);
  while (ts.observed.hung.length === 0) await new Promise((r) => setTimeout(r, 10));
  call.cancel();
  while (ts.observed.cancelled === 0) await new Promise((r) => setTimeout(r, 10));
  expect(ts.observed.hung[0]!.cancelled).toBe(true);
  // A cancelled server stream: the handler's writes stop mattering, the connection goes on.
  const s = c.makeServerStreamRequest('/test.Echo/Stream', (b: Buffer) => b, (b: Buffer) => b, Buffer.from('100000,1000'));
  s.on('error', () => undefined);
  await new Promise<void>((resolve) => s.once('data', () => resolve()));
  s.cancel();
  expect((await unary(c, 'Unary', Buffer.from('after'))).toString()).toBe('after');
}, 30000);

test('a deadline ends the call on both sides', async () => {
  ts = await startTestServer();
  const c = client();
  const t0 = Date.now();
  await expect(unary(c, 'Hang', Buffer.from('x'), 300)).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  while (ts.observed.cancelled === 0) await new Promise((r) => setTimeout(r, 10));
  expect(ts.observed.hung[0]!.cancelled).toBe(true);
  expect(ts.server.deadlines.size).toBe(0);
}, 30000);

test('keepalive pings from the client are answered and the connection stays up', async () => {
  ts = await startTestServer();
  // Count the client's PING frames on the server side by watching the raw bytes.
  let pings = 0;
  const sockets: net.Socket[] = [];
  const proxy = net.createServer((down) => {
    const up = net.connect(ts.port, '127.0.0.1');
    sockets.push(down, up);
    let buf = Buffer.alloc(0);
    let preface = 24;
    down.on('data', (chunk: Buffer) => {
      up.write(chunk);
      buf = Buffer.concat([buf, chunk]);
      if (preface > 0) {
        const n = Math.min(preface, buf.length);
        buf = buf.subarray(n);
        preface -= n;
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        if (buf[3] === FrameType.PING && (buf[4]! & 1) === 0) pings++;
        buf = buf.subarray(9 + len);
      }
    });
    up.on('data', (d: Buffer) => down.write(d));
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as net.AddressInfo).port;
  const c = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.keepalive_time_ms': 100,
    'grpc.keepalive_timeout_ms': 1000,
    'grpc.keepalive_permit_without_calls': 1,
  }) as unknown as grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  clients.push(c);
  try {
    expect((await unary(c, 'Unary', Buffer.from('1'))).toString()).toBe('1');
    await new Promise((r) => setTimeout(r, 1500));
    expect(pings).toBeGreaterThanOrEqual(5);
    expect((await unary(c, 'Unary', Buffer.from('2'))).toString()).toBe('2');
    expect(ts.server.connectionCount).toBe(1);
  } finally {
    c.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => proxy.close(() => r()));
  }
}, 30000);
