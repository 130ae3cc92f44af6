/**
 * etcd's JSON gateway on the client port: `POST /v3/<path>` with a JSON body runs the gRPC method
 * mapped to that path and answers in JSON (mapping in gateway-json.ts). Calls go in-process to the
 * same handler functions the gRPC server runs (with its guard and metrics), through fake call
 * objects, so both front ends give the same answers:
 *
 *   request JSON → plain object → encoded and decoded with the method's request type (exactly what
 *   the gRPC server's deserializer hands a handler) → handler → response (a pre-encoded Buffer or
 *   a plain object, serialized as the gRPC server would) → decoded → JSON.
 *
 * Unary: 200 `{...}` with Content-Type application/json and Grpc-Metadata-Content-Type; on error
 * the status from the gRPC code (see httpStatusFromCode) with `{"error":m,"message":m,"code":n}`
 * and a Grpc-Trailer-Content-Type trailer; a body that is not valid JSON for the message is a 400
 * with code 3 and Go's decoder message (no trailer).
 *
 * Streams (watch, lease keep-alive, snapshot, observe): the body is a sequence of JSON requests,
 * each sent to the stream as it arrives; the end of the body half-closes the request side (a watch
 * keeps streaming, a keep-alive stream ends). Responses are written one chunk per message as
 * `{"result":{...}}\n`. An error ends the stream with `{"error":{"grpc_code":n,"http_code":h,
 * "message":m,"http_status":s}}` (with that HTTP status when nothing was written yet). A first
 * request that is not valid JSON fails the whole call with code 2 (Unknown), as etcd's gateway does;
 * a later one just ends the request side. The client closing the connection cancels the call.
 *
 * Other methods on a gateway path get 405 "Method Not Allowed"; unknown paths under /v3/ get 404
 * "Not Found" (the texts of etcd's gateway).
 */
import { EventEmitter } from 'node:events';
import type * as http from 'node:http';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import type { Logger } from '../server/logger';
import { protoRoot } from './proto';
import { GoJsonError, JsonStreamDecoder, goJsonString, httpStatusFromCode, jsonToMessage, messageToJson } from './gateway-json';

/** Gateway paths (after the version prefix) → gRPC method paths, as etcd's gateway maps them. */
export const GATEWAY_ROUTES: Readonly<Record<string, string>> = {
  'kv/range': '/etcdserverpb.KV/Range',
  'kv/put': '/etcdserverpb.KV/Put',
  'kv/deleterange': '/etcdserverpb.KV/DeleteRange',
  'kv/txn': '/etcdserverpb.KV/Txn',
  'kv/compaction': '/etcdserverpb.KV/Compact',
  watch: '/etcdserverpb.Watch/Watch',
  'lease/grant': '/etcdserverpb.Lease/LeaseGrant',
  'lease/revoke': '/etcdserverpb.Lease/LeaseRevoke',
  'kv/lease/revoke': '/etcdserverpb.Lease/LeaseRevoke',
  'lease/keepalive': '/etcdserverpb.Lease/LeaseKeepAlive',
  'lease/timetolive': '/etcdserverpb.Lease/LeaseTimeToLive',
  'kv/lease/timetolive': '/etcdserverpb.Lease/LeaseTimeToLive',
  'lease/leases': '/etcdserverpb.Lease/LeaseLeases',
  'kv/lease/leases': '/etcdserverpb.Lease/LeaseLeases',
  'cluster/member/add': '/etcdserverpb.Cluster/MemberAdd',
  'cluster/member/remove': '/etcdserverpb.Cluster/MemberRemove',
  'cluster/member/update': '/etcdserverpb.Cluster/MemberUpdate',
  'cluster/member/list': '/etcdserverpb.Cluster/MemberList',
  'cluster/member/promote': '/etcdserverpb.Cluster/MemberPromote',
  'maintenance/alarm': '/etcdserverpb.Maintenance/Alarm',
  'maintenance/status': '/etcdserverpb.Maintenance/Status',
  'maintenance/defragment': '/etcdserverpb.Maintenance/Defragment',
  'maintenance/hash': '/etcdserverpb.Maintenance/Hash',
  'maintenance/hashkv': '/etcdserverpb.Maintenance/HashKV',
  'maintenance/snapshot': '/etcdserverpb.Maintenance/Snapshot',
  'maintenance/transfer-leadership': '/etcdserverpb.Maintenance/MoveLeader',
  'maintenance/downgrade': '/etcdserverpb.Maintenance/Downgrade',
  'auth/enable': '/etcdserverpb.Auth/AuthEnable',
  'auth/disable': '/etcdserverpb.Auth/AuthDisable',
  'auth/status': '/etcdserverpb.Auth/AuthStatus',
  'auth/authenticate': '/etcdserverpb.Auth/Authenticate',
  'auth/user/add': '/etcdserverpb.Auth/UserAdd',
  'auth/user/get': '/etcdserverpb.Auth/UserGet',
  'auth/user/list': '/etcdserverpb.Auth/UserList',
  'auth/user/delete': '/etcdserverpb.Auth/UserDelete',
  'auth/user/changepw': '/etcdserverpb.Auth/UserChangePassword',
  'auth/user/grant': '/etcdserverpb.Auth/UserGrantRole',
  'auth/user/revoke': '/etcdserverpb.Auth/UserRevokeRole',
  'auth/role/add': '/etcdserverpb.Auth/RoleAdd',
  'auth/role/get': '/etcdserverpb.Auth/RoleGet',
  'auth/role/list': '/etcdserverpb.Auth/RoleList',
  'auth/role/delete': '/etcdserverpb.Auth/RoleDelete',
  'auth/role/grant': '/etcdserverpb.Auth/RoleGrantPermission',
  'auth/role/revoke': '/etcdserverpb.Auth/RoleRevokePermission',
  'lock/lock': '/v3lockpb.Lock/Lock',
  'lock/unlock': '/v3lockpb.Lock/Unlock',
  'election/campaign': '/v3electionpb.Election/Campaign',
  'election/proclaim': '/v3electionpb.Election/Proclaim',
  'election/leader': '/v3electionpb.Election/Leader',
  'election/observe': '/v3electionpb.Election/Observe',
  'election/resign': '/v3electionpb.Election/Resign',
};

