/**
 * A gRPC client for tests, built from our .proto files with @grpc/proto-loader (as any Node client
 * of etcd would be), plus a raw client that sends arbitrary bytes to any method.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import { ROOT } from './harness';

const PROTO = path.join(ROOT, 'proto');

const def = protoLoader.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'], {
  includeDirs: [PROTO],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def) as unknown as {
  etcdserverpb: Record<string, grpc.ServiceClientConstructor>;
};

/** Untyped message objects as proto-loader produces them. */
export type Msg = Record<string, unknown>;

/** An error from a call, with its gRPC code and message. */
export interface CallError {
  code: number;
  details: string;
}

/** A KV client with promise-returning unary calls. */
export class KvClient {
  readonly raw: grpc.Client;
  constructor(endpoint: string) {
    const Ctor = pkg.etcdserverpb.KV!;
    this.raw = new Ctor(endpoint, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  }

  /** Calls a unary method by name ('Range', 'Put', 'DeleteRange', 'Txn', 'Compact'). */
  call(method: string, req: Msg, deadlineMs = 10000, metadata: Record<string, string> = {}): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const fn = (this.raw as unknown as Record<string, (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method]!;
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      fn.call(this.raw, req, md, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** Sends raw bytes to a method path and returns the raw response bytes or the error. */
export function rawCall(endpoint: string, methodPath: string, body: Buffer): Promise<{ ok: Buffer } | { err: CallError }> {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * 1024 * 1024 });
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      methodPath,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new grpc.Metadata(),
      { deadline: Date.now() + 10000 },
      (err, res) => {
        client.close();
        if (err) resolve({ err: { code: err.code, details: err.details } });
        else resolve({ ok: res! });
      },
    );
  });
}

/** Extracts code and details from a rejected call. */
export function callError(e: unknown): CallError {
  const err = e as grpc.ServiceError;
  return { code: err.code, details: err.details };
}
