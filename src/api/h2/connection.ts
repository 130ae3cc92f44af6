/**
 * The server side of one HTTP/2 connection (RFC 9113) carrying gRPC calls, on a raw net.Socket.
 *
 * Input: socket chunks are cut into frames in place (a frame split across chunks is joined once);
 * header blocks (HEADERS + CONTINUATION) are decoded with the connection's HPACK decoder; DATA
 * payloads go to their call, which cuts gRPC messages from them.
 *
 * Output: every frame is appended to a FrameOutput and the connection asks the FlushScheduler for
 * one write at the end of the event-loop turn. DATA respects the peer's connection and stream
 * windows and its SETTINGS_MAX_FRAME_SIZE; what does not fit waits in the call's send queue until
 * a WINDOW_UPDATE (or a SETTINGS change) makes room. While the socket holds more than
 * `congestionLimit` unwritten octets no DATA is produced; above `pauseLimit` reading stops too.
 *
 * Flow control of received data: the whole frame length counts; windows are refilled with
 * WINDOW_UPDATE once half is used (the connection window is raised to `connectionWindowSize` at
 * start, stream windows are announced with SETTINGS_INITIAL_WINDOW_SIZE).
 *
 * Stream states as seen here: a stream is in `streams` from its HEADERS until both sides ended it
 * (our END_STREAM written and theirs received) or it was reset. When our END_STREAM goes out
 * before theirs, RST_STREAM(NO_ERROR) tells the client to stop sending (as grpc-go does).
 * Frames for streams no longer known but not idle (id ≤ the highest seen) are ignored.
 *
 * Connection states: open → draining (GOAWAY sent: streams above its last id are refused, the
 * socket ends once the rest finished) or failed (GOAWAY with an error code, calls cancelled,
 * socket ended) → closed (socket closed: every remaining call is cancelled).
 */
import type { Socket } from 'node:net';
import { ServerCall, CallTransport } from './call';
import {
  CLIENT_PREFACE,
  DEFAULT_WINDOW_SIZE,
  FrameFlag,
  FrameType,
  GrpcStatus,
  H2Error,
  MAX_MAX_FRAME_SIZE,
  MAX_WINDOW_SIZE,
  MIN_MAX_FRAME_SIZE,
  Setting,
} from './constants';
import type { DeadlineQueue } from './deadlines';
import { ExtraField, HeaderBlockDecoder, ResponseHeaderEncoder } from './hpack-codec';
import { HpackError } from '../hpack';
import { COPY_LIMIT, FlushScheduler, Flushable, FrameOutput } from './output';

/** Limits and windows of a connection (see H2ServerOptions for their meaning and defaults). */
export interface ConnectionLimits {
  maxReceiveMessageLength: number;
  streamHighWaterMark: number;
  initialWindowSize: number;
  connectionWindowSize: number;
  maxConcurrentStreams: number;
  maxFrameSize: number;
  maxHeaderBlockSize: number;
  maxHeaderFields: number;
  congestionLimit: number;
  pauseLimit: number;
  closeTimeoutMs: number;
}

/** What a connection needs from its server. */
export interface ConnectionHost {
  readonly scheduler: FlushScheduler;
  readonly deadlines: DeadlineQueue;
  /**
   * A client opened stream `streamId`; its header fields are in `conn.decoder`. Returns the call
   * to register, or undefined when the server answered the stream itself (refuseStream).
   */
  openStream(conn: H2Connection, streamId: number, endStream: boolean): ServerCall | undefined;
  /** The connection's socket closed. */
  connectionClosed(conn: H2Connection): void;
}

/** A violation that ends the connection with GOAWAY(code). */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
const PREFACE_LENGTH = CLIENT_PREFACE.length;

const OPEN = 0;
const DRAINING = 1;
const FAILED = 2;
const CLOSED = 3;

