/**
 * Thin gRPC clients for the benchmark's own load generator, with messages encoded by
 * @grpc/proto-loader from the project's proto/ files: KV, Watch, Lease and Lock.
 *
 * Streams (Watch, LeaseKeepAlive) go through @grpc/grpc-js. Unary calls go over node:http2
 * directly, speaking the same gRPC wire format (5-byte message prefix, grpc-status trailers):
 * on a 2-core machine @grpc/grpc-js spends several hundred microseconds of CPU per unary call,
 * three to five times what a bare HTTP/2 stream costs, and that made the generator, not the
 * server, the limit for the lease and lock workloads. Watch responses are read by a small
 * hand-written decoder that only extracts what the generator measures.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';

function protoDir(): string {
  let d = __dirname;
  for (;;) {
    const p = path.join(d, 'proto');
    if (fs.existsSync(path.join(p, 'etcdserverpb', 'rpc.proto'))) return p;
    const up = path.dirname(d);
    if (up === d) throw new Error('cannot find the proto/ directory');
    d = up;
  }
}

const definition = protoLoader.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto'], {
  includeDirs: [protoDir()],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});

/** A message object as proto-loader produces and accepts it (int64 fields as decimal strings). */
export type Msg = Record<string, unknown>;

function method(service: string, name: string): protoLoader.MethodDefinition<object, object> {
  const svc = definition[service] as protoLoader.ServiceDefinition | undefined;
  const m = svc?.[name];
  if (m === undefined) throw new Error(`no method ${service}/${name} in the proto files`);
  return m;
}

/** Channel options that give each client its own TCP connection and quick reconnects. */
function channelOptions(): grpc.ChannelOptions {
  return {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 16 * 1024 * 1024,
    'grpc.initial_reconnect_backoff_ms': 50,
    'grpc.max_reconnect_backoff_ms': 200,
  };
}

/** A gRPC error's code and text. */
export interface RpcError {
  code: number;
  details: string;
}

/** Extracts the gRPC code and details of a failed call (code -1 for non-gRPC errors). */
export function rpcError(e: unknown): RpcError {
  if (e instanceof CallError) return { code: e.code, details: e.details };
  if (typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'number') {
    const se = e as grpc.ServiceError;
    return { code: se.code, details: se.details ?? se.message };
  }
  return { code: -1, details: String(e) };
}

/** gRPC status code DEADLINE_EXCEEDED. */
const DEADLINE_EXCEEDED = 4;
/** gRPC status code UNAVAILABLE. */
const UNAVAILABLE = 14;

/** A failed call: the gRPC status code and message, like @grpc/grpc-js's ServiceError. */
export class CallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(`${code}: ${details}`);
  }
}

