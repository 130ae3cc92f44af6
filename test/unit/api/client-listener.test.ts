/**
 * The client listener in process, on a real port with a real grpc-js server behind it: plain gRPC
 * clients, clients that send a URL as :authority (grpc-js with an overridden authority, Node's
 * HTTP/2 client, and a hand-written client that sends one byte at a time), HTTP/1.1 on the same
 * port, the time limit, and stop().
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { ClientListener } from '../../../src/api/client-listener';
import { FrameFlag, FrameType } from '../../../src/api/h2-frames';
import { HpackDecoder, HpackEncoder } from '../../../src/api/hpack';
import { Frame, PREFACE, clientSettings, data, headers, settingsAck } from './h2-test-frames';

const passthrough = (b: Buffer): Buffer => b;
const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
};

/** Echo answers "<authority the server saw>|<request>". */
function echoServer(): grpc.Server {
  const server = new grpc.Server();
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      cb(null, Buffer.from(`${call.getHost()}|${call.request.toString()}`));
    },
  });
  return server;
}

function echo(client: grpc.Client, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>('/test.Echo/Echo', passthrough, passthrough, Buffer.from(text), (err, res) => {
      if (err !== null || res === undefined) reject(err ?? new Error('no response'));
      else resolve(res.toString());
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

let grpcServer: grpc.Server;
let listener: ClientListener;
let port: number;
const clients: grpc.Client[] = [];

function newClient(options: grpc.ChannelOptions = {}): grpc.Client {
  const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  clients.push(c);
  return c;
}

beforeEach(async () => {
  grpcServer = echoServer();
  listener = new ClientListener({ host: '127.0.0.1', port: 0, grpcServer, sniffTimeoutMs: 300 });
  port = await listener.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await listener.stop(100);
  grpcServer.forceShutdown();
});

test('a plain gRPC client is served on the raw path', async () => {
  const c = newClient();
  for (let i = 0; i < 3; i++) expect(await echo(c, `m${i}`)).toBe(`127.0.0.1:${port}|m${i}`);
  expect(listener.stats).toEqual({ http1: 0, h2: 1, h2Rewritten: 0, abandoned: 0 });
});

test('a gRPC client sending "http://host:port" as authority is served, many requests on one connection', async () => {
  const c = newClient({ 'grpc.default_authority': `http://127.0.0.1:${port}` });
  for (let i = 0; i < 5; i++) expect(await echo(c, `seq${i}`)).toBe(`127.0.0.1:${port}|seq${i}`);
  const parallel = await Promise.all([...Array(20).keys()].map((i) => echo(c, `par${i}`)));
  expect(parallel).toEqual([...Array(20).keys()].map((i) => `127.0.0.1:${port}|par${i}`));
  expect(listener.stats).toEqual({ http1: 0, h2: 0, h2Rewritten: 1, abandoned: 0 });
});

test('Node HTTP/2 clients (requests sent before the server preface arrives) on both paths', async () => {
  for (const authority of [`127.0.0.1:${port}`, `http://127.0.0.1:${port}`]) {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const call = (i: number): Promise<{ status: string; body: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/test.Echo/Echo',
          ':authority': authority,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        const msg = Buffer.from(`n${i}`);
        const frameHead = Buffer.alloc(5);
        frameHead.writeUInt32BE(msg.length, 1);
        req.end(Buffer.concat([frameHead, msg]));
        const chunks: Buffer[] = [];
        req.on('data', (d: Buffer) => chunks.push(d));
        let status = '';
        req.on('trailers', (t) => (status = String(t['grpc-status'])));
        req.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
        req.on('error', reject);
      });
    for (let i = 0; i < 3; i++) {
      const r = await call(i);
      expect(r.status).toBe('0');
      expect(r.body.subarray(5).toString()).toBe(`127.0.0.1:${port}|n${i}`);
    }
    session.close();
  }
  expect(listener.stats).toEqual({ http1: 0, h2: 1, h2Rewritten: 1, abandoned: 0 });
});

/** Reads frames from a raw socket. */
class FrameReader {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async next(): Promise<Frame> {
    for (;;) {
      if (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length >= 9 + len) {
          const f = { type: this.buf[3] ?? 0, flags: this.buf[4] ?? 0, streamId: this.buf.readUInt32BE(5) & 0x7fffffff, payload: this.buf.subarray(9, 9 + len) };
          this.buf = this.buf.subarray(9 + len);
          return f;
        }
      }
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

test('a hand-written HTTP/2 client writing one byte at a time, with a URL authority', async () => {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const reader = new FrameReader(socket);
  const writeSlowly = async (b: Buffer): Promise<void> => {
    for (const byte of b) {
      socket.write(Buffer.from([byte]));
      await sleep(1);
    }
  };
  await writeSlowly(Buffer.concat([PREFACE, clientSettings()]));
  // Our listener answers the preface at once with an empty SETTINGS frame.
  const first = await reader.next();
  expect([first.type, first.flags, first.payload.length]).toEqual([FrameType.SETTINGS, 0, 0]);
  const enc = new HpackEncoder();
  const msg = Buffer.from('slow');
  const body = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
  const request = (stream: number): Buffer =>
    Buffer.concat([
      headers(
        stream,
        enc.encode([
          { name: ':method', value: 'POST' },
          { name: ':scheme', value: 'http' },
          { name: ':path', value: '/test.Echo/Echo' },
          { name: ':authority', value: `http://127.0.0.1:${port}` },
          { name: 'content-type', value: 'application/grpc' },
          { name: 'te', value: 'trailers' },
        ]),
      ),
      data(stream, body, true),
    ]);
  await writeSlowly(Buffer.concat([settingsAck(), request(1)]));
  socket.write(request(3));

  const dec = new HpackDecoder();
  const results = new Map<number, { status?: string; body: Buffer; grpcStatus?: string }>();
  let acks = 0;
  while ([...results.values()].filter((r) => r.grpcStatus !== undefined).length < 2) {
    const f = await reader.next();
    if (f.type === FrameType.SETTINGS) {
      if ((f.flags & FrameFlag.ACK) !== 0) acks++;
      else socket.write(settingsAck());
      continue;
    }
    const r = results.get(f.streamId) ?? { body: Buffer.alloc(0) };
    results.set(f.streamId, r);
    if (f.type === FrameType.HEADERS) {
      for (const h of dec.decode(f.payload)) {
        if (h.name === ':status') r.status = h.value;
        if (h.name === 'grpc-status') r.grpcStatus = h.value;
      }
    } else if (f.type === FrameType.DATA) {
      r.body = Buffer.concat([r.body, f.payload]);
    }
  }
  socket.destroy();
  // The server acknowledged our SETTINGS once; our ACK of the listener's SETTINGS never reached it.
  expect(acks).toBe(1);
  for (const id of [1, 3]) {
    const r = results.get(id);
    expect(r?.status).toBe('200');
    expect(r?.grpcStatus).toBe('0');
    expect(r?.body.subarray(5).toString()).toBe(`127.0.0.1:${port}|slow`);
  }
  expect(listener.stats.h2Rewritten).toBe(1);
});

describe('HTTP/1.1 on the same port', () => {
  test('answers 404 like etcd for unknown paths by default, keep-alive works', async () => {
    const r = await httpGet(port, '/no-such-path');
    expect(r.status).toBe(404);
    expect(r.body).toBe('404 page not found\n');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['x-content-type-options']).toBe('nosniff');

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: `/k${i}`, agent }, (res) => {
          expect(res.statusCode).toBe(404);
          res.resume();
          res.on('end', () => resolve());
        }).on('error', reject);
      });
    }
    agent.destroy();
    expect(listener.stats.http1).toBe(2);
  });

  test('an injected http.Server gets the connections; gRPC still works beside it', async () => {
    await listener.stop(0);
    const h1 = http.createServer((req, res) => res.end(`hello ${req.url ?? ''}`));
    listener = new ClientListener({ host: '127.0.0.1', port: 0, grpcServer, http1: h1 });
    port = await listener.start();
    const r = await httpGet(port, '/health');
    expect([r.status, r.body]).toEqual([200, 'hello /health']);
    expect(await echo(newClient(), 'x')).toBe(`127.0.0.1:${port}|x`);
    h1.close();
  });

  test("Node's header timeout applies to handed-over connections", async () => {
    await listener.stop(0);
    const h1 = http.createServer({ headersTimeout: 200, requestTimeout: 200, connectionsCheckingInterval: 50 }, (_req, res) => res.end('late'));
    listener = new ClientListener({ host: '127.0.0.1', port: 0, grpcServer, http1: h1 });
    port = await listener.start();
    const socket = net.connect(port, '127.0.0.1');
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write('GET / HTTP/1.1\r\nHost: a\r\n');
    await closed;
    expect(response).toMatch(/^HTTP\/1\.1 408 Request Timeout/);
    h1.close();
  });

  test('a request written one byte at a time', async () => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise<void>((r) => socket.once('connect', () => r()));
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    for (const ch of 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi') {
      socket.write(ch);
      await sleep(1);
    }
    await closed;
    expect(response).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(response.endsWith('404 page not found\n')).toBe(true);
  });

  test('a connection silent past the time limit goes to the HTTP/1 server, which still answers', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((r) => socket.once('connect', () => r()));
    await sleep(500);
    expect(listener.stats.http1).toBe(1);
    let response = '';
    socket.on('data', (d: Buffer) => (response += d.toString()));
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await closed;
    expect(response).toMatch(/^HTTP\/1\.1 404/);
  });
});

test('a client that leaves before it is classified is counted and cleaned up', async () => {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.end(PREFACE.subarray(0, 5));
  await sleep(100);
  expect(listener.stats).toEqual({ http1: 0, h2: 0, h2Rewritten: 0, abandoned: 1 });
});

test('stop() closes the port and every connection', async () => {
  const c = newClient();
  expect(await echo(c, 'before')).toBe(`127.0.0.1:${port}|before`);
  const idle = net.connect(port, '127.0.0.1');
  const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));
  idle.on('error', () => undefined);
  await new Promise<void>((r) => idle.once('connect', () => r()));
  await listener.stop(200);
  await idleClosed;
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  expect(refused).toBe(true);
  await expect(echo(c, 'after')).rejects.toBeDefined();
});
