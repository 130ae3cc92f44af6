/**
 * gRPC clients for the chaos runner, built from the project's .proto files with
 * @grpc/proto-loader (as any Node client of etcd would be): KV, Lease, Watch, Cluster and
 * Maintenance, with promise-returning unary calls and a deadline on every call.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KvRecord, OpError, WatchEvent } from '../../src/check/history';

/** The repository root (the nearest ancestor of this file holding package.json). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'proto'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root from ' + __dirname);
    dir = up;
  }
}

/** Untyped message objects as proto-loader produces them (keepCase, longs and enums as strings). */
export type Msg = Record<string, unknown>;

type Ctor = grpc.ServiceClientConstructor;
let services: Record<string, Ctor> | undefined;

function service(name: 'KV' | 'Lease' | 'Watch' | 'Cluster' | 'Maintenance'): Ctor {
  if (services === undefined) {
    const def = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
      includeDirs: [path.join(repoRoot(), 'proto')],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, Ctor> };
    services = pkg.etcdserverpb;
  }
  const c = services[name];
  if (c === undefined) throw new Error(`service etcdserverpb.${name} not found in the protos`);
  return c;
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
  'grpc.max_receive_message_length': 256 * 1024 * 1024,
  'grpc.use_local_subchannel_pool': 1,
};

/** An error from a call, with its gRPC code and message. */
export class CallFailure extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code} ${details}`);
  }
}

function toFailure(e: unknown): CallFailure {
  const err = e as Partial<grpc.ServiceError>;
  return new CallFailure(typeof err.code === 'number' ? err.code : grpc.status.UNKNOWN, typeof err.details === 'string' ? err.details : String(e));
}

/**
 * Whether an error is a definite failure (the operation did not take effect): etcd's validation
 * and precondition errors, and grpc-js refusing to send at all because no connection exists.
 * Timeouts, lost connections, "leader changed" and everything else are indeterminate.
 */
export function isDefiniteFailure(f: CallFailure): boolean {
  switch (f.code) {
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.NOT_FOUND:
    case grpc.status.ALREADY_EXISTS:
    case grpc.status.PERMISSION_DENIED:
    case grpc.status.RESOURCE_EXHAUSTED:
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.OUT_OF_RANGE:
    case grpc.status.UNIMPLEMENTED:
    case grpc.status.UNAUTHENTICATED:
      return true;
    case grpc.status.UNAVAILABLE:
      return f.details.startsWith('No connection established');
    default:
      return false;
  }
}

/** The error as recorded in a history. */
export function opError(f: CallFailure): OpError {
  return { code: f.code, message: f.details };
}

/** A connection to one member with unary calls on every service. */
export class EtcdClient {
  private readonly clients = new Map<string, grpc.Client>();

  constructor(readonly endpoint: string) {}

  private client(svc: 'KV' | 'Lease' | 'Cluster' | 'Maintenance' | 'Watch'): grpc.Client {
    let c = this.clients.get(svc);
    if (c === undefined) {
      const C = service(svc);
      c = new C(this.endpoint, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
      this.clients.set(svc, c);
    }
    return c;
  }

  /** Calls `svc.method` with a deadline; rejects with a CallFailure. */
  call(svc: 'KV' | 'Lease' | 'Cluster' | 'Maintenance', method: string, req: Msg, deadlineMs: number): Promise<Msg> {
    const c = this.client(svc);
    const fn = (c as unknown as Record<string, (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void) => void>)[method];
    if (fn === undefined) return Promise.reject(new CallFailure(grpc.status.UNIMPLEMENTED, `no method ${svc}.${method}`));
    return new Promise((resolve, reject) => {
      fn.call(c, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
        if (err) reject(toFailure(err));
        else resolve(res ?? {});
      });
    });
  }

  /** Opens a Watch stream; `requireLeader` adds etcd's hasleader metadata. */
  watchStream(requireLeader: boolean): grpc.ClientDuplexStream<Msg, Msg> {
    const c = this.client('Watch');
    const md = new grpc.Metadata();
    if (requireLeader) md.set('hasleader', 'true');
    const fn = (c as unknown as Record<string, (md: grpc.Metadata) => grpc.ClientDuplexStream<Msg, Msg>>)['Watch']!;
    return fn.call(c, md);
  }

  /** Closes every channel. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Reads an int64 field given as a string (or number). */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return 0;
}

/** Reads a uint64/int64 id as a decimal string. */
export function idString(v: unknown): string {
  if (typeof v === 'string' && v !== '') return BigInt.asUintN(64, BigInt(v)).toString();
  if (typeof v === 'number') return BigInt.asUintN(64, BigInt(v)).toString();
  return '0';
}

function text(v: unknown): string {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  return typeof v === 'string' ? v : '';
}

/** A mvccpb.KeyValue as a KvRecord. */
export function kvRecord(m: unknown): KvRecord {
  const o = (m ?? {}) as Msg;
  return {
    key: text(o.key),
    value: text(o.value),
    createRevision: num(o.create_revision),
    modRevision: num(o.mod_revision),
    version: num(o.version),
    lease: idString(o.lease),
  };
}

/** A mvccpb.Event as a WatchEvent. */
export function watchEvent(m: unknown): WatchEvent {
  const o = (m ?? {}) as Msg;
  const type = o.type === 'DELETE' || o.type === 1 ? 'delete' : 'put';
  const prev = o.prev_kv;
  const hasPrev = prev !== null && prev !== undefined && text((prev as Msg).key) !== '';
  return hasPrev ? { type, kv: kvRecord(o.kv), prevKv: kvRecord(prev) } : { type, kv: kvRecord(o.kv) };
}

/** The header revision of a response. */
export function headerRevision(m: Msg): number {
  return num((m.header as Msg | undefined)?.revision);
}

/** A string as the bytes etcd stores (latin1: our keys and values are ASCII). */
export function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}
