/**
 * Serves HTTP/2 clients that send a URL as `:authority` (etcd 3.4's clientv3 dials a member's
 * client URL verbatim, so its requests carry `:authority: http://127.0.0.1:2379`). grpc-go accepts
 * that; Node's HTTP/2 stack resets such streams with PROTOCOL_ERROR. On those connections every
 * header block the client sends is decoded (with the client's dynamic table), the authority is
 * cut to host[:port], and the block is encoded again with our own encoder, whose dynamic table the
 * server's decoder then mirrors. Every other frame passes through unchanged and in order; the
 * server's bytes to the client are not touched.
 *
 * The client's first SETTINGS ACK is dropped when the listener sent its own SETTINGS before the
 * server saw the connection (see protocol-sniffer.ts): that ACK answers the listener, not the
 * server, and an unexpected ACK is a connection error for the server.
 *
 * Worked example: HEADERS(stream 1, END_HEADERS) with block 83 86 41 8f <15 octets: Huffman
 * "http://127.0.0.1:2379"> ... becomes HEADERS(stream 1, END_HEADERS) with block 83 86 41 8a
 * <10 octets: Huffman "127.0.0.1:2379"> ..., and the next request's `:authority` goes out as the
 * one octet be (dynamic index 62), since the rewritten value is now in both dynamic tables.
 */
import * as net from 'node:net';
import { Duplex } from 'node:stream';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_SIZE,
  FrameFlag,
  FrameType,
  frameHeaderBlock,
  parseHeadersPayload,
  readFrameHeader,
} from './h2-frames';
import { DEFAULT_HEADER_TABLE_SIZE, HeaderField, HpackDecoder, HpackEncoder, HpackError } from './hpack';

/**
 * The authority a URL-shaped `:authority` stands for: "scheme://[userinfo@]host[:port][/path]"
 * becomes "host[:port]" ("localhost" when the host is empty, as in "unix:///path"). Values
 * without "://" are returned unchanged.
 */