/** One client connection; created by H2GrpcServer.injectConnection. */
export class H2Connection implements CallTransport, Flushable {
  /** Decoder of the client's header blocks (the server reads a new stream's fields from it). */
  readonly decoder: HeaderBlockDecoder = new HeaderBlockDecoder();
  /** "address:port" of the client. */
  readonly peer: string;
  /** Flushable: owned by the scheduler. */
  flushQueued = false;
  /** Open streams by id. */
  readonly streams = new Map<number, ServerCall>();
  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE: the send window of a new stream. */
  peerInitialWindow = DEFAULT_WINDOW_SIZE;
  /** True while the socket holds more than `congestionLimit` unwritten octets. */
  congested = false;

  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private readonly limits: ConnectionLimits;
  private readonly encoder = new ResponseHeaderEncoder();
  private readonly out = new FrameOutput();
  private state = OPEN;
  private prefaceLeft = PREFACE_LENGTH;
  private settingsSeen = false;
  /** Bytes of an incomplete frame, across chunks. */
  private partial: Buffer[] = [];
  private partialLength = 0;
  /** Header block being collected (HEADERS without END_HEADERS, then CONTINUATION). */
  private contStream = 0;
  private contFlags = 0;
  private contParts: Buffer[] = [];
  private contLength = 0;
  /** Highest client stream id seen; streams ≤ it are not idle. */
  private lastStreamId = 0;
  private peerMaxFrameSize = MIN_MAX_FRAME_SIZE;
  /** Octets we may still send on the connection. */
  private sendWindow = DEFAULT_WINDOW_SIZE;
  /** Octets the client may still send on the connection. */
  private recvWindow: number;
  /** Streams waiting for connection window or for the socket to drain. */
  private blockedList: ServerCall[] = [];
  /** Streams owed a 'drain' event (emitted at the next flush). */
  private drainList: ServerCall[] = [];
  private paused = false;
  private endAfterFlush = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private peerGoneAway = false;

  /**
   * Takes over `socket` and sends our SETTINGS. `alreadyRead`: octets read from the socket before
   * (the client preface and whatever followed), processed before any new data.
   */
  constructor(socket: Socket, host: ConnectionHost, limits: ConnectionLimits, alreadyRead: Buffer) {
    this.socket = socket;
    this.host = host;
    this.limits = limits;
    this.peer = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
    this.recvWindow = limits.connectionWindowSize;
    this.writeSettings();
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.on('end', this.onEnd);
    if (alreadyRead.length > 0) this.onData(alreadyRead);
    socket.resume();
  }

  // ---- CallTransport ----

  /** Largest request message accepted, in octets. */
  get maxReceiveMessageLength(): number {
    return this.limits.maxReceiveMessageLength;
  }

  /** Queued octets per stream above which write() answers false. */
  get streamHighWaterMark(): number {
    return this.limits.streamHighWaterMark;
  }

  /** Open streams (for tests and stats). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Sends the response headers of `call` (once). */
  sendHeaders(call: ServerCall, extra?: readonly ExtraField[]): void {
    if (call.headersSent || call.localClosed || this.state >= FAILED) return;
    call.headersSent = true;
    this.writeHeaderBlock(call.id, this.encoder.responseHeaders(extra), false);
  }

  /** Sends one message on `call` (headers first if not yet sent), or queues it for window. */
  sendMessage(call: ServerCall, message: Buffer): void {
    if (call.localClosed || this.state >= FAILED) return;
    if (!call.headersSent) this.sendHeaders(call);
    const len = message.length;
    const total = len + 5;
    if (call.queuedBytes === 0 && !this.congested && total <= call.sendWindow && total <= this.sendWindow && total <= this.peerMaxFrameSize) {
      this.writeData(call, message, total);
      this.requestFlush();
      return;
    }
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(len, 1);
    call.enqueue(prefix);
    if (len > 0) call.enqueue(message);
    this.pump(call);
  }

  /** Headers, one message and OK trailers of a unary call, in one go when the windows allow. */
  sendUnaryResponse(call: ServerCall, message: Buffer): void {
    if (call.localClosed || this.state >= FAILED) return;
    const total = message.length + 5;
    if (call.headersSent || this.congested || total > call.sendWindow || total > this.sendWindow || total > this.peerMaxFrameSize) {
      this.sendMessage(call, message);
      this.sendStatus(call, GrpcStatus.OK, '');
      return;
    }
    call.headersSent = true;
    const headers = this.encoder.responseHeaders();
    const out = this.out;
    out.frameHeader(headers.length, FrameType.HEADERS, FrameFlag.END_HEADERS, call.id, headers.length);
    out.bytes(headers, 0, headers.length);
    this.writeData(call, message, total);
    const trailers = this.encoder.trailers(GrpcStatus.OK, '');
    out.frameHeader(trailers.length, FrameType.HEADERS, FrameFlag.END_HEADERS | FrameFlag.END_STREAM, call.id, trailers.length);
    out.bytes(trailers, 0, trailers.length);
    call.localClosed = true;
    this.requestFlush();
    this.localEnded(call);
  }

