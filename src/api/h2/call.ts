/**
 * One gRPC call on one HTTP/2 stream, as handlers see it: the subset of grpc-js's server call API
 * our services use, plus the stream's HTTP/2 state that the connection drives.
 *
 * Handler-facing API (as grpc-js):
 * - unary and server-streaming: `request`, `metadata`, `cancelled`, `getPeer()`, `getDeadline()`,
 *   `getPath()`; unary handlers answer through their callback `(err, value)`.
 * - writable (server- and bidi-streaming): `write(msg)` → false when the stream cannot take more
 *   now ('drain' follows), `end()` (status OK), `emit('error', {code, details})` (that status),
 *   `sendMetadata()`.
 * - readable (client- and bidi-streaming): events 'data' (one decoded message), 'end' (the client
 *   half-closed).
 * - events: 'cancelled' (client reset, connection lost or deadline passed; `cancelled` turns
 *   true), 'finish' (the status was written after end() or an error), 'close' (the stream is
 *   gone; streaming calls only), 'drain'.
 *
 * States: open → finished (a status is decided: by the handler, an error or cancellation; later
 * answers are ignored) → closed (removed from the connection). A handler must attach its 'data'
 * listener synchronously: messages are delivered as they arrive.
 */
import { EventEmitter } from 'node:events';
import type { DeadlineEntry } from './deadlines';
import { GRPC_PREFIX_SIZE, GrpcStatus } from './constants';
import { encodeGrpcMessage, statusFromError } from './grpc-codec';
import type { ExtraField } from './hpack-codec';
import type { CallMetadata } from './metadata';

/** How a method streams. */
export const CallKind = {
  UNARY: 0,
  CLIENT_STREAM: 1,
  SERVER_STREAM: 2,
  BIDI: 3,
} as const;

/** One of CallKind's values. */
export type CallKindValue = (typeof CallKind)[keyof typeof CallKind];

/** A handler as the server invokes it: `callback` for unary and client-streaming methods only. */
export type CallHandler = (call: ServerCall, callback?: (err: unknown, value?: unknown) => void) => void;

/** A registered method. */
export interface Route {
  /** "/package.Service/Method". */
  readonly path: string;
  /** How the method streams. */
  readonly kind: CallKindValue;
  /** The service's handler (called once per call). */
  readonly handler: CallHandler;
  /** Decodes one request message (throws on malformed input). */
  readonly deserialize: (b: Buffer) => unknown;
  /** Encodes one response message. */
  readonly serialize: (v: unknown) => Buffer;
}

/** What a call needs from its connection (the HTTP/2 side). */
export interface CallTransport {
  /** Largest request message accepted, in octets. */
  readonly maxReceiveMessageLength: number;
  /** Queued octets above which write() answers false. */
  readonly streamHighWaterMark: number;
  /** True while the socket cannot take more (writes answer false). */
  readonly congested: boolean;
  /** "address:port" of the client. */
  readonly peer: string;
  /** Sends the response headers (once), with `extra` fields. */
  sendHeaders(call: ServerCall, extra?: readonly ExtraField[]): void;
  /** Sends one encoded message (headers first when not sent yet), or queues it for window. */
  sendMessage(call: ServerCall, message: Buffer): void;
  /** Sends headers, one message and OK trailers (a unary answer). */
  sendUnaryResponse(call: ServerCall, message: Buffer): void;
  /** Ends the stream with a status (after the queued messages); `encodedMessage` is percent-encoded. */
  sendStatus(call: ServerCall, code: number, encodedMessage: string): void;
  /** Resets the stream (RST_STREAM with `errorCode`). */
  resetStream(call: ServerCall, errorCode: number): void;
  /** Stops tracking the call's deadline. */
  forgetDeadline(call: ServerCall): void;
}

const NO_QUEUE: Buffer[] = [];

