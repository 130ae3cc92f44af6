/**
 * Decides, from the first bytes a client sends, how a client-port connection is served: HTTP/1.x,
 * HTTP/2 handed to gRPC as is, or HTTP/2 whose header blocks must be rewritten first because the
 * client puts a URL ("http://host:port") in `:authority` (etcd 3.4's clientv3 does), which Node's
 * HTTP/2 stack refuses.
 *
 * States:
 * - `preface`: the bytes so far are a prefix of the HTTP/2 client preface. The first octet that
 *   differs makes it HTTP/1.x.
 * - `frames`: the preface is complete. The listener must now send a server preface (an empty
 *   SETTINGS frame): gRPC clients built on grpc-go send no request before they have one. Frames
 *   are scanned for the client's first header block (HEADERS + CONTINUATION up to END_HEADERS),
 *   whose `:authority` is decoded, and for the client's SETTINGS ACK, which answers our SETTINGS
 *   and so must not reach the real server.
 * - decided: once both were seen: `h2` when the authority is a plain host[:port] (the bytes are
 *   replayed without that ACK), `h2-rewrite` when it contains "://". Past `maxBytes` octets (or on
 *   the caller's time limit) with the preface complete the answer is `h2-rewrite`, the path that
 *   is correct for every client; with the preface incomplete it is `http1`.
 *
 * Worked example: etcdctl 3.4 sends the preface and an empty SETTINGS frame, then waits (pending;
 * `prefaceComplete` turns true and the listener writes its SETTINGS). Then come the SETTINGS
 * ACK (pending) and HEADERS with `:authority: http://127.0.0.1:2379` → `h2-rewrite`.
 */
import { CLIENT_PREFACE, FRAME_HEADER_SIZE, FrameFlag, FrameType, parseHeadersPayload, readFrameHeader } from './h2-frames';
import { HpackDecoder, HpackError } from './hpack';

/** The sniffer's answer: keep reading, or how to serve the connection. */
export type SniffVerdict = 'pending' | 'http1' | 'h2' | 'h2-rewrite';

/** Default bound on the octets examined before falling back (64 KiB). */
export const DEFAULT_MAX_SNIFF_BYTES = 64 * 1024;

/** True when an `:authority` value needs rewriting (it carries a scheme, as in "http://h:p"). */
export function authorityHasScheme(authority: string): boolean {
  return authority.includes('://');
}

/** Options of a ConnectionSniffer. */
export interface SnifferOptions {
  /** Octets examined at most before deciding with what is known (default 64 KiB). */
  maxBytes?: number;
}

/** Incremental protocol detection for one connection; feed it every chunk read, in order. */
export class ConnectionSniffer {
  private readonly maxBytes: number;
  private buf: Buffer = Buffer.alloc(0);
  private prefaceDone = false;
  /** Offset of the next frame header to examine (valid once the preface is complete). */
  private scan = CLIENT_PREFACE.length;
  /** Offset and size of the client's first SETTINGS ACK frame, once seen. */
  private ack: { offset: number; size: number } | undefined;
  /** The first header block: stream and fragments so far, until END_HEADERS. */
  private block: { streamId: number; fragments: Buffer[] } | undefined;
  private blockDone = false;
  private authorityValue: string | undefined;
  private verdict: SniffVerdict = 'pending';

  /** Creates a sniffer; see SnifferOptions. */
  constructor(opts: SnifferOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_SNIFF_BYTES;
  }

  /** True once the whole HTTP/2 client preface has arrived: the server preface is now due. */
  get prefaceComplete(): boolean {
    return this.prefaceDone;
  }

  /** The `:authority` of the first request, once its header block was decoded (undefined if absent or malformed). */
  get authority(): string | undefined {
    return this.authorityValue;
  }

  /** Octets received so far. */
  get received(): number {
    return this.buf.length;
  }

