/**
 * H2GrpcServer: a gRPC server on our own HTTP/2 implementation, taking the service definitions
 * and handlers written for grpc-js (see call.ts for the call API handlers get). Connections are
 * handed to it already accepted (`injectConnection`), e.g. by the client listener that also
 * serves HTTP/1.x on the same port.
 *
 * Per request stream: `:method` must be POST (else RST_STREAM PROTOCOL_ERROR), `content-type`
 * application/grpc[+…|;…] (else HTTP 415), `:path` a registered method (else UNIMPLEMENTED as a
 * trailers-only response), `grpc-timeout` well-formed (else INTERNAL); other header fields
 * (except `te`, `grpc-encoding` and `grpc-accept-encoding`) become the call's metadata. Any
 * `:authority` is accepted.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import { CallHandler, CallKind, CallKindValue, Route, ServerCall } from './call';
import { GrpcStatus, H2Error } from './constants';
import { H2Connection, ConnectionHost, ConnectionLimits } from './connection';
import { DeadlineQueue } from './deadlines';
import { encodeGrpcMessage, isGrpcContentType, parseGrpcTimeout } from './grpc-codec';
import { CallMetadata } from './metadata';
import { FlushScheduler } from './output';

/** Options of an H2GrpcServer; every field is optional. */
export interface H2ServerOptions {
  /** Largest request message accepted (octets); larger ones fail with RESOURCE_EXHAUSTED. Default 4 MiB. */
  maxReceiveMessageLength?: number;
  /** Receive window of each stream, announced as SETTINGS_INITIAL_WINDOW_SIZE (octets). Default 1 MiB. */
  initialWindowSize?: number;
  /** Receive window of each connection, raised to this at start (octets). Default 16 MiB. */
  connectionWindowSize?: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS; streams beyond it are refused. Default unlimited. */
  maxConcurrentStreams?: number;
  /** Largest frame payload accepted, announced as SETTINGS_MAX_FRAME_SIZE (octets). Default 16384. */
  maxFrameSize?: number;
  /** Unsent octets per stream above which write() answers false. Default 64 KiB. */
  streamHighWaterMark?: number;
  /** Largest header block accepted (octets, compressed); larger ones end the connection. Default 256 KiB. */
  maxHeaderBlockSize?: number;
  /** Most header fields in one block. Default 1000. */
  maxHeaderFields?: number;
  /** Unwritten socket octets above which no DATA is produced until the socket drains. Default 1 MiB. */
  congestionLimit?: number;
  /** Unwritten socket octets above which reading stops until the socket drains. Default 8 MiB. */
  pauseLimit?: number;
  /** How long a connection we ended may take to close before it is destroyed (ms). Default 2000. */
  closeTimeoutMs?: number;
}

/** Handler map of one service as grpc-js takes it: method name (or originalName) → handler. */
export type ServiceImplementation = Record<string, grpc.UntypedHandleCall>;

const NO_METADATA: string[] = [];

/** One served connection, as injectConnection returns it. */
export interface ConnectionHandle {
  /** GOAWAY(NO_ERROR): no new calls; the socket ends once the open calls finished. */
  shutdown(): void;
  /** Closes the socket now; open calls are cancelled. */
  destroy(): void;
}

const CLOSED_HANDLE: ConnectionHandle = { shutdown: () => undefined, destroy: () => undefined };

/** The server; see the file comment. */
export class H2GrpcServer implements ConnectionHost {
  /** ConnectionHost: batches each connection's writes per event-loop turn. */
  readonly scheduler = new FlushScheduler();
  /** ConnectionHost: deadlines of calls with a grpc-timeout. */
  readonly deadlines = new DeadlineQueue();
  private readonly limits: ConnectionLimits;
  private readonly routes = new Map<string, Route>();
  private readonly serviceNames = new Set<string>();
  private readonly connections = new Set<H2Connection>();
  private shuttingDown = false;
  private shutdownWaiters: ((err?: Error) => void)[] = [];