  /** Ends `call` with a status: now, or after its queued messages. */
  sendStatus(call: ServerCall, code: number, encodedMessage: string): void {
    if (call.localClosed || this.state >= FAILED) return;
    if (call.queuedBytes > 0) {
      call.pendingStatus = code;
      call.pendingMessage = encodedMessage;
      return;
    }
    this.writeStatus(call, code, encodedMessage);
  }

  /** Resets `call`'s stream with `errorCode` and cancels the call. */
  resetStream(call: ServerCall, errorCode: number): void {
    if (this.streams.get(call.id) !== call) return;
    this.writeRst(call.id, errorCode);
    this.dropStream(call);
  }

  /** Stops tracking the deadline of `call`. */
  forgetDeadline(call: ServerCall): void {
    if (call.heapIndex >= 0) this.host.deadlines.remove(call);
  }

  // ---- for the server ----

  /**
   * Answers a stream the server does not take with a trailers-only response (gRPC status
   * `code`, `encodedMessage`, HTTP `httpStatus`), or with RST_STREAM(`resetCode`) when
   * `resetCode` is given.
   */
  refuseStream(streamId: number, endStream: boolean, code: number, encodedMessage: string, httpStatus = 200, resetCode = -1): void {
    if (this.state >= FAILED) return;
    if (resetCode >= 0) {
      this.writeRst(streamId, resetCode);
      return;
    }
    this.writeHeaderBlock(streamId, this.encoder.trailersOnly(code, encodedMessage, httpStatus), true);
    if (!endStream) this.writeRst(streamId, H2Error.NO_ERROR);
  }

  /**
   * Graceful end: GOAWAY(NO_ERROR) with the last stream id seen; streams opened later are
   * refused, the socket ends once the open streams finished.
   */
  shutdown(): void {
    if (this.state !== OPEN) return;
    this.state = DRAINING;
    this.writeGoAway(H2Error.NO_ERROR, '');
    if (this.streams.size === 0) this.endAfterFlush = true;
    this.requestFlush();
  }

  /** Closes the socket at once; open calls are cancelled. */
  destroy(): void {
    this.socket.destroy();
  }

  // ---- Flushable ----

