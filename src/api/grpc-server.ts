/**
 * The gRPC front end. Services are registered from the loaded .proto definitions with our own
 * (de)serializers: requests decode with protobufjs; handlers may answer with a pre-encoded Buffer
 * (hot paths) or a plain object encoded by protobufjs. Methods without a handler answer
 * UNIMPLEMENTED.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { protoRoot } from './proto';
import { GrpcServerMetrics, grpcType } from './grpc-metrics';
import { H2GrpcServer } from './h2/server';

/** A handler map for one service: method name → grpc-js handler. */
export type Handlers = Record<string, grpc.UntypedHandleCall>;

function serializerFor(t: protobuf.Type): (v: unknown) => Buffer {
  return (v: unknown) => {
    if (Buffer.isBuffer(v)) return v;
    const bytes = t.encode(v as Record<string, unknown>).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializerFor(t: protobuf.Type): (b: Buffer) => unknown {
  return (b: Buffer) => t.decode(b);
}

/** Builds a grpc-js service definition for a service of the loaded protos (e.g. "etcdserverpb.KV"). */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const svc = protoRoot().lookupService(fullName);
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[m.name] = {
      path: `/${fullName}/${m.name}`,
      requestStream: m.requestStream === true,
      responseStream: m.responseStream === true,
      requestSerialize: serializerFor(req),
      requestDeserialize: deserializerFor(req),
      responseSerialize: serializerFor(res),
      responseDeserialize: deserializerFor(res),
      originalName: m.name,
    };
  }
  return def;
}

/** Every service a member serves (handlers may be empty: those methods answer UNIMPLEMENTED). */
export const SERVICES = [
  'etcdserverpb.KV',
  'etcdserverpb.Watch',
  'etcdserverpb.Lease',
  'etcdserverpb.Cluster',
  'etcdserverpb.Maintenance',
  'etcdserverpb.Auth',
  'v3lockpb.Lock',
  'v3electionpb.Election',
] as const;

/** What the front end asks of the member before passing a call on (etcd's interceptors). */
export interface CallGuard {
  /** True when the member knows a leader. */
  hasLeader(): boolean;
  /** True when the member is a learner. */
  isLearner(): boolean;
  /** Election timeout in ms (a stream that requires a leader ends after 3 without one). */
  electionMs: number;
}

/** Options of the gRPC server. */
export interface GrpcOptions {
  /** Largest request accepted, in bytes (etcd: --max-request-bytes + 512 KiB). */
  maxReceiveBytes: number;
  /** Leader and learner checks; none when absent. */
  guard?: CallGuard;
  /** Counts started and handled calls (inside the guard, as etcd's interceptor order); none when absent. */
  metrics?: GrpcServerMetrics;
  /** Told each registered method's full path ("/etcdserverpb.KV/Range") and final handler (for in-process callers). */
  onRegister?: (path: string, handler: grpc.UntypedHandleCall) => void;
}

const NO_LEADER = { code: grpc.status.UNAVAILABLE, details: 'etcdserver: no leader' };
const LEARNER = { code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: rpc not supported for learner' };

function requiresLeader(md: grpc.Metadata): boolean {
  return md.get('hasleader')[0] === 'true';
}

/**
 * Wraps a handler with etcd's interceptor rules: with metadata hasleader=true a call fails with
 * "etcdserver: no leader" while there is none (a stream ends after 3 election timeouts without one);
 * a learner serves only Status, serializable Range (checked by the KV service) and Snapshot.
 */
function guarded(path: string, h: grpc.UntypedHandleCall, g: CallGuard): grpc.UntypedHandleCall {
  const learnerOk = path === '/etcdserverpb.Maintenance/Status' || path === '/etcdserverpb.Maintenance/Snapshot' || path === '/etcdserverpb.KV/Range';
  const fn = h as (call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, cb?: grpc.sendUnaryData<unknown>) => void;
  return ((call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerDuplexStream<unknown, unknown>, cb?: grpc.sendUnaryData<unknown>) => {
    const fail = (st: { code: grpc.status; details: string }): void => {
      if (cb !== undefined) cb(st);
      else call.emit('error', st);
    };
    if (!learnerOk && g.isLearner()) return fail(LEARNER);
    if (requiresLeader(call.metadata)) {
      if (!g.hasLeader()) return fail(NO_LEADER);
      if (cb === undefined) {
        let lostAt = 0;
        const t = setInterval(() => {
          if (g.hasLeader()) lostAt = 0;
          else if (lostAt === 0) lostAt = Date.now();
          else if (Date.now() - lostAt >= 3 * g.electionMs) {
            clearInterval(t);
            fail(NO_LEADER);
          }
        }, Math.max(50, g.electionMs / 2));
        t.unref();
        call.on('close', () => clearInterval(t));
        call.on('cancelled', () => clearInterval(t));
      }
    }
    fn(call, cb);
  }) as grpc.UntypedHandleCall;
}

/** Where services are registered: a grpc-js Server or the native H2GrpcServer. */
export interface ServiceSink {
  addService(service: grpc.ServiceDefinition, implementation: Handlers): void;
}

/** Creates a grpc-js server with the given handlers registered; services not in `handlers` answer UNIMPLEMENTED. */
export function createGrpcServer(handlers: Partial<Record<string, Handlers>>, opts: GrpcOptions): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxReceiveBytes,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  registerServices(server, handlers, opts);
  return server;
}

/** Creates the native gRPC server (see ./h2) with the given handlers registered, as createGrpcServer. */
export function createNativeGrpcServer(handlers: Partial<Record<string, Handlers>>, opts: GrpcOptions): H2GrpcServer {
  const server = new H2GrpcServer({ maxReceiveMessageLength: opts.maxReceiveBytes });
  registerServices(server, handlers, opts);
  return server;
}

/** Registers the handlers of every known service in `server`, wrapped in metrics and guard. */
export function registerServices(server: ServiceSink, handlers: Partial<Record<string, Handlers>>, opts: GrpcOptions): void {
  for (const name of [...SERVICES, 'grpc.health.v1.Health']) {
    const h = handlers[name];
    if (h === undefined) continue;
    const g = opts.guard;
    const wrapped: Handlers = {};
    const def = serviceDefinition(name);
    const m = opts.metrics;
    if (m !== undefined) for (const [method, d] of Object.entries(def)) m.initMethod(name, method, grpcType(d.requestStream, d.responseStream));
    for (const [method, fn] of Object.entries(h)) {
      const d = def[method];
      const counted = m === undefined || d === undefined ? fn : m.instrument(name, method, grpcType(d.requestStream, d.responseStream), fn);
      const final = g === undefined ? counted : guarded(`/${name}/${method}`, counted, g);
      wrapped[method] = final;
      opts.onRegister?.(`/${name}/${method}`, final);
    }
    server.addService(def, wrapped);
  }
}

/** Binds the server to host:port; resolves with the bound port. */
export function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err !== null) reject(err);
      else resolve(bound);
    });
  });
}