/** The URL prefix the gateway serves (etcd 3.5+ serves only /v3). */
export const GATEWAY_PREFIX = '/v3/';

/** Options of the gateway. */
export interface GatewayOptions {
  /** The gRPC server's final handlers by full method path (filled as services are registered). */
  methods: ReadonlyMap<string, grpc.UntypedHandleCall>;
  /** Largest encoded request accepted, in bytes (the gRPC server's receive limit). */
  maxRequestBytes: number;
  /** Where failures to write to a client are logged (debug level). */
  logger?: Logger;
}

interface ResolvedMethod {
  path: string;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

interface CallStatus {
  code: number;
  details: string;
}

function statusOf(err: unknown): CallStatus {
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; details?: unknown; message?: unknown };
    const code = typeof e.code === 'number' ? e.code : grpc.status.UNKNOWN;
    const details = typeof e.details === 'string' ? e.details : typeof e.message === 'string' ? e.message : String(err);
    return { code, details };
  }
  return { code: grpc.status.UNKNOWN, details: String(err) };
}

function statusText(code: number): string {
  const texts: Record<number, string> = {
    200: 'OK',
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    408: 'Request Timeout',
    409: 'Conflict',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    501: 'Not Implemented',
    503: 'Service Unavailable',
    504: 'Gateway Timeout',
  };
  return texts[code] ?? '';
}

/** Metadata a gateway call carries: Authorization and Grpc-Metadata-* headers, as grpc-gateway forwards them. */
function metadataFrom(req: http.IncomingMessage): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    let key: string | undefined;
    if (name === 'authorization') key = 'authorization';
    else if (name.startsWith('grpc-metadata-')) key = name.slice('grpc-metadata-'.length);
    if (key === undefined || key === '' || key.endsWith('-bin')) continue;
    for (const v of values) md.add(key, v);
  }
  return md;
}

/** The response serializer of the gRPC server: Buffers pass through, objects are encoded. */
function serialize(t: protobuf.Type, v: unknown): Uint8Array {
  if (Buffer.isBuffer(v)) return v;
  return t.encode(v as Record<string, unknown>).finish();
}

function errorBody(st: CallStatus): string {
  const m = goJsonString(st.details);
  return `{"error":${m},"message":${m},"code":${st.code}}`;
}

function streamErrorChunk(st: CallStatus): string {
  const http = httpStatusFromCode(st.code);
  const parts: string[] = [];
  if (st.code !== 0) parts.push(`"grpc_code":${st.code}`);
  parts.push(`"http_code":${http}`);
  if (st.details !== '') parts.push(`"message":${goJsonString(st.details)}`);
  const text = statusText(http);
  if (text !== '') parts.push(`"http_status":${goJsonString(text)}`);
  return `{"error":{${parts.join(',')}}}`;
}