/** One call; see the file comment. Created by the server for each accepted request stream. */
export class ServerCall extends EventEmitter implements DeadlineEntry {
  // ---- HTTP/2 stream state, driven by the connection ----
  /** Stream identifier. */
  readonly id: number;
  /** Octets we may still send on this stream (may go negative after a SETTINGS change). */
  sendWindow: number;
  /** Octets the client may still send on this stream. */
  recvWindow: number;
  /** The client ended its side (END_STREAM) or the stream was reset. */
  remoteClosed = false;
  /** Our END_STREAM was written or the stream was reset. */
  localClosed = false;
  /** Response headers were written. */
  headersSent = false;
  /** Message octets waiting for flow-control window: buffers from `queueHead`, the first from `queueOffset`. */
  sendQueue: Buffer[] = NO_QUEUE;
  queueHead = 0;
  queueOffset = 0;
  queuedBytes = 0;
  /** Status to send once the queue is empty (-1: none yet) and its encoded message. */
  pendingStatus = -1;
  pendingMessage = '';
  /** write() answered false: 'drain' is owed. */
  needDrain = false;
  /** In the connection's list of streams waiting for the connection window or the socket. */
  blocked = false;
  /** DeadlineEntry: absolute deadline (ms since the epoch), Infinity without one. */
  deadline = Infinity;
  /** DeadlineEntry: heap position (owned by the deadline queue). */
  heapIndex = -1;

  // ---- gRPC state ----
  /** The request message (unary and server-streaming calls, once received). */
  request: unknown = undefined;
  /** Request metadata (custom headers). */
  readonly metadata: CallMetadata;
  /** True once the client cancelled, the connection was lost or the deadline passed. */
  cancelled = false;
  /** A status was decided; later answers are ignored. */
  finished = false;
  private readonly transport: CallTransport;
  private readonly route: Route;
  private gotRequest = false;
  /** Partial message being received: the prefix octets so far, then the body. */
  private rxPrefix: Buffer | undefined;
  private rxPrefixLen = 0;
  private rxBody: Buffer | undefined;
  private rxBodyLen = 0;

