/**
 * The client listener with the native gRPC server: HTTP/2 connections (any `:authority`) reach
 * H2GrpcServer with the octets the listener already read, HTTP/1.x requests on the same port
 * still reach the HTTP/1 server, and stop() ends the gRPC connections with GOAWAY.
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import { ClientListener } from '../../../src/api/client-listener';
import { FrameType, H2Error } from '../../../src/api/h2/constants';
import { H2GrpcServer } from '../../../src/api/h2/server';
import { RawH2Client, field, splitMessages } from './raw-client';
import { ECHO_SERVICE } from './test-service';

let listener: ClientListener | undefined;
let server: H2GrpcServer;
const clients: RawH2Client[] = [];

beforeEach(async () => {
  server = new H2GrpcServer();
  const echo = (call: { request: unknown }, cb: (err: unknown, v?: unknown) => void): void => cb(null, call.request);
  server.addService(ECHO_SERVICE, { Unary: echo } as unknown as Record<string, grpc.UntypedHandleCall>);
  listener = new ClientListener({ host: '127.0.0.1', port: 0, grpcServer: server });
  await listener.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await listener?.stop(200);
  server.forceShutdown();
});

test('a raw HTTP/2 client with a URL as :authority is served', async () => {
  const c = await RawH2Client.connect(listener!.port);
  clients.push(c);
  c.request(1, '/test.Echo/Unary', Buffer.from('through the listener'));
  const r = await c.response(1);
  expect(field(r.trailers, 'grpc-status')).toBe('0');
  expect(splitMessages(r.data)).toEqual([Buffer.from('through the listener')]);
  // The listener sent no SETTINGS of its own: the first frame is the server's, with its settings.
  expect(c.frames[0]!.type).toBe(FrameType.SETTINGS);
  expect(c.frames[0]!.payload.length).toBeGreaterThan(0);
  expect(listener!.stats.h2).toBe(1);
});

test('a grpc-js client is served', async () => {
  const Echo = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
  const client = new Echo(`127.0.0.1:${listener!.port}`, grpc.credentials.createInsecure());
  try {
    const res = await new Promise<Buffer>((resolve, reject) =>
      (client as unknown as Record<string, (r: Buffer, cb: (e: Error | null, v: Buffer) => void) => void>).Unary!(Buffer.from('hi'), (e, v) => (e ? reject(e) : resolve(v))),
    );
    expect(res.toString()).toBe('hi');
  } finally {
    client.close();
  }
});

test('HTTP/1.x on the same port still gets the HTTP/1 answer', async () => {
  const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: listener!.port, path: '/nope' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on('error', reject);
  });
  expect(body).toEqual({ status: 404, text: '404 page not found\n' });
  expect(listener!.stats.http1).toBe(1);
});

test('stop() sends GOAWAY(NO_ERROR) to the gRPC connections', async () => {
  const c = await RawH2Client.connect(listener!.port);
  clients.push(c);
  c.request(1, '/test.Echo/Unary', Buffer.from('x'));
  await c.response(1);
  const stopped = listener!.stop(1000);
  const g = await c.waitFrame((f) => f.type === FrameType.GOAWAY);
  expect(g.payload.readUInt32BE(0)).toBe(1);
  expect(g.payload.readUInt32BE(4)).toBe(H2Error.NO_ERROR);
  await c.waitClosed();
  await stopped;
  listener = undefined;
});