  /** Emits owed 'drain' events, then writes the gathered frames. */
  flush(): void {
    if (this.state >= FAILED) return;
    if (this.drainList.length > 0) {
      const list = this.drainList;
      this.drainList = [];
      for (const call of list) {
        if (call.needDrain && call.queuedBytes < this.limits.streamHighWaterMark && !this.congested) call.drained();
      }
    }
    if (this.out.length > 0) {
      this.out.writeTo(this.socket);
      const pending = this.socket.writableLength;
      if (pending > this.limits.congestionLimit) this.congested = true;
      if (pending > this.limits.pauseLimit && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
    }
    if (this.endAfterFlush) {
      this.endAfterFlush = false;
      this.endSocket();
    }
  }

  // ---- socket events ----

  private readonly onData = (chunk: Buffer): void => {
    if (this.state >= FAILED) return;
    let buf = chunk;
    let off = 0;
    try {
      if (this.prefaceLeft > 0) {
        off = this.matchPreface(buf);
        if (this.prefaceLeft > 0 || this.state >= FAILED) return;
      }
      if (this.partialLength > 0) {
        const joined = this.joinPartial(buf, off);
        if (joined === undefined) return;
        this.readFrames(joined.frame, 0);
        buf = chunk;
        off = joined.next;
        if (this.state >= FAILED) return;
      }
      off = this.readFrames(buf, off);
    } catch (err) {
      if (err instanceof ConnectionError) {
        this.fail(err.code, err.message);
        return;
      }
      throw err;
    }
    if (off < buf.length && this.state < FAILED) {
      this.partial.push(off === 0 ? buf : buf.subarray(off));
      this.partialLength += buf.length - off;
    }
  };

  private readonly onError = (): void => {
    // 'close' follows and cleans up.
  };

  private readonly onEnd = (): void => {
    // The client half-closed: no more requests can arrive; finish what is open.
    if (this.streams.size === 0) this.endSocket();
  };

  private readonly onDrain = (): void => {
    if (this.state === CLOSED) return;
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
    if (!this.congested) return;
    this.congested = false;
    this.resumeBlocked();
    for (const call of this.streams.values()) if (call.needDrain) this.owesDrain(call);
  };

  private readonly onClose = (): void => {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.out.discard();
    this.cancelAll();
    this.host.connectionClosed(this);
  };

  // ---- input ----

  /** Checks the client preface at `buf[0..]`; returns the offset after the part matched. */
  private matchPreface(buf: Buffer): number {
    const from = PREFACE_LENGTH - this.prefaceLeft;
    const n = Math.min(this.prefaceLeft, buf.length);
    if (buf.compare(CLIENT_PREFACE, from, from + n, 0, n) !== 0) {
      this.state = FAILED;
      this.socket.destroy();
      return n;
    }
    this.prefaceLeft -= n;
    return n;
  }

  /**
   * Completes the incomplete frame kept in `partial` with octets of `chunk` from `off`. Returns
   * the joined frame and the chunk offset after it, or undefined when the chunk is used up.
   */
  private joinPartial(chunk: Buffer, off: number): { frame: Buffer; next: number } | undefined {
    let have = this.partialLength;
    let head = this.partial.length === 1 ? (this.partial[0] as Buffer) : Buffer.concat(this.partial, have);
    if (have < 9) {
      const take = Math.min(9 - have, chunk.length - off);
      head = Buffer.concat([head, chunk.subarray(off, off + take)]);
      off += take;
      have += take;
      if (have < 9) {
        this.partial = [head];
        this.partialLength = have;
        return undefined;
      }
    }
    const len = ((head[0] as number) << 16) | ((head[1] as number) << 8) | (head[2] as number);
    if (len > this.limits.maxFrameSize) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, `frame of ${len} octets exceeds the maximum frame size`);
    const need = 9 + len - have;
    if (chunk.length - off < need) {
      this.partial = [head, off === 0 ? chunk : chunk.subarray(off)];
      this.partialLength = have + chunk.length - off;
      return undefined;
    }
    this.partial = [];
    this.partialLength = 0;
    const frame = need === 0 ? head : Buffer.concat([head, chunk.subarray(off, off + need)], 9 + len);
    return { frame, next: off + need };
  }