/** Writes a plain-text answer as Go's http.Error does. */
function plainError(res: http.ServerResponse, status: number, text: string): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** What a unary handler is handed: the parts of grpc-js's ServerUnaryCall handlers use. */
class GatewayUnaryCall extends EventEmitter {
  cancelled = false;
  constructor(
    readonly request: unknown,
    readonly metadata: grpc.Metadata,
    private readonly path: string,
    private readonly peer: string,
  ) {
    super();
  }
  getPeer(): string {
    return this.peer;
  }
  getPath(): string {
    return this.path;
  }
  getDeadline(): grpc.Deadline {
    return Infinity;
  }
  getHost(): string {
    return 'localhost';
  }
  sendMetadata(_md: grpc.Metadata): void {
    // Headers of an in-process call go nowhere.
  }
  /** The client went away: tells the handler as grpc-js does. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

/**
 * What a streaming handler is handed: an object-mode duplex like grpc-js's server streams.
 * Requests are pushed in by the gateway; written responses go to `sink`; `end()` finishes with OK,
 * emitting 'error' with a status finishes with that status.
 */
class GatewayStreamCall extends Duplex {
  cancelled = false;
  private status: CallStatus = { code: grpc.status.OK, details: 'OK' };
  private pullWaiter: (() => void) | undefined;

  constructor(
    readonly request: unknown,
    readonly metadata: grpc.Metadata,
    private readonly path: string,
    private readonly peer: string,
    private readonly sink: {
      message(m: unknown, done: () => void): void;
      finish(st: CallStatus): void;
    },
  ) {
    super({ objectMode: true });
    this.on('error', (err: unknown) => {
      this.status = statusOf(err);
      this.end();
    });
  }
  getPeer(): string {
    return this.peer;
  }
  getPath(): string {
    return this.path;
  }
  getDeadline(): grpc.Deadline {
    return Infinity;
  }
  getHost(): string {
    return 'localhost';
  }
  sendMetadata(_md: grpc.Metadata): void {
    // Headers of an in-process call go nowhere.
  }
  /** Resolves the next time the handler wants more requests (after a push returned false). */
  onPull(fn: () => void): void {
    this.pullWaiter = fn;
  }
  override _read(): void {
    const w = this.pullWaiter;
    this.pullWaiter = undefined;
    w?.();
  }
  override _write(chunk: unknown, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.cancelled) {
      cb();
      return;
    }
    this.sink.message(chunk, () => cb());
  }
  override _final(cb: (err?: Error | null) => void): void {
    cb();
    if (!this.cancelled) this.sink.finish(this.status);
  }
  /** The client went away: tells the handler as grpc-js does. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

type UnaryFn = (call: GatewayUnaryCall, cb: (err: unknown, value?: unknown) => void) => void;
type StreamFn = (call: GatewayStreamCall) => void;

/** Serves etcd's JSON gateway over the gRPC handlers. */
export class Gateway {
  private readonly resolved = new Map<string, ResolvedMethod | undefined>();

  /** Creates the gateway; `opts.methods` may still be filled in later. */
  constructor(private readonly opts: GatewayOptions) {}

  /**
   * Serves `req` if its path is under /v3/ and returns true; returns false (and touches nothing)
   * for any other path.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
    if (!pathname.startsWith(GATEWAY_PREFIX)) return false;
    const target = GATEWAY_ROUTES[pathname.slice(GATEWAY_PREFIX.length)];
    const method = target === undefined ? undefined : this.resolve(target);
    if (method === undefined) {
      plainError(res, 404, 'Not Found');
      return true;
    }
    if (req.method !== 'POST') {
      plainError(res, 405, 'Method Not Allowed');
      return true;
    }
    const handler = this.opts.methods.get(method.path);
    if (method.requestStream) this.serveBidi(req, res, method, handler);
    else this.serveWithBody(req, res, method, handler);
    return true;
  }

  private resolve(path: string): ResolvedMethod | undefined {
    if (this.resolved.has(path)) return this.resolved.get(path);
    const [, service = '', name = ''] = path.split('/');
    let out: ResolvedMethod | undefined;
    try {
      const m = protoRoot().lookupService(service).methods[name];
      if (m !== undefined) {
        m.resolve();
        const requestType = m.resolvedRequestType;
        const responseType = m.resolvedResponseType;
        if (requestType !== null && responseType !== null) {
          out = { path, requestType, responseType, requestStream: m.requestStream === true, responseStream: m.responseStream === true };
        }
      }
    } catch {
      out = undefined;
    }
    this.resolved.set(path, out);
    return out;
  }

  /** A request as the gRPC server's deserializer would hand it over, or a GoJsonError. */
  private decodeRequest(method: ResolvedMethod, json: ReturnType<JsonStreamDecoder['next']>): unknown {
    const plain = json === 'eof' || json === 'more' ? {} : jsonToMessage(method.requestType, json);
    const bytes = method.requestType.encode(plain).finish();
    if (bytes.length > this.opts.maxRequestBytes) {
      throw Object.assign(new Error(`grpc: received message larger than max (${bytes.length} vs. ${this.opts.maxRequestBytes})`), {
        code: grpc.status.RESOURCE_EXHAUSTED,
      });
    }
    return method.requestType.decode(bytes);
  }