  /** Creates the call for stream `id`; `sendWindow`/`recvWindow` are the initial stream windows. */
  constructor(transport: CallTransport, id: number, route: Route, metadata: CallMetadata, sendWindow: number, recvWindow: number) {
    super();
    this.transport = transport;
    this.id = id;
    this.route = route;
    this.metadata = metadata;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  /** The method's streaming kind. */
  get kind(): CallKindValue {
    return this.route.kind;
  }

  /** "address:port" of the client. */
  getPeer(): string {
    return this.transport.peer;
  }

  /** The call's deadline (Infinity when the client set none). */
  getDeadline(): Date | number {
    return this.deadline === Infinity ? Infinity : new Date(this.deadline);
  }

  /** The method path ("/etcdserverpb.KV/Put"). */
  getPath(): string {
    return this.route.path;
  }

  // ---- handler-facing API ----

  /**
   * Sends one response message (encoded by the method's serializer; a Buffer passes through and
   * must not be changed afterwards). Returns false when the stream already holds
   * `streamHighWaterMark` octets or more that could not be sent, or the socket is backed up;
   * 'drain' is emitted once it can take more. After the call finished, messages are dropped.
   */
  write(message: unknown): boolean {
    if (this.finished) return true;
    let payload: Buffer;
    try {
      payload = this.route.serialize(message);
    } catch (err) {
      this.finish(GrpcStatus.INTERNAL, `grpc: error while marshaling: ${errorText(err)}`);
      return true;
    }
    this.transport.sendMessage(this, payload);
    if (this.queuedBytes >= this.transport.streamHighWaterMark || this.transport.congested) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Ends the call with status OK once the written messages are sent. */
  end(): void {
    if (this.finished) return;
    this.finish(GrpcStatus.OK, '');
  }

  /** Sends the response headers now (with `metadata`'s fields as extra headers). */
  sendMetadata(metadata?: { getMap(): Record<string, unknown> }): void {
    if (this.finished || this.headersSent) return;
    const extra: ExtraField[] = [];
    if (metadata !== undefined) {
      for (const [name, value] of Object.entries(metadata.getMap())) {
        extra.push({ name, value: Buffer.isBuffer(value) ? value.toString('base64') : String(value) });
      }
    }
    this.transport.sendHeaders(this, extra);
  }

  /**
   * As EventEmitter's emit, except that emitting 'error' with a status ({code, details} or an
   * Error) ends the call with that status first (grpc-js's convention for streaming handlers); an
   * 'error' without listeners does not throw.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') {
      if (!this.finished) {
        const st = statusFromError(args[0]);
        this.finish(st.code, st.details);
      }
      if (this.listenerCount('error') === 0) return false;
    }
    return super.emit(event, ...args);
  }

  // ---- driven by the server and the connection ----

  /** Starts the call once its stream is registered: streaming-request handlers run at once. */
  start(): void {
    const kind = this.route.kind;
    if (kind === CallKind.BIDI) this.invoke(undefined);
    else if (kind === CallKind.CLIENT_STREAM) this.invoke(this.unaryCallback());
  }

  /** DATA payload octets `buf[from, to)` of this stream, in order: gRPC messages are cut from them. */
  receiveData(buf: Buffer, from: number, to: number): void {
    let p = from;
    while (p < to && !this.finished) {
      const body = this.rxBody;
      if (body !== undefined) {
        const n = Math.min(to - p, body.length - this.rxBodyLen);
        buf.copy(body, this.rxBodyLen, p, p + n);
        this.rxBodyLen += n;
        p += n;
        if (this.rxBodyLen === body.length) {
          this.rxBody = undefined;
          this.deliver(body);
        }
        continue;
      }
      let flag: number;
      let len: number;
      if (this.rxPrefixLen === 0 && to - p >= GRPC_PREFIX_SIZE) {
        flag = buf[p] as number;
        len = buf.readUInt32BE(p + 1);
        p += GRPC_PREFIX_SIZE;
      } else {
        const prefix = (this.rxPrefix ??= Buffer.allocUnsafe(GRPC_PREFIX_SIZE));
        const n = Math.min(to - p, GRPC_PREFIX_SIZE - this.rxPrefixLen);
        buf.copy(prefix, this.rxPrefixLen, p, p + n);
        this.rxPrefixLen += n;
        p += n;
        if (this.rxPrefixLen < GRPC_PREFIX_SIZE) return;
        this.rxPrefixLen = 0;
        flag = prefix[0] as number;
        len = prefix.readUInt32BE(1);
      }
      if (flag !== 0) {
        this.finish(GrpcStatus.UNIMPLEMENTED, 'compression not supported');
        return;
      }
      const max = this.transport.maxReceiveMessageLength;
      if (len > max) {
        this.finish(GrpcStatus.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${len} vs. ${max})`);
        return;
      }
      if (to - p >= len) {
        // A copy: the message must not pin the (larger) socket chunk it arrived in.
        const msg = Buffer.allocUnsafe(len);
        buf.copy(msg, 0, p, p + len);
        p += len;
        this.deliver(msg);
      } else {
        this.rxBody = Buffer.allocUnsafe(len);
        this.rxBodyLen = 0;
      }
    }
  }

  /** The client ended its side of the stream (END_STREAM). */
  remoteEnd(): void {
    if (this.finished) return;
    if (this.rxPrefixLen > 0 || this.rxBody !== undefined) {
      this.finish(GrpcStatus.INTERNAL, 'grpc: stream ended inside a message');
      return;
    }
    const kind = this.route.kind;
    if (kind === CallKind.UNARY || kind === CallKind.SERVER_STREAM) {
      if (!this.gotRequest) {
        this.finish(GrpcStatus.INTERNAL, 'grpc: the client sent no request message');
        return;
      }
      this.invoke(kind === CallKind.UNARY ? this.unaryCallback() : undefined);
      return;
    }
    this.emit('end');
  }

  /** The stream is gone: reset by the client (`cancelled` true) or closed after our status. */
  cancel(): void {
    if (!this.finished) {
      this.finished = true;
      this.transport.forgetDeadline(this);
    }
    this.dropQueue();
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
    if (this.needDrain) {
      // Writers waiting for room may go on: whatever they write now is dropped.
      this.needDrain = false;
      this.emit('drain');
    }
  }

  /** DeadlineEntry: the deadline passed before a status was decided. */
  expire(): void {
    if (this.finished) return;
    this.finished = true;
    this.cancelled = true;
    // Messages still waiting for window are of no use to a client past its deadline.
    this.dropQueue();
    this.emit('cancelled', 'deadline');
    this.transport.sendStatus(this, GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded');
  }

  /** Our status (END_STREAM) was written. */
  statusWritten(code: number): void {
    if (code === GrpcStatus.OK && this.route.kind !== CallKind.UNARY) this.emit('finish');
  }

  /** The stream was removed from its connection. */
  closed(): void {
    if (this.route.kind !== CallKind.UNARY) this.emit('close');
  }

  /** Owed 'drain' after room was made (called by the connection outside its frame loop). */
  drained(): void {
    this.needDrain = false;
    this.emit('drain');
  }

  /** Appends message octets to the send queue (the connection sends them as windows allow). */
  enqueue(buf: Buffer): void {
    if (this.sendQueue === NO_QUEUE) this.sendQueue = [];
    this.sendQueue.push(buf);
    this.queuedBytes += buf.length;
  }

  /** Empties the send queue's storage once everything in it was sent. */
  queueSent(): void {
    this.sendQueue = NO_QUEUE;
    this.queueHead = 0;
    this.queueOffset = 0;
  }

  /** Forgets queued message octets and a pending status (after a reset). */
  dropQueue(): void {
    this.queueSent();
    this.queuedBytes = 0;
    this.pendingStatus = -1;
  }

  /** Decides the status (once) and hands it to the connection. */
  private finish(code: number, details: string): void {
    if (this.finished) return;
    this.finished = true;
    this.transport.forgetDeadline(this);
    this.transport.sendStatus(this, code, encodeGrpcMessage(details));
  }

  private deliver(msg: Buffer): void {
    let value: unknown;
    try {
      value = this.route.deserialize(msg);
    } catch (err) {
      this.finish(GrpcStatus.INTERNAL, `grpc: error unmarshalling request: ${errorText(err)}`);
      return;
    }
    const kind = this.route.kind;
    if (kind === CallKind.UNARY || kind === CallKind.SERVER_STREAM) {
      if (this.gotRequest) {
        this.finish(GrpcStatus.INTERNAL, 'grpc: the client sent more than one request message');
        return;
      }
      this.gotRequest = true;
      this.request = value;
      return;
    }
    try {
      this.emit('data', value);
    } catch (err) {
      this.finish(GrpcStatus.UNKNOWN, errorText(err));
    }
  }

  private unaryCallback(): (err: unknown, value?: unknown) => void {
    return (err: unknown, value?: unknown): void => this.respond(err, value);
  }

  /** A unary (or client-streaming) handler answered. */
  private respond(err: unknown, value: unknown): void {
    if (this.finished) return;
    if (err !== null && err !== undefined) {
      const st = statusFromError(err);
      this.finish(st.code, st.details);
      return;
    }
    let payload: Buffer;
    try {
      payload = this.route.serialize(value);
    } catch (e) {
      this.finish(GrpcStatus.INTERNAL, `grpc: error while marshaling: ${errorText(e)}`);
      return;
    }
    this.finished = true;
    this.transport.forgetDeadline(this);
    this.transport.sendUnaryResponse(this, payload);
  }

  private invoke(callback: ((err: unknown, value?: unknown) => void) | undefined): void {
    try {
      this.route.handler(this, callback);
    } catch (err) {
      this.finish(GrpcStatus.UNKNOWN, errorText(err));
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