  /** Handles every complete frame in `buf` from `off`; returns the offset of the first incomplete one. */
  private readFrames(buf: Buffer, off: number): number {
    const maxFrame = this.limits.maxFrameSize;
    const end = buf.length;
    while (end - off >= 9) {
      const len = ((buf[off] as number) << 16) | ((buf[off + 1] as number) << 8) | (buf[off + 2] as number);
      if (len > maxFrame) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, `frame of ${len} octets exceeds the maximum frame size`);
      if (end - off - 9 < len) break;
      const type = buf[off + 3] as number;
      const flags = buf[off + 4] as number;
      const sid = (((buf[off + 5] as number) & 0x7f) << 24) | ((buf[off + 6] as number) << 16) | ((buf[off + 7] as number) << 8) | (buf[off + 8] as number);
      const p = off + 9;
      off = p + len;
      if (this.contStream !== 0 && type !== FrameType.CONTINUATION) {
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'header block interrupted by another frame');
      }
      if (!this.settingsSeen && type !== FrameType.SETTINGS) {
        throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'the client preface must be followed by SETTINGS');
      }
      switch (type) {
        case FrameType.DATA:
          this.onDataFrame(flags, sid, buf, p, len);
          break;
        case FrameType.HEADERS:
          this.onHeadersFrame(flags, sid, buf, p, len);
          break;
        case FrameType.PRIORITY:
          if (sid === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PRIORITY on stream 0');
          if (len !== 5) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PRIORITY frame of the wrong size');
          break;
        case FrameType.RST_STREAM:
          this.onRstStream(sid, len);
          break;
        case FrameType.SETTINGS:
          this.onSettings(flags, sid, buf, p, len);
          break;
        case FrameType.PUSH_PROMISE:
          throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
        case FrameType.PING:
          this.onPing(flags, sid, buf, p, len);
          break;
        case FrameType.GOAWAY:
          this.onGoAway(sid, len);
          break;
        case FrameType.WINDOW_UPDATE:
          this.onWindowUpdate(sid, buf, p, len);
          break;
        case FrameType.CONTINUATION:
          this.onContinuation(flags, sid, buf, p, len);
          break;
        default:
          break; // unknown frame types are ignored (RFC 9113 §4.1)
      }
      if (this.state >= FAILED) return off;
    }
    return off;
  }

  private onDataFrame(flags: number, sid: number, buf: Buffer, p: number, len: number): void {
    if (sid === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on stream 0');
    let from = p;
    let to = p + len;
    if ((flags & FrameFlag.PADDED) !== 0) {
      const pad = len > 0 ? (buf[p] as number) : 0;
      if (len === 0 || pad >= len) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA padding exceeds the payload');
      from++;
      to -= pad;
    }
    if (len > this.recvWindow) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    this.recvWindow -= len;
    const target = this.limits.connectionWindowSize;
    if (this.recvWindow <= target / 2) {
      this.writeWindowUpdate(0, target - this.recvWindow);
      this.recvWindow = target;
    }
    const call = this.streams.get(sid);
    if (call === undefined) {
      if (sid > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'DATA on an idle stream');
      return;
    }
    if (call.remoteClosed) {
      this.resetStream(call, H2Error.STREAM_CLOSED);
      return;
    }
    if (len > call.recvWindow) {
      this.resetStream(call, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    call.recvWindow -= len;
    if (to > from && !call.finished) call.receiveData(buf, from, to);
    if ((flags & FrameFlag.END_STREAM) !== 0) {
      this.remoteEnded(call);
      return;
    }
    const initial = this.limits.initialWindowSize;
    if (!call.finished && call.recvWindow <= initial / 2 && this.streams.get(sid) === call) {
      this.writeWindowUpdate(sid, initial - call.recvWindow);
      call.recvWindow = initial;
    }
  }

  private onHeadersFrame(flags: number, sid: number, buf: Buffer, p: number, len: number): void {
    if (sid === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let from = p;
    let to = p + len;
    if ((flags & FrameFlag.PADDED) !== 0) {
      if (len === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
      to -= buf[p] as number;
      from++;
    }
    if ((flags & FrameFlag.PRIORITY) !== 0) from += 5;
    if (to < from) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'HEADERS padding exceeds the payload');
    if ((flags & FrameFlag.END_HEADERS) === 0) {
      this.contStream = sid;
      this.contFlags = flags;
      this.contParts = [buf.subarray(from, to)];
      this.contLength = to - from;
      this.checkBlockSize();
      return;
    }
    this.onHeaderBlock(sid, flags, buf, from, to);
  }

  private onContinuation(flags: number, sid: number, buf: Buffer, p: number, len: number): void {
    if (this.contStream === 0 || sid !== this.contStream) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'unexpected CONTINUATION');
    this.contParts.push(buf.subarray(p, p + len));
    this.contLength += len;
    this.checkBlockSize();
    if ((flags & FrameFlag.END_HEADERS) === 0) return;
    const block = Buffer.concat(this.contParts, this.contLength);
    this.contStream = 0;
    this.contParts = [];
    this.contLength = 0;
    this.onHeaderBlock(sid, this.contFlags, block, 0, block.length);
  }

  private checkBlockSize(): void {
    if (this.contLength > this.limits.maxHeaderBlockSize) {
      throw new ConnectionError(H2Error.ENHANCE_YOUR_CALM, `header block larger than ${this.limits.maxHeaderBlockSize} octets`);
    }
  }

  /** A complete header block of stream `sid` (flags of its HEADERS frame). */
  private onHeaderBlock(sid: number, flags: number, buf: Buffer, from: number, to: number): void {
    try {
      this.decoder.decode(buf, from, to, this.limits.maxHeaderFields);
    } catch (err) {
      if (err instanceof HpackError) throw new ConnectionError(H2Error.COMPRESSION_ERROR, `header compression error: ${err.message}`);
      throw err;
    }
    if ((sid & 1) === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'client stream with an even id');
    const endStream = (flags & FrameFlag.END_STREAM) !== 0;
    const existing = this.streams.get(sid);
    if (existing !== undefined) {
      // Trailers from the client: they must end its side.
      if (existing.remoteClosed) this.resetStream(existing, H2Error.STREAM_CLOSED);
      else if (!endStream) this.resetStream(existing, H2Error.PROTOCOL_ERROR);
      else this.remoteEnded(existing);
      return;
    }
    if (sid <= this.lastStreamId) return; // a stream we already closed or reset
    this.lastStreamId = sid;
    if (this.state !== OPEN || this.streams.size >= this.limits.maxConcurrentStreams) {
      this.writeRst(sid, H2Error.REFUSED_STREAM);
      return;
    }
    const call = this.host.openStream(this, sid, endStream);
    if (call === undefined) return;
    this.streams.set(sid, call);
    call.remoteClosed = endStream;
    call.start();
    if (endStream && !call.finished) call.remoteEnd();
  }

  private onRstStream(sid: number, len: number): void {
    if (sid === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (len !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'RST_STREAM frame of the wrong size');
    const call = this.streams.get(sid);
    if (call === undefined) {
      if (sid > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
      return;
    }
    this.dropStream(call);
  }

  private onSettings(flags: number, sid: number, buf: Buffer, p: number, len: number): void {
    if (sid !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & FrameFlag.ACK) !== 0) {
      if (len !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (len % 6 !== 0) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'SETTINGS payload is not a multiple of 6 octets');
    this.settingsSeen = true;
    let windowGrew = false;
    for (let q = p; q < p + len; q += 6) {
      const id = buf.readUInt16BE(q);
      const value = buf.readUInt32BE(q + 2);
      switch (id) {
        case Setting.HEADER_TABLE_SIZE:
          this.encoder.setPeerTableSize(value);
          break;
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH must be 0 or 1');
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          const delta = value - this.peerInitialWindow;
          this.peerInitialWindow = value;
          for (const call of this.streams.values()) {
            call.sendWindow += delta;
            if (call.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
          }
          if (delta > 0) windowGrew = true;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          this.peerMaxFrameSize = value;
          break;
        default:
          break; // MAX_CONCURRENT_STREAMS limits our pushes (none), MAX_HEADER_LIST_SIZE is advisory
      }
    }
    this.out.frameHeader(0, FrameType.SETTINGS, FrameFlag.ACK, 0);
    this.requestFlush();
    if (windowGrew) {
      for (const call of this.streams.values()) if (call.queuedBytes > 0 && !call.blocked) this.pump(call);
    }
  }

  private onPing(flags: number, sid: number, buf: Buffer, p: number, len: number): void {
    if (sid !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'PING on a stream');
    if (len !== 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'PING payload is not 8 octets');
    if ((flags & FrameFlag.ACK) !== 0) return;
    this.out.frameHeader(8, FrameType.PING, FrameFlag.ACK, 0, 8);
    this.out.bytes(buf, p, p + 8);
    if (!this.flushQueued) this.host.scheduler.requestSoon(this);
  }

  private onGoAway(sid: number, len: number): void {
    if (sid !== 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (len < 8) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'GOAWAY payload shorter than 8 octets');
    this.peerGoneAway = true;
    if (this.streams.size === 0) {
      this.endAfterFlush = true;
      this.requestFlush();
    }
  }

  private onWindowUpdate(sid: number, buf: Buffer, p: number, len: number): void {
    if (len !== 4) throw new ConnectionError(H2Error.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload is not 4 octets');
    const inc = buf.readUInt32BE(p) & 0x7fffffff;
    if (sid === 0) {
      if (inc === 0) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'connection WINDOW_UPDATE of 0');
      this.sendWindow += inc;
      if (this.sendWindow > MAX_WINDOW_SIZE) throw new ConnectionError(H2Error.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      if (this.blockedList.length > 0) this.resumeBlocked();
      return;
    }
    const call = this.streams.get(sid);
    if (call === undefined) {
      if (sid > this.lastStreamId) throw new ConnectionError(H2Error.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (inc === 0) {
      this.resetStream(call, H2Error.PROTOCOL_ERROR);
      return;
    }
    call.sendWindow += inc;
    if (call.sendWindow > MAX_WINDOW_SIZE) {
      this.resetStream(call, H2Error.FLOW_CONTROL_ERROR);
      return;
    }
    if (call.queuedBytes > 0 && !call.blocked) this.pump(call);
  }

  // ---- stream life ----

  /** The client ended its side of `call`'s stream. */
  private remoteEnded(call: ServerCall): void {
    call.remoteClosed = true;
    if (call.localClosed) {
      this.removeStream(call);
      return;
    }
    call.remoteEnd();
  }

  /** Our END_STREAM for `call` was written. */
  private localEnded(call: ServerCall): void {
    if (!call.remoteClosed) {
      call.remoteClosed = true;
      this.writeRst(call.id, H2Error.NO_ERROR);
    }
    this.removeStream(call);
  }

  /** Forgets a stream that ended normally. */
  private removeStream(call: ServerCall): void {
    if (!this.streams.delete(call.id)) return;
    call.closed();
    this.afterStreamGone();
  }

  /** Forgets a reset stream: the call is cancelled. */
  private dropStream(call: ServerCall): void {
    if (!this.streams.delete(call.id)) return;
    call.localClosed = true;
    call.remoteClosed = true;
    call.cancel();
    call.closed();
    this.afterStreamGone();
  }

  private afterStreamGone(): void {
    if (this.streams.size === 0 && (this.state === DRAINING || this.peerGoneAway || this.socket.readableEnded)) {
      this.endAfterFlush = true;
      this.requestFlush();
    }
  }

  private cancelAll(): void {
    const calls = [...this.streams.values()];
    this.streams.clear();
    this.blockedList = [];
    this.drainList = [];
    for (const call of calls) {
      call.localClosed = true;
      call.remoteClosed = true;
      call.cancel();
      call.closed();
    }
  }

  // ---- output ----

  private requestFlush(): void {
    if (!this.flushQueued) this.host.scheduler.request(this);
  }

  private writeSettings(): void {
    const l = this.limits;
    const params: [number, number][] = [];
    if (Number.isFinite(l.maxConcurrentStreams) && l.maxConcurrentStreams <= 0xffffffff) params.push([Setting.MAX_CONCURRENT_STREAMS, l.maxConcurrentStreams]);
    if (l.initialWindowSize !== DEFAULT_WINDOW_SIZE) params.push([Setting.INITIAL_WINDOW_SIZE, l.initialWindowSize]);
    if (l.maxFrameSize !== MIN_MAX_FRAME_SIZE) params.push([Setting.MAX_FRAME_SIZE, l.maxFrameSize]);
    this.out.frameHeader(params.length * 6, FrameType.SETTINGS, 0, 0, params.length * 6);
    for (const [id, value] of params) {
      this.out.u8(id >>> 8);
      this.out.u8(id & 0xff);
      this.out.u32(value);
    }
    if (l.connectionWindowSize > DEFAULT_WINDOW_SIZE) this.writeWindowUpdate(0, l.connectionWindowSize - DEFAULT_WINDOW_SIZE);
    this.requestFlush();
  }

  private writeWindowUpdate(sid: number, increment: number): void {
    this.out.frameHeader(4, FrameType.WINDOW_UPDATE, 0, sid, 4);
    this.out.u32(increment);
    this.requestFlush();
  }

  private writeRst(sid: number, code: number): void {
    this.out.frameHeader(4, FrameType.RST_STREAM, 0, sid, 4);
    this.out.u32(code);
    this.requestFlush();
  }

  private writeGoAway(code: number, debug: string): void {
    const dbg = Buffer.from(debug, 'utf8');
    this.out.frameHeader(8 + dbg.length, FrameType.GOAWAY, 0, 0, 8);
    this.out.u32(this.lastStreamId);
    this.out.u32(code);
    this.out.bytes(dbg, 0, dbg.length);
    this.requestFlush();
  }

  /** Writes a header block as HEADERS (+ CONTINUATION frames when over the peer's frame size). */
  private writeHeaderBlock(sid: number, block: Buffer, endStream: boolean): void {
    const out = this.out;
    const max = this.peerMaxFrameSize;
    const es = endStream ? FrameFlag.END_STREAM : 0;
    if (block.length <= max) {
      out.frameHeader(block.length, FrameType.HEADERS, es | FrameFlag.END_HEADERS, sid, block.length < COPY_LIMIT ? block.length : 0);
      out.bytes(block, 0, block.length);
    } else {
      out.frameHeader(max, FrameType.HEADERS, es, sid);
      out.bytes(block, 0, max);
      let pos = max;
      while (pos < block.length) {
        const n = Math.min(max, block.length - pos);
        out.frameHeader(n, FrameType.CONTINUATION, pos + n === block.length ? FrameFlag.END_HEADERS : 0, sid);
        out.bytes(block, pos, pos + n);
        pos += n;
      }
    }
    this.requestFlush();
  }

  /** One DATA frame carrying the whole message (the caller checked windows and frame size). */
  private writeData(call: ServerCall, message: Buffer, total: number): void {
    const len = message.length;
    const out = this.out;
    out.frameHeader(total, FrameType.DATA, 0, call.id, 5 + (len < COPY_LIMIT ? len : 0));
    out.u8(0);
    out.u32(len);
    out.bytes(message, 0, len);
    call.sendWindow -= total;
    this.sendWindow -= total;
  }

  private writeStatus(call: ServerCall, code: number, encodedMessage: string): void {
    let block: Buffer;
    if (call.headersSent) {
      block = this.encoder.trailers(code, encodedMessage);
    } else {
      call.headersSent = true;
      block = this.encoder.trailersOnly(code, encodedMessage);
    }
    this.writeHeaderBlock(call.id, block, true);
    call.localClosed = true;
    call.statusWritten(code);
    this.localEnded(call);
  }

  /** Sends as much of `call`'s queue as the windows allow, then its pending status. */
  private pump(call: ServerCall): void {
    const out = this.out;
    while (call.queuedBytes > 0) {
      if (this.congested || this.sendWindow <= 0) {
        if (!call.blocked) {
          call.blocked = true;
          this.blockedList.push(call);
        }
        return;
      }
      let n = Math.min(call.queuedBytes, call.sendWindow, this.sendWindow, this.peerMaxFrameSize);
      if (n <= 0) break; // the stream's own window: its WINDOW_UPDATE resumes it
      out.frameHeader(n, FrameType.DATA, 0, call.id);
      call.sendWindow -= n;
      this.sendWindow -= n;
      call.queuedBytes -= n;
      const q = call.sendQueue;
      while (n > 0) {
        const b = q[call.queueHead] as Buffer;
        const off = call.queueOffset;
        const take = Math.min(b.length - off, n);
        out.bytes(b, off, off + take);
        n -= take;
        if (off + take === b.length) {
          q[call.queueHead] = EMPTY;
          call.queueHead++;
          call.queueOffset = 0;
        } else {
          call.queueOffset = off + take;
        }
      }
      this.requestFlush();
    }
    if (call.queuedBytes === 0) {
      call.queueSent();
      if (call.pendingStatus >= 0) {
        const code = call.pendingStatus;
        call.pendingStatus = -1;
        this.writeStatus(call, code, call.pendingMessage);
        return;
      }
    }
    if (call.needDrain && call.queuedBytes < this.limits.streamHighWaterMark) this.owesDrain(call);
  }

  private owesDrain(call: ServerCall): void {
    this.drainList.push(call);
    this.requestFlush();
  }

  private resumeBlocked(): void {
    const list = this.blockedList;
    this.blockedList = [];
    for (const call of list) {
      call.blocked = false;
      if (this.streams.get(call.id) === call && call.queuedBytes > 0) this.pump(call);
    }
  }

  // ---- ending ----

  /** A connection error: GOAWAY(code), every call cancelled, the socket ended. */
  private fail(code: number, message: string): void {
    if (this.state >= FAILED) return;
    this.state = FAILED;
    this.partial = [];
    this.partialLength = 0;
    this.cancelAll();
    this.writeGoAway(code, message);
    this.out.writeTo(this.socket);
    this.endSocket();
  }

  /** Ends our side of the socket: nothing is read or written any more; 'close' follows. */
  private endSocket(): void {
    if (this.state === CLOSED) return;
    this.state = FAILED;
    this.out.discard();
    this.socket.end();
    if (this.closeTimer === undefined) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), this.limits.closeTimeoutMs);
      this.closeTimer.unref();
    }
  }
}
