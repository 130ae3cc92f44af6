/**
 * The gRPC front end. Services are registered from the loaded .proto definitions with our own
 * (de)serializers: requests decode with protobufjs; handlers may answer with a pre-encoded Buffer
 * (hot paths) or a plain object encoded by protobufjs. Methods without a handler answer
 * UNIMPLEMENTED.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { protoRoot } from './proto';

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

/** Options of the gRPC server. */
export interface GrpcOptions {
  /** Largest request accepted, in bytes (etcd: --max-request-bytes + 512 KiB). */
  maxReceiveBytes: number;
}

/** Creates a server with the given handlers registered; services not in `handlers` answer UNIMPLEMENTED. */
export function createGrpcServer(handlers: Partial<Record<string, Handlers>>, opts: GrpcOptions): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxReceiveBytes,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5000,
  });
  for (const name of [...SERVICES, 'grpc.health.v1.Health']) {
    const h = handlers[name];
    if (h === undefined) continue;
    server.addService(serviceDefinition(name), h);
  }
  return server;
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
