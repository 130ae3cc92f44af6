/**
 * A test service for the native server (messages are raw bytes) and a helper that serves it on
 * a free 127.0.0.1 port.
 *
 * Methods of /test.Echo:
 * - Unary: answers the request bytes.
 * - Size: answers a message of N octets (N = the request as a decimal string), filled with 'x'.
 * - Fail: fails with NOT_FOUND and details "missing: ünïcode 100%".
 * - Hang: never answers (for deadlines and cancellation); records the call.
 * - Missing: registered without a handler (UNIMPLEMENTED).
 * - Strict: as Unary, but its deserializer refuses messages starting with 0xff.
 * - Stream (server-streaming): request "count,size"; writes `count` messages of `size` octets,
 *   waiting for 'drain' whenever write() answers false, then ends.
 * - Bidi: echoes every message; ends when the client half-closes.
 */
import * as grpc from '@grpc/grpc-js';
import * as net from 'node:net';
import type { ServerCall } from '../../../src/api/h2/call';
import { H2GrpcServer, H2ServerOptions } from '../../../src/api/h2/server';

const identity = (b: Buffer): Buffer => b;

/** Refuses messages starting with 0xff, as a protobuf decoder refuses garbage. */
function strictDeserialize(b: Buffer): Buffer {
  if (b[0] === 0xff) throw new Error('invalid wire type');
  return b;
}

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: name,
  };
}

/** The service definition (grpc-js shape). */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  Size: method('Size', false, false),
  Fail: method('Fail', false, false),
  Hang: method('Hang', false, false),
  Missing: method('Missing', false, false),
  Strict: { ...method('Strict', false, false), requestDeserialize: strictDeserialize },
  Stream: method('Stream', false, true),
  Bidi: method('Bidi', true, true),
};

/** What the handlers observed, for assertions. */
export interface Observed {
  /** Calls of Hang, in arrival order. */
  hung: ServerCall[];
  /** Events of Hang calls: "cancelled" per cancellation. */
  cancelled: number;
  /** Per Stream call: how often write() answered false and how many 'drain' events came. */
  streams: { falses: number; drains: number; done: boolean }[];
  /** Metadata value "x-test" of the last Unary call. */
  lastMetadata: unknown[];
  /** Bidi calls that saw 'end'. */
  bidiEnded: number;
  /** Bidi calls that saw 'close'. */
  bidiClosed: number;
}

/** A running test server. */
export interface TestServer {
  server: H2GrpcServer;
  port: number;
  observed: Observed;
  close(): Promise<void>;
}

type Unary = (call: ServerCall, cb: (err: unknown, value?: unknown) => void) => void;
type Streaming = (call: ServerCall) => void;

/** Starts the test service on a free port. */
export async function startTestServer(opts: H2ServerOptions = {}): Promise<TestServer> {
  const server = new H2GrpcServer(opts);
  const observed: Observed = { hung: [], cancelled: 0, streams: [], lastMetadata: [], bidiEnded: 0, bidiClosed: 0 };
  const unary: Record<string, Unary> = {
    Unary: (call, cb) => {
      observed.lastMetadata = call.metadata.get('x-test');
      cb(null, call.request);
    },
    Size: (call, cb) => cb(null, Buffer.alloc(Number((call.request as Buffer).toString()), 'x')),
    Strict: (call, cb) => cb(null, call.request),
    Fail: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'missing: ünïcode 100%' }),
    Hang: (call) => {
      observed.hung.push(call);
      call.on('cancelled', () => observed.cancelled++);
    },
  };
  const streaming: Record<string, Streaming> = {
    Stream: (call) => {
      const [count, size] = (call.request as Buffer).toString().split(',').map(Number) as [number, number];
      const st = { falses: 0, drains: 0, done: false };
      observed.streams.push(st);
      let sent = 0;
      const pump = (): void => {
        while (sent < count) {
          const msg = Buffer.alloc(size, sent % 256);
          sent++;
          if (!call.write(msg)) {
            st.falses++;
            call.once('drain', () => {
              st.drains++;
              pump();
            });
            return;
          }
        }
        st.done = true;
        call.end();
      };
      pump();
    },
    Bidi: (call) => {
      call.on('data', (m: Buffer) => call.write(m));
      call.on('end', () => {
        observed.bidiEnded++;
        call.end();
      });
      call.on('close', () => observed.bidiClosed++);
    },
  };
  server.addService(ECHO_SERVICE, { ...unary, ...streaming } as unknown as Record<string, grpc.UntypedHandleCall>);
  const listener = net.createServer((s) => server.injectConnection(s));
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const addr = listener.address() as net.AddressInfo;
  return {
    server,
    port: addr.port,
    observed,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        listener.close(() => resolve());
      }),
  };
}