export function normalizeAuthority(value: string): string {
  const i = value.indexOf('://');
  if (i < 0) return value;
  let rest = value.slice(i + 3);
  const end = rest.search(/[/?#]/);
  if (end >= 0) rest = rest.slice(0, end);
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  return rest === '' ? 'localhost' : rest;
}

/** A violation that ends the connection (malformed framing or header compression). */
export class H2RewriteError extends Error {
  override readonly name = 'H2RewriteError';
}

/** Options of an AuthorityRewriter. */
export interface AuthorityRewriterOptions {
  /** Drop the client's first SETTINGS ACK (it answers a SETTINGS the server did not send). */
  stripFirstSettingsAck: boolean;
  /** Largest frame payload the server accepts (its SETTINGS_MAX_FRAME_SIZE); default 16384. */
  maxFrameSize?: number;
  /**
   * SETTINGS_HEADER_TABLE_SIZE of the server: the limit for the client's encoder and the table
   * size our encoder uses toward the server; default 4096.
   */
  headerTableSize?: number;
  /** Largest header block (all fragments) accepted from the client, in octets; default 1 MiB. */
  maxHeaderBlockBytes?: number;
}

type FrameMode = 'pass' | 'collect' | 'drop';

/**
 * The byte-level transformation of the client → server direction of one connection. Pure:
 * `push` takes the client's bytes in order and returns the bytes for the server.
 */
export class AuthorityRewriter {
  private readonly decoder: HpackDecoder;
  private readonly encoder: HpackEncoder;
  private readonly maxFrameSize: number;
  private readonly maxBlock: number;
  private stripAck: boolean;
  private prefaceLeft = CLIENT_PREFACE.length;
  /** Frame header being assembled (9 octets) and how many are present. */
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headHave = 0;
  /** The frame whose payload is being read. */
  private frame: { type: number; flags: number; streamId: number; remaining: number; mode: FrameMode; parts: Buffer[] } | undefined;
  /** The header block being assembled across HEADERS and CONTINUATION frames. */
  private block: { streamId: number; endStream: boolean; priority: Buffer | undefined; fragments: Buffer[]; size: number } | undefined;
  private rewrites = 0;
  private blocks = 0;

  /** Creates a rewriter for a connection whose first byte is the first byte of the client preface. */
  constructor(opts: AuthorityRewriterOptions) {
    const tableSize = opts.headerTableSize ?? DEFAULT_HEADER_TABLE_SIZE;
    this.decoder = new HpackDecoder(tableSize);
    this.encoder = new HpackEncoder({ maxTableSize: tableSize });
    this.maxFrameSize = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.maxBlock = opts.maxHeaderBlockBytes ?? 1024 * 1024;
    this.stripAck = opts.stripFirstSettingsAck;
  }

  /** Header blocks re-encoded so far. */
  get headerBlocks(): number {
    return this.blocks;
  }

  /** `:authority` values rewritten so far. */
  get authoritiesRewritten(): number {
    return this.rewrites;
  }

  /**
   * Consumes the next chunk from the client and returns what to send to the server (possibly
   * nothing, while a frame is incomplete). Throws H2RewriteError on a framing or compression
   * violation; the connection must then be closed.
   */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, chunk.length);
      const from = CLIENT_PREFACE.length - this.prefaceLeft;
      if (chunk.compare(CLIENT_PREFACE, from, from + n, 0, n) !== 0) throw new H2RewriteError('invalid HTTP/2 client preface');
      out.push(chunk.subarray(0, n));
      this.prefaceLeft -= n;
      pos = n;
    }
    while (pos < chunk.length) {
      const f = this.frame;
      if (f === undefined) {
        const n = Math.min(FRAME_HEADER_SIZE - this.headHave, chunk.length - pos);
        chunk.copy(this.head, this.headHave, pos, pos + n);
        this.headHave += n;
        pos += n;
        if (this.headHave === FRAME_HEADER_SIZE) {
          this.headHave = 0;
          this.startFrame(out);
        }
        continue;
      }
      const n = Math.min(f.remaining, chunk.length - pos);
      const piece = chunk.subarray(pos, pos + n);
      pos += n;
      f.remaining -= n;
      if (f.mode === 'pass') out.push(piece);
      else if (f.mode === 'collect') f.parts.push(piece);
      if (f.remaining === 0) this.endFrame(out);
    }
    return out;
  }

  private startFrame(out: Buffer[]): void {
    const h = readFrameHeader(this.head, 0);
    let mode: FrameMode = 'pass';
    if (this.block !== undefined && (h.type !== FrameType.CONTINUATION || h.streamId !== this.block.streamId)) {
      throw new H2RewriteError('header block interrupted by another frame');
    }
    if (h.type === FrameType.HEADERS || h.type === FrameType.CONTINUATION) {
      if (h.type === FrameType.CONTINUATION && this.block === undefined) throw new H2RewriteError('CONTINUATION without a header block');
      if (h.length > this.maxBlock) throw new H2RewriteError('header block too large');
      mode = 'collect';
    } else if (h.type === FrameType.SETTINGS && (h.flags & FrameFlag.ACK) !== 0 && this.stripAck) {
      this.stripAck = false;
      mode = 'drop';
    }
    if (mode === 'pass') out.push(Buffer.from(this.head));
    this.frame = { type: h.type, flags: h.flags, streamId: h.streamId, remaining: h.length, mode, parts: [] };
    if (h.length === 0) this.endFrame(out);
  }

  private endFrame(out: Buffer[]): void {
    const f = this.frame;
    this.frame = undefined;
    if (f === undefined || f.mode !== 'collect') return;
    const payload = f.parts.length === 1 ? (f.parts[0] ?? Buffer.alloc(0)) : Buffer.concat(f.parts);
    if (f.type === FrameType.HEADERS) {
      if (f.streamId === 0) throw new H2RewriteError('HEADERS frame on stream 0');
      const p = parseHeadersPayload(payload, f.flags);
      if (p === undefined) throw new H2RewriteError('HEADERS frame padding or priority exceeds its length');
      this.block = {
        streamId: f.streamId,
        endStream: (f.flags & FrameFlag.END_STREAM) !== 0,
        priority: p.priority,
        fragments: [p.fragment],
        size: p.fragment.length,
      };
    } else {
      const b = this.block;
      if (b === undefined) throw new H2RewriteError('CONTINUATION without a header block');
      b.fragments.push(payload);
      b.size += payload.length;
    }
    const b = this.block;
    if (b === undefined) return;
    if (b.size > this.maxBlock) throw new H2RewriteError('header block too large');
    if ((f.flags & FrameFlag.END_HEADERS) === 0) return;
    this.block = undefined;
    const encoded = this.rewriteBlock(b.fragments.length === 1 ? (b.fragments[0] ?? Buffer.alloc(0)) : Buffer.concat(b.fragments));
    for (const piece of frameHeaderBlock(b.streamId, encoded, b.endStream, b.priority, this.maxFrameSize)) out.push(piece);
  }

  private rewriteBlock(block: Buffer): Buffer {
    let fields: HeaderField[];
    try {
      fields = this.decoder.decode(block);
    } catch (err) {
      if (err instanceof HpackError) throw new H2RewriteError(`header compression error: ${err.message}`);
      throw err;
    }
    for (const f of fields) {
      if (f.name !== ':authority') continue;
      const fixed = normalizeAuthority(f.value);
      if (fixed !== f.value) {
        f.value = fixed;
        this.rewrites++;
      }
    }
    this.blocks++;
    return this.encoder.encode(fields);
  }
}