  /** The current verdict ('pending' until decided; never changes once decided). */
  get decision(): SniffVerdict {
    return this.verdict;
  }

  /** Every octet received, in order (what an HTTP/1.x server or the rewriting stream must see). */
  bytes(): Buffer {
    return this.buf;
  }

  /**
   * The octets to hand to the HTTP/2 server on the `h2` path: everything received except the
   * client's SETTINGS ACK of our server preface.
   */
  replayForServer(): Buffer {
    const a = this.ack;
    if (a === undefined) return this.buf;
    return Buffer.concat([this.buf.subarray(0, a.offset), this.buf.subarray(a.offset + a.size)]);
  }

  /** True once the client acknowledged our server preface SETTINGS. */
  get settingsAckSeen(): boolean {
    return this.ack !== undefined;
  }

  /** Adds the next chunk read from the connection and returns the verdict. */
  push(chunk: Buffer): SniffVerdict {
    if (this.verdict !== 'pending') return this.verdict;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.prefaceDone) {
      const n = Math.min(this.buf.length, CLIENT_PREFACE.length);
      if (this.buf.compare(CLIENT_PREFACE, 0, n, 0, n) !== 0) return this.decide('http1');
      if (n < CLIENT_PREFACE.length) return 'pending';
      this.prefaceDone = true;
    }
    this.scanFrames();
    if (this.blockDone && this.ack !== undefined) {
      const a = this.authorityValue;
      return this.decide(a !== undefined && authorityHasScheme(a) ? 'h2-rewrite' : 'h2');
    }
    if (this.buf.length > this.maxBytes) return this.decide('h2-rewrite');
    return 'pending';
  }

  /**
   * The caller's time limit passed: decide with what is known. An incomplete preface means
   * HTTP/1.x (the HTTP/1 server answers or times out whatever it is); a complete one means the
   * rewriting path, which serves every HTTP/2 client correctly.
   */
  timeout(): SniffVerdict {
    if (this.verdict !== 'pending') return this.verdict;
    return this.decide(this.prefaceDone ? 'h2-rewrite' : 'http1');
  }

  private decide(v: SniffVerdict): SniffVerdict {
    this.verdict = v;
    return v;
  }

  private scanFrames(): void {
    const buf = this.buf;
    while (this.scan + FRAME_HEADER_SIZE <= buf.length) {
      const h = readFrameHeader(buf, this.scan);
      const end = this.scan + FRAME_HEADER_SIZE + h.length;
      if (end > buf.length) return;
      const payload = buf.subarray(this.scan + FRAME_HEADER_SIZE, end);
      if (h.type === FrameType.SETTINGS && (h.flags & FrameFlag.ACK) !== 0 && this.ack === undefined) {
        this.ack = { offset: this.scan, size: end - this.scan };
      } else if (!this.blockDone) {
        this.collectBlock(h.type, h.flags, h.streamId, payload);
      }
      this.scan = end;
    }
  }

  private collectBlock(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.block === undefined) {
      if (type !== FrameType.HEADERS) return;
      const p = parseHeadersPayload(payload, flags);
      if (p === undefined) return this.finishBlock(undefined);
      this.block = { streamId, fragments: [p.fragment] };
    } else {
      if (type !== FrameType.CONTINUATION || streamId !== this.block.streamId) return this.finishBlock(undefined);
      this.block.fragments.push(payload);
    }
    if ((flags & FrameFlag.END_HEADERS) !== 0) this.finishBlock(Buffer.concat(this.block.fragments));
  }

  /** Records the first block as complete; `block` undefined means malformed (the server will say so). */
  private finishBlock(block: Buffer | undefined): void {
    this.blockDone = true;
    this.block = undefined;
    if (block === undefined) return;
    try {
      for (const f of new HpackDecoder().decode(block)) {
        if (f.name === ':authority') {
          this.authorityValue = f.value;
          break;
        }
      }
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
    }
  }
}