  private toJson(method: ResolvedMethod, value: unknown): string {
    const bytes = serialize(method.responseType, value);
    return messageToJson(method.responseType, method.responseType.decode(bytes) as unknown as Record<string, unknown>);
  }

  /** Unary and server-streaming methods: the whole body is one request. */
  private serveWithBody(req: http.IncomingMessage, res: http.ServerResponse, method: ResolvedMethod, handler: grpc.UntypedHandleCall | undefined): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const cap = this.opts.maxRequestBytes * 8 + (1 << 20);
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > cap) tooBig = true;
      else chunks.push(c);
    });
    req.on('end', () => this.guarded(res, () => {
      if (tooBig) {
        this.unaryError(res, { code: grpc.status.RESOURCE_EXHAUSTED, details: `grpc: received message larger than max (${size} vs. ${this.opts.maxRequestBytes})` }, false);
        return;
      }
      const dec = new JsonStreamDecoder();
      dec.push(Buffer.concat(chunks));
      dec.end();
      let request: unknown;
      try {
        request = this.decodeRequest(method, dec.next());
      } catch (err) {
        if (err instanceof GoJsonError) this.unaryError(res, { code: grpc.status.INVALID_ARGUMENT, details: err.message }, false);
        else this.unaryError(res, statusOf(err), false);
        return;
      }
      if (handler === undefined) {
        this.unimplemented(res, method, method.responseStream);
        return;
      }
      if (method.responseStream) this.startStream(req, res, method, handler, request);
      else this.runUnary(req, res, method, handler, request);
    }));
    req.on('error', () => res.destroy());
  }

  /** Runs `fn`; a bug in it fails this request (500 or a dropped connection), never the process. */
  private guarded(res: http.ServerResponse, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.opts.logger?.warn('gateway request failed', { error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) this.unaryError(res, { code: grpc.status.INTERNAL, details: err instanceof Error ? err.message : String(err) }, false);
      else res.destroy();
    }
  }

  private unimplemented(res: http.ServerResponse, method: ResolvedMethod, stream: boolean): void {
    const st = { code: grpc.status.UNIMPLEMENTED, details: `The server does not implement the method ${method.path}` };
    if (stream) {
      const body = streamErrorChunk(st);
      res.writeHead(httpStatusFromCode(st.code), { 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' });
      res.end(body);
    } else {
      this.unaryError(res, st, true);
    }
  }

  private runUnary(req: http.IncomingMessage, res: http.ServerResponse, method: ResolvedMethod, handler: grpc.UntypedHandleCall, request: unknown): void {
    const call = new GatewayUnaryCall(request, metadataFrom(req), method.path, `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? 0}`);
    let answered = false;
    res.on('close', () => {
      if (!answered) call.cancel();
    });
    (handler as unknown as UnaryFn)(call, (err: unknown, value?: unknown) => {
      if (answered) return;
      answered = true;
      if (call.cancelled) return;
      if (err !== null && err !== undefined) {
        this.unaryError(res, statusOf(err), true);
        return;
      }
      let body: string;
      try {
        body = this.toJson(method, value);
      } catch (e) {
        this.unaryError(res, { code: grpc.status.INTERNAL, details: e instanceof Error ? e.message : String(e) }, true);
        return;
      }
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Grpc-Metadata-Content-Type': 'application/grpc',
        'Content-Length': Buffer.byteLength(body),
      });
      res.end(body);
    });
  }

  /** An error answer; `fromCall` adds the trailer etcd's gateway sends after a gRPC call. */
  private unaryError(res: http.ServerResponse, st: CallStatus, fromCall: boolean): void {
    const body = errorBody(st);
    const status = httpStatusFromCode(st.code);
    if (fromCall) {
      res.writeHead(status, { 'Content-Type': 'application/json', Trailer: 'Grpc-Trailer-Content-Type' });
      res.write(body);
      res.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
      res.end();
      return;
    }
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Bidirectional streams: requests are decoded from the body as they arrive. */
  private serveBidi(req: http.IncomingMessage, res: http.ServerResponse, method: ResolvedMethod, handler: grpc.UntypedHandleCall | undefined): void {
    const dec = new JsonStreamDecoder();
    let call: GatewayStreamCall | undefined;
    /** Set once the call was refused (bad first request, no handler): the rest of the body is ignored. */
    let refused = false;
    let inputDone = false;
    const closeInput = (): void => {
      if (inputDone) return;
      inputDone = true;
      call?.push(null);
    };
    /** Sends every complete request; pauses the body while the stream cannot take more. */
    const pump = (): void => {
      if (call === undefined || inputDone) return;
      for (;;) {
        let next: ReturnType<JsonStreamDecoder['next']>;
        let msg: unknown;
        try {
          next = dec.next();
          if (next === 'more') return;
          if (next === 'eof') {
            closeInput();
            return;
          }
          msg = this.decodeRequest(method, next);
        } catch {
          // A bad later request only ends the request side, as etcd's gateway does.
          closeInput();
          return;
        }
        if (!call.push(msg)) {
          req.pause();
          call.onPull(() => {
            req.resume();
            pump();
          });
          return;
        }
      }
    };
    const start = (): void => {
      // The first request decides whether the call starts at all.
      let first: ReturnType<JsonStreamDecoder['next']>;
      let request: unknown;
      try {
        first = dec.next();
        if (first === 'more') return;
        request = first === 'eof' ? undefined : this.decodeRequest(method, first);
      } catch (err) {
        refused = true;
        const st = err instanceof GoJsonError ? { code: grpc.status.UNKNOWN, details: err.message } : statusOf(err);
        this.unaryError(res, st, false);
        return;
      }
      if (handler === undefined) {
        refused = true;
        this.unimplemented(res, method, true);
        return;
      }
      call = this.startStream(req, res, method, handler, undefined);
      if (request !== undefined) call.push(request);
      if (first === 'eof') closeInput();
      else pump();
    };
    const step = (): void => {
      if (refused || inputDone) return;
      this.guarded(res, () => {
        if (call === undefined) start();
        else pump();
      });
    };
    req.on('data', (c: Buffer) => {
      // Bytes after the end of the request side are read and dropped.
      if (refused || inputDone) return;
      dec.push(c);
      step();
    });
    req.on('end', () => {
      dec.end();
      step();
    });
    req.on('error', () => call?.cancel());
  }

  private startStream(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    method: ResolvedMethod,
    handler: grpc.UntypedHandleCall,
    request: unknown,
  ): GatewayStreamCall {
    let wrote = false;
    let finished = false;
    const writeHead = (status: number): void => {
      if (res.headersSent) return;
      res.writeHead(status, { 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc' });
    };
    const call = new GatewayStreamCall(request, metadataFrom(req), method.path, `${req.socket.remoteAddress ?? ''}:${req.socket.remotePort ?? 0}`, {
      message: (m, done) => {
        let line: string;
        try {
          line = `{"result":${this.toJson(method, m)}}\n`;
        } catch (e) {
          this.opts.logger?.debug('gateway could not encode a stream message', { error: e instanceof Error ? e.message : String(e) });
          done();
          return;
        }
        writeHead(200);
        wrote = true;
        // One write per message: clients read each chunk as one JSON document.
        if (res.write(line)) done();
        else res.once('drain', done);
      },
      finish: (st) => {
        if (finished) return;
        finished = true;
        if (st.code === grpc.status.OK) {
          writeHead(200);
          res.end();
          return;
        }
        if (!wrote) {
          writeHead(httpStatusFromCode(st.code));
        }
        res.end(streamErrorChunk(st));
      },
    });
    res.on('close', () => {
      if (!finished) {
        finished = true;
        call.cancel();
      }
    });
    (handler as unknown as StreamFn)(call);
    return call;
  }
}