/**
 * A Duplex standing for a client socket in front of the HTTP/2 server: what the client sends
 * goes through an AuthorityRewriter, what the server writes goes to the socket unchanged. End,
 * close and errors travel both ways; backpressure from the server pauses the socket.
 */
export class AuthorityFixStream extends Duplex {
  private readonly socket: net.Socket;
  private readonly rewriter: AuthorityRewriter;
  private readonly onSocketData = (chunk: Buffer): void => this.forward(chunk);
  private readonly onSocketEnd = (): void => {
    this.push(null);
  };
  private readonly onSocketError = (err: Error): void => {
    this.destroy(err);
  };
  private readonly onSocketClose = (): void => {
    this.destroy();
  };

  /**
   * Takes over `socket` (which must be paused, with no 'data' listener): `initial` holds the
   * octets already read from it (starting with the client preface); reading resumes when the
   * server first reads.
   */
  constructor(socket: net.Socket, initial: Buffer, opts: AuthorityRewriterOptions) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    this.rewriter = new AuthorityRewriter(opts);
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    if (initial.length > 0) this.forward(initial);
  }

  /** The client's address (of the underlying socket). */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** The client's port (of the underlying socket). */
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }

  /** The rewriter's counters: header blocks re-encoded and authorities rewritten. */
  get counters(): { headerBlocks: number; authoritiesRewritten: number } {
    return { headerBlocks: this.rewriter.headerBlocks, authoritiesRewritten: this.rewriter.authoritiesRewritten };
  }

  private forward(chunk: Buffer): void {
    if (this.destroyed) return;
    let pieces: Buffer[];
    try {
      pieces = this.rewriter.push(chunk);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (pieces.length === 0) return;
    const data = pieces.length === 1 ? (pieces[0] ?? Buffer.alloc(0)) : Buffer.concat(pieces);
    if (!this.push(data)) this.socket.pause();
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, (err) => callback(err ?? null));
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: (error?: Error | null) => void): void {
    const last = chunks.length - 1;
    this.socket.cork();
    chunks.forEach((c, i) => {
      if (i === last) this.socket.write(c.chunk, (err) => callback(err ?? null));
      else this.socket.write(c.chunk);
    });
    this.socket.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.off('data', this.onSocketData);
    this.socket.off('end', this.onSocketEnd);
    this.socket.off('error', this.onSocketError);
    this.socket.off('close', this.onSocketClose);
    // The socket may still emit an error while closing; nothing listens for it any more.
    this.socket.on('error', () => undefined);
    this.socket.destroy();
    callback(err);
  }
}
