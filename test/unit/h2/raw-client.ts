/**
 * A raw HTTP/2 client for the native server's tests: it writes exactly the frames a test asks
 * for and records every frame the server sends, decoding the server's header blocks in arrival
 * order (one HPACK decoder per connection, as a real client).
 */
import * as net from 'node:net';
import { CLIENT_PREFACE, FrameFlag, FrameType } from '../../../src/api/h2/constants';
import { HpackDecoder, HpackEncoder, HeaderField } from '../../../src/api/hpack';

/** One frame received from the server. */
export interface RxFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** For HEADERS: the decoded header block (after its CONTINUATION frames). */
  fields?: HeaderField[];
}

/** Builds a frame. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}

/** A gRPC length-prefixed message. */
export function grpcMessage(body: Buffer, compressed = false): Buffer {
  const p = Buffer.alloc(5);
  p[0] = compressed ? 1 : 0;
  p.writeUInt32BE(body.length, 1);
  return Buffer.concat([p, body]);
}

/** Splits concatenated gRPC messages. */
export function splitMessages(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let p = 0;
  while (p + 5 <= data.length) {
    const len = data.readUInt32BE(p + 1);
    out.push(data.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  return out;
}

/** SETTINGS payload from [id, value] pairs. */
export function settingsPayload(params: [number, number][]): Buffer {
  const b = Buffer.alloc(params.length * 6);
  params.forEach(([id, v], i) => {
    b.writeUInt16BE(id, i * 6);
    b.writeUInt32BE(v, i * 6 + 2);
  });
  return b;
}

/** Options of a HEADERS frame sequence. */
export interface HeadersOptions {
  endStream?: boolean;
  /** Adds PADDED with this many padding octets. */
  pad?: number;
  /** Adds PRIORITY (dependency 0, weight 16). */
  priority?: boolean;
  /** Octets of the block in the HEADERS frame; the rest goes in CONTINUATION frames of this size. */
  splitAt?: number;
}

/** The result of one call as the raw client saw it. */
export interface RawResponse {
  headers?: HeaderField[];
  data: Buffer;
  trailers?: HeaderField[];
  /** Error code of a RST_STREAM from the server, if one came. */
  rst?: number;
}

/** A field lookup helper. */
export function field(fields: HeaderField[] | undefined, name: string): string | undefined {
  return fields?.find((f) => f.name === name)?.value;
}

/** Raw client connection. */
export class RawH2Client {
  readonly frames: RxFrame[] = [];
  readonly socket: net.Socket;
  readonly encoder = new HpackEncoder();
  readonly decoder = new HpackDecoder();
  /** Closed by the server (or errored). */
  closed = false;
  private buf = Buffer.alloc(0);
  private block: { streamId: number; flags: number; parts: Buffer[]; first: RxFrame } | undefined;
  private waiters: (() => void)[] = [];
  /** Answer the server's SETTINGS with an ACK automatically. */
  autoAck = true;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and sends the preface and a SETTINGS frame with `settings`. */
  static connect(port: number, settings: [number, number][] = [], sendPreface = true): Promise<RawH2Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => {
        const c = new RawH2Client(s);
        if (sendPreface) c.send(Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0, settingsPayload(settings))]));
        resolve(c);
      });
      s.once('error', reject);
    });
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  /** Encodes `fields` with the connection's encoder and frames them as HEADERS (+ CONTINUATION). */
  headersFrames(streamId: number, fields: HeaderField[], o: HeadersOptions = {}): Buffer {
    const block = this.encoder.encode(fields);
    const split = o.splitAt ?? block.length;
    const first = block.subarray(0, Math.min(split, block.length));
    let flags = o.endStream === true ? FrameFlag.END_STREAM : 0;
    if (first.length === block.length) flags |= FrameFlag.END_HEADERS;
    const parts: Buffer[] = [];
    if (o.pad !== undefined) {
      flags |= FrameFlag.PADDED;
      parts.push(Buffer.from([o.pad]));
    }
    if (o.priority === true) {
      flags |= FrameFlag.PRIORITY;
      parts.push(Buffer.from([0, 0, 0, 0, 15]));
    }
    parts.push(first);
    if (o.pad !== undefined) parts.push(Buffer.alloc(o.pad));
    const out = [frame(FrameType.HEADERS, flags, streamId, Buffer.concat(parts))];
    let pos = first.length;
    while (pos < block.length) {
      const n = Math.min(split, block.length - pos);
      const last = pos + n === block.length;
      out.push(frame(FrameType.CONTINUATION, last ? FrameFlag.END_HEADERS : 0, streamId, block.subarray(pos, pos + n)));
      pos += n;
    }
    return Buffer.concat(out);
  }

  /** The request header fields of a gRPC call to `path`. */
  static requestFields(path: string, extra: HeaderField[] = []): HeaderField[] {
    return [
      { name: ':method', value: 'POST' },
      { name: ':scheme', value: 'http' },
      { name: ':path', value: path },
      { name: ':authority', value: 'http://127.0.0.1:2379' },
      { name: 'content-type', value: 'application/grpc' },
      { name: 'te', value: 'trailers' },
      ...extra,
    ];
  }

  /** Sends a whole unary request: HEADERS, then one DATA frame with the message and END_STREAM. */
  request(streamId: number, path: string, body: Buffer, extra: HeaderField[] = []): void {
    this.send(Buffer.concat([this.headersFrames(streamId, RawH2Client.requestFields(path, extra)), this.dataFrame(streamId, grpcMessage(body), true)]));
  }

  /** A DATA frame (optionally padded). */
  dataFrame(streamId: number, payload: Buffer, endStream = false, pad?: number): Buffer {
    let flags = endStream ? FrameFlag.END_STREAM : 0;
    if (pad === undefined) return frame(FrameType.DATA, flags, streamId, payload);
    flags |= FrameFlag.PADDED;
    return frame(FrameType.DATA, flags, streamId, Buffer.concat([Buffer.from([pad]), payload, Buffer.alloc(pad)]));
  }

  windowUpdate(streamId: number, increment: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(increment, 0);
    this.send(frame(FrameType.WINDOW_UPDATE, 0, streamId, p));
  }

  rst(streamId: number, code: number): void {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(code, 0);
    this.send(frame(FrameType.RST_STREAM, 0, streamId, p));
  }

  /** Waits until `pred` holds for some received frame (searching from `from`); returns it. */
  async waitFrame(pred: (f: RxFrame) => boolean, timeoutMs = 3000, from = 0): Promise<RxFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (pred(f)) return f;
      }
      if (this.closed) throw new Error(`connection closed while waiting; frames: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a frame; frames: ${this.describe()}`);
      await this.wait(left);
    }
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the connection to close');
      await this.wait(left);
    }
  }

  /** Collects the response of stream `streamId` until END_STREAM or RST_STREAM. */
  async response(streamId: number, timeoutMs = 3000): Promise<RawResponse> {
    const end = await this.waitFrame(
      (f) => f.streamId === streamId && (f.type === FrameType.RST_STREAM || (f.type === FrameType.HEADERS && (f.flags & FrameFlag.END_STREAM) !== 0)),
      timeoutMs,
    );
    const res: RawResponse = { data: Buffer.alloc(0) };
    const data: Buffer[] = [];
    for (const f of this.frames) {
      if (f.streamId !== streamId) continue;
      if (f.type === FrameType.HEADERS) {
        if ((f.flags & FrameFlag.END_STREAM) !== 0) {
          res.trailers = f.fields;
          if (res.headers === undefined && field(f.fields, ':status') !== undefined) res.headers = f.fields;
        } else res.headers = f.fields;
      } else if (f.type === FrameType.DATA) {
        data.push(f.payload);
      } else if (f.type === FrameType.RST_STREAM) {
        res.rst = f.payload.readUInt32BE(0);
      }
      if (f === end) break;
    }
    res.data = Buffer.concat(data);
    return res;
  }

  /** Frames received of one type. */
  ofType(type: number): RxFrame[] {
    return this.frames.filter((f) => f.type === type);
  }

  close(): void {
    this.socket.destroy();
  }

  describe(): string {
    const shown = this.frames.slice(-30).map((f) => {
      const base = `${f.type}/${f.flags}/${f.streamId}/${f.payload.length}`;
      return f.type === 7 ? `${base}(${f.payload.subarray(8).toString()})` : base;
    });
    return `${this.frames.length} frames, last: ${shown.join(' ')}`;
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: RxFrame = {
        type: this.buf[3]!,
        flags: this.buf[4]!,
        streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(9, 9 + len)),
      };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      this.onFrame(f);
    }
    this.wake();
  }

  private onFrame(f: RxFrame): void {
    if (f.type === FrameType.SETTINGS && (f.flags & FrameFlag.ACK) === 0 && this.autoAck) {
      this.send(frame(FrameType.SETTINGS, FrameFlag.ACK, 0));
    }
    if (f.type === FrameType.HEADERS) {
      this.block = { streamId: f.streamId, flags: f.flags, parts: [f.payload], first: f };
    } else if (f.type === FrameType.CONTINUATION && this.block !== undefined) {
      this.block.parts.push(f.payload);
    } else {
      return;
    }
    if ((f.flags & FrameFlag.END_HEADERS) !== 0 && this.block !== undefined) {
      this.block.first.fields = this.decoder.decode(Buffer.concat(this.block.parts));
      this.block = undefined;
    }
  }
}