/** Splits a gRPC response body into its length-prefixed messages. Throws on a truncated or compressed frame. */
export function grpcMessages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < body.length) {
    if (pos + 5 > body.length) throw new Error('truncated gRPC frame header');
    if (body[pos] !== 0) throw new Error('compressed gRPC messages are not supported');
    const len = body.readUInt32BE(pos + 1);
    if (pos + 5 + len > body.length) throw new Error('truncated gRPC message');
    out.push(body.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return out;
}

/**
 * One connection to a server: unary calls on one HTTP/2 session (re-opened if it closes), and
 * streams on one @grpc/grpc-js channel, each its own TCP connection.
 */
export class Connection {
  private session: http2.ClientHttp2Session | null = null;
  private grpcClient: grpc.Client | null = null;

  /** Prepares a connection to "host:port"; nothing is dialled until the first call. */
  constructor(readonly endpoint: string) {}

  private h2(): http2.ClientHttp2Session {
    if (this.session === null || this.session.closed || this.session.destroyed) {
      const s = http2.connect(`http://${this.endpoint}`);
      s.on('error', () => undefined);
      s.unref();
      this.session = s;
    }
    return this.session;
  }

  /** The @grpc/grpc-js client used for streams. */
  get client(): grpc.Client {
    this.grpcClient ??= new grpc.Client(this.endpoint, grpc.credentials.createInsecure(), channelOptions());
    return this.grpcClient;
  }

  /**
   * Calls a unary method, e.g. `unary('etcdserverpb.KV', 'Put', {...})`. Rejects with a
   * `CallError` when the server answers a non-OK status or the deadline (ms from now) passes.
   */
  unary(service: string, name: string, req: Msg, deadlineMs = 30000): Promise<Msg> {
    const m = method(service, name);
    return this.unaryWith(service, name, req, m.responseDeserialize as (b: Buffer) => Msg, deadlineMs);
  }

  /** Like `unary`, but decodes the response with `decode` instead of the proto-loader decoder. */
  unaryWith<T>(service: string, name: string, req: Msg, decode: (b: Buffer) => T, deadlineMs = 30000): Promise<T> {
    const m = method(service, name);
    const msg = (m.requestSerialize as (v: Msg) => Buffer)(req);
    const frame = Buffer.allocUnsafe(5 + msg.length);
    frame[0] = 0;
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    return new Promise((resolve, reject) => {
      let st: http2.ClientHttp2Stream;
      try {
        st = this.h2().request({
          ':method': 'POST', ':path': m.path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${Math.max(1, Math.ceil(deadlineMs))}m`,
        });
      } catch (e) {
        reject(new CallError(UNAVAILABLE, String(e)));
        return;
      }
      const chunks: Buffer[] = [];
      let status: number | null = null;
      let message = '';
      let done = false;
      const finish = (err: CallError | null, value?: T): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err !== null) reject(err);
        else resolve(value as T);
      };
      const timer = setTimeout(() => {
        st.close(http2.constants.NGHTTP2_CANCEL);
        finish(new CallError(DEADLINE_EXCEEDED, 'Deadline exceeded'));
      }, deadlineMs);
      const readStatus = (h: http2.IncomingHttpHeaders): void => {
        const v = h['grpc-status'];
        if (v !== undefined) {
          status = Number(v);
          const mm = h['grpc-message'];
          message = typeof mm === 'string' ? decodeURIComponent(mm) : '';
        }
      };
      st.on('response', readStatus);
      st.on('trailers', readStatus);
      st.on('data', (d: Buffer) => chunks.push(d));
      st.on('error', (e: Error) => finish(new CallError(UNAVAILABLE, e.message)));
      st.on('close', () => {
        if (status === null) {
          finish(new CallError(UNAVAILABLE, `stream closed without a status (rst code ${st.rstCode ?? 'none'})`));
          return;
        }
        if (status !== 0) {
          finish(new CallError(status, message));
          return;
        }
        try {
          const msgs = grpcMessages(Buffer.concat(chunks));
          finish(null, decode(msgs[0] ?? Buffer.alloc(0)));
        } catch (e) {
          finish(new CallError(-1, String(e)));
        }
      });
      st.end(frame);
    });
  }

  /** Opens a bidirectional stream with the method's own (proto-loader) encoders. */
  bidi(service: string, name: string): grpc.ClientDuplexStream<Msg, Msg> {
    const m = method(service, name);
    return this.client.makeBidiStreamRequest(m.path, m.requestSerialize as (v: Msg) => Buffer, m.responseDeserialize as (b: Buffer) => Msg, new grpc.Metadata(), {});
  }

  /** Opens a Watch stream whose responses are decoded by `decodeWatchResponse`. */
  watchStream(): grpc.ClientDuplexStream<Msg, WatchResponseSummary> {
    const m = method('etcdserverpb.Watch', 'Watch');
    return this.client.makeBidiStreamRequest(m.path, m.requestSerialize as (v: Msg) => Buffer, decodeWatchResponse, new grpc.Metadata(), {});
  }

  /** Closes the HTTP/2 session and the stream channel. */
  close(): void {
    this.session?.close();
    this.session = null;
    this.grpcClient?.close();
    this.grpcClient = null;
  }
}

/**
 * Sends one linearizable Range of `key` on a fresh connection; true when it succeeded within
 * `deadlineMs`. Used to detect that a server is up and serving.
 */
export async function rangeOnce(endpoint: string, key: string, deadlineMs: number): Promise<boolean> {
  const c = new Connection(endpoint);
  try {
    await c.unary('etcdserverpb.KV', 'Range', { key: Buffer.from(key) }, deadlineMs);
    return true;
  } catch {
    return false;
  } finally {
    c.close();
  }
}

/** The fields of a WatchResponse the load generator uses. */
export interface WatchResponseSummary {
  watchId: number;
  created: boolean;
  canceled: boolean;
  cancelReason: string;
  /** Header revision. */
  revision: number;
  /** Number of events in the response. */
  events: number;
  /**
   * For each event whose value starts with the 8-byte send-time stamp, that stamp (ms on the
   * `wallClockMs()` scale); events without a stamp are left out.
   */
  stamps: number[];
}

/** Reads a base-128 varint at `pos`; returns the value (exact below 2^53) and the next position. */
function readVarint(b: Buffer, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated varint');
    const byte = b[pos++]!;
    result += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
}

/** Skips a field of wire type `wt` at `pos`; returns the next position. */
function skipField(b: Buffer, pos: number, wt: number): number {
  switch (wt) {
    case 0:
      return readVarint(b, pos)[1];
    case 1:
      return pos + 8;
    case 2: {
      const [len, p] = readVarint(b, pos);
      return p + len;
    }
    case 5:
      return pos + 4;
    default:
      throw new Error(`unsupported wire type ${wt}`);
  }
}

/** Magic marking a stamped value: the stamp follows as a little-endian float64. */
const STAMP_MAGIC = 0x42454e43; // "BENC"

/** The current time in ms on a scale shared by every process on this machine (epoch-based, sub-ms resolution). */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A value of `size` bytes (at least 12) that carries the current `wallClockMs()` for delivery-latency measurement. */
export function stampedValue(size: number): Buffer {
  const b = Buffer.alloc(Math.max(12, size), 0x61);
  b.writeUInt32LE(STAMP_MAGIC, 0);
  b.writeDoubleLE(wallClockMs(), 4);
  return b;
}

function stampOfValue(b: Buffer, start: number, end: number): number | null {
  if (end - start < 12 || b.readUInt32LE(start) !== STAMP_MAGIC) return null;
  return b.readDoubleLE(start + 4);
}

/** Finds the value field of an encoded KeyValue in b[start, end) and returns its stamp, if any. */
function stampOfKeyValue(b: Buffer, start: number, end: number): number | null {
  let pos = start;
  while (pos < end) {
    const [tag, p] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 5 && wt === 2) {
      const [len, q] = readVarint(b, p);
      return stampOfValue(b, q, q + len);
    }
    pos = skipField(b, p, wt);
  }
  return null;
}

/** Decodes a serialized etcdserverpb.WatchResponse into a `WatchResponseSummary`. Throws on malformed input. */
export function decodeWatchResponse(b: Buffer): WatchResponseSummary {
  const r: WatchResponseSummary = { watchId: 0, created: false, canceled: false, cancelReason: '', revision: 0, events: 0, stamps: [] };
  let pos = 0;
  while (pos < b.length) {
    const [tag, p] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (wt === 0 && (field === 2 || field === 3 || field === 4)) {
      const [v, q] = readVarint(b, p);
      if (field === 2) r.watchId = v;
      else if (field === 3) r.created = v !== 0;
      else r.canceled = v !== 0;
      pos = q;
    } else if (wt === 2 && (field === 1 || field === 6 || field === 11)) {
      const [len, q] = readVarint(b, p);
      const end = q + len;
      if (field === 1) {
        let hp = q;
        while (hp < end) {
          const [ht, hq] = readVarint(b, hp);
          if (ht === (3 << 3)) {
            const [rev, hr] = readVarint(b, hq);
            r.revision = rev;
            hp = hr;
          } else hp = skipField(b, hq, ht & 7);
        }
      } else if (field === 6) {
        r.cancelReason = b.toString('utf8', q, end);
      } else {
        r.events += 1;
        let ep = q;
        while (ep < end) {
          const [et, eq] = readVarint(b, ep);
          if (et === ((2 << 3) | 2)) {
            const [kvLen, kq] = readVarint(b, eq);
            const s = stampOfKeyValue(b, kq, kq + kvLen);
            if (s !== null) r.stamps.push(s);
            ep = kq + kvLen;
          } else ep = skipField(b, eq, et & 7);
        }
      }
      pos = end;
    } else {
      pos = skipField(b, p, wt);
    }
  }
  return r;
}

/** The header revision and number of key-values of an encoded etcdserverpb.RangeResponse. */
export interface RangeSummary {
  revision: number;
  kvs: number;
}

/** Decodes only the header revision and counts the kvs of a serialized RangeResponse. Throws on malformed input. */
export function decodeRangeSummary(b: Buffer): RangeSummary {
  const r: RangeSummary = { revision: 0, kvs: 0 };
  let pos = 0;
  while (pos < b.length) {
    const [tag, p] = readVarint(b, pos);
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const [len, q] = readVarint(b, p);
      const end = q + len;
      let hp = q;
      while (hp < end) {
        const [ht, hq] = readVarint(b, hp);
        if (ht === (3 << 3)) {
          const [rev, hr] = readVarint(b, hq);
          r.revision = rev;
          hp = hr;
        } else hp = skipField(b, hq, ht & 7);
      }
      pos = end;
    } else {
      if (field === 2) r.kvs += 1;
      pos = skipField(b, p, wt);
    }
  }
  return r;
}

/** The key just after every key with `prefix` (etcd's prefix range end). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