  /** Creates a server with no services; see H2ServerOptions. */
  constructor(opts: H2ServerOptions = {}) {
    this.limits = {
      maxReceiveMessageLength: opts.maxReceiveMessageLength ?? 4 * 1024 * 1024,
      initialWindowSize: opts.initialWindowSize ?? 1024 * 1024,
      connectionWindowSize: opts.connectionWindowSize ?? 16 * 1024 * 1024,
      maxConcurrentStreams: opts.maxConcurrentStreams ?? Infinity,
      maxFrameSize: opts.maxFrameSize ?? 16384,
      streamHighWaterMark: opts.streamHighWaterMark ?? 64 * 1024,
      maxHeaderBlockSize: opts.maxHeaderBlockSize ?? 256 * 1024,
      maxHeaderFields: opts.maxHeaderFields ?? 1000,
      congestionLimit: opts.congestionLimit ?? 1024 * 1024,
      pauseLimit: opts.pauseLimit ?? 8 * 1024 * 1024,
      closeTimeoutMs: opts.closeTimeoutMs ?? 2000,
    };
    const l = this.limits;
    if (l.initialWindowSize < 0 || l.initialWindowSize > 0x7fffffff) throw new RangeError('initialWindowSize must be within 0..2^31-1');
    if (l.connectionWindowSize < 65535 || l.connectionWindowSize > 0x7fffffff) throw new RangeError('connectionWindowSize must be within 65535..2^31-1');
    if (l.maxFrameSize < 16384 || l.maxFrameSize > 0xffffff) throw new RangeError('maxFrameSize must be within 16384..2^24-1');
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Registers the methods of `service` (a grpc-js service definition: path, requestStream,
   * responseStream, requestDeserialize, responseSerialize) with the handlers in
   * `implementation` (looked up by key, then by originalName). Methods without a handler answer
   * UNIMPLEMENTED. Throws when a path is already registered.
   */
  addService(service: grpc.ServiceDefinition, implementation: ServiceImplementation): void {
    for (const [name, def] of Object.entries(service)) {
      if (this.routes.has(def.path)) throw new Error(`method ${def.path} is already registered`);
      const impl = implementation[name] ?? (def.originalName !== undefined ? implementation[def.originalName] : undefined);
      const service = def.path.slice(1, def.path.lastIndexOf('/'));
      this.serviceNames.add(service);
      if (impl === undefined) continue;
      const kind: CallKindValue = def.requestStream
        ? def.responseStream
          ? CallKind.BIDI
          : CallKind.CLIENT_STREAM
        : def.responseStream
          ? CallKind.SERVER_STREAM
          : CallKind.UNARY;
      const serialize = def.responseSerialize as (v: unknown) => Buffer;
      const deserialize = def.requestDeserialize as (b: Buffer) => unknown;
      this.routes.set(def.path, { path: def.path, kind, handler: impl as unknown as CallHandler, serialize, deserialize });
    }
  }

  /**
   * Serves the HTTP/2 connection on `socket`. `alreadyRead`: octets already read from it (they
   * must start with the client preface, or be empty and the preface still to come). Returns a
   * handle to end this one connection (gracefully or at once). After shutdown started, the
   * socket is destroyed.
   */
  injectConnection(socket: Socket, alreadyRead: Buffer = Buffer.alloc(0)): ConnectionHandle {
    if (this.shuttingDown) {
      socket.destroy();
      return CLOSED_HANDLE;
    }
    socket.setNoDelay(true);
    const conn = new H2Connection(socket, this, this.limits, alreadyRead);
    this.connections.add(conn);
    return conn;
  }

  /**
   * Graceful shutdown: new connections are refused, each connection gets GOAWAY and closes once
   * its open calls finished. `callback` runs when every connection is closed.
   */
  tryShutdown(callback: (err?: Error) => void): void {
    this.shuttingDown = true;
    this.shutdownWaiters.push(callback);
    for (const c of this.connections) c.shutdown();
    this.maybeShutdownDone();
  }

  /** Closes every connection now; open calls are cancelled. Pending tryShutdown callbacks run once all closed. */
  forceShutdown(): void {
    this.shuttingDown = true;
    for (const c of [...this.connections]) c.destroy();
    this.maybeShutdownDone();
  }

  /** ConnectionHost: decides what to do with a new stream (header fields in `conn.decoder`). */
  openStream(conn: H2Connection, streamId: number, endStream: boolean): ServerCall | undefined {
    const d = conn.decoder;
    const names = d.names;
    const values = d.values;
    let method = '';
    let path = '';
    let contentType = '';
    let timeout = '';
    let md: string[] | undefined;
    for (let i = 0; i < d.count; i++) {
      const name = names[i] as string;
      const value = values[i] as string;
      if (name.charCodeAt(0) === 58 /* ':' */) {
        if (name === ':path') path = value;
        else if (name === ':method') method = value;
        continue;
      }
      switch (name) {
        case 'content-type':
          contentType = value;
          break;
        case 'grpc-timeout':
          timeout = value;
          break;
        case 'te':
        case 'grpc-encoding':
        case 'grpc-accept-encoding':
          break;
        default:
          (md ??= []).push(name, value);
      }
    }
    if (method !== 'POST') {
      conn.refuseStream(streamId, endStream, 0, '', 200, H2Error.PROTOCOL_ERROR);
      return undefined;
    }
    if (!isGrpcContentType(contentType)) {
      conn.refuseStream(streamId, endStream, GrpcStatus.INTERNAL, encodeGrpcMessage(`invalid gRPC request content-type "${contentType}"`), 415);
      return undefined;
    }
    const route = this.routes.get(path);
    if (route === undefined) {
      conn.refuseStream(streamId, endStream, GrpcStatus.UNIMPLEMENTED, encodeGrpcMessage(this.unknownMethodText(path)));
      return undefined;
    }
    let deadline = Infinity;
    if (timeout !== '') {
      const ms = parseGrpcTimeout(timeout);
      if (ms === undefined) {
        conn.refuseStream(streamId, endStream, GrpcStatus.INTERNAL, encodeGrpcMessage(`transport: malformed grpc-timeout: ${timeout}`));
        return undefined;
      }
      deadline = Date.now() + ms;
    }
    const call = new ServerCall(conn, streamId, route, new CallMetadata(md ?? NO_METADATA), conn.peerInitialWindow, this.limits.initialWindowSize);
    if (deadline !== Infinity) {
      call.deadline = deadline;
      this.deadlines.add(call);
    }
    return call;
  }

  /** ConnectionHost: a connection closed. */
  connectionClosed(conn: H2Connection): void {
    this.connections.delete(conn);
    this.maybeShutdownDone();
  }

  private unknownMethodText(path: string): string {
    const slash = path.lastIndexOf('/');
    const service = slash > 0 ? path.slice(path.startsWith('/') ? 1 : 0, slash) : '';
    const method = path.slice(slash + 1);
    if (slash <= 0 || !this.serviceNames.has(service)) return `unknown service ${service === '' ? path : service}`;
    return `unknown method ${method} for service ${service}`;
  }

  private maybeShutdownDone(): void {
    if (!this.shuttingDown || this.connections.size > 0 || this.shutdownWaiters.length === 0) return;
    const waiters = this.shutdownWaiters;
    this.shutdownWaiters = [];
    this.deadlines.clear();
    for (const w of waiters) w();
  }
}
