/**
 * The peer wire format: length-prefixed frames with a type byte, and the codecs of the small
 * control payloads (handshake, refusal, snapshot end and result). Raft messages themselves are
 * encoded by `encodeMessage` from src/raft. The layout is documented in README.md.
 *
 *   frame = len:u32be | type:u8 | payload[len]
 */

/** Version of the peer protocol carried in every handshake; a different version is refused. */
export const PROTOCOL_VERSION = 1;

/** Bytes before a frame's payload: the u32 length and the type byte. */
export const FRAME_HEADER_BYTES = 5;

/**
 * Largest payload a receiver accepts (64 MiB). A larger length means a peer speaking another
 * protocol or a corrupt stream; the connection is closed.
 */
export const MAX_FRAME_PAYLOAD = 64 * 1024 * 1024;

/** Frame types. Numbers are part of the wire format. */
export enum FrameType {
  /** Dialer → listener, first frame of every connection: see {@link Hello}. */
  Hello = 1,
  /** Listener → dialer: the handshake was accepted. Empty payload. */
  Accept = 2,
  /** Listener → dialer: the connection is refused (or dropped later); see {@link Refusal}. */
  Reject = 3,
  /** One Raft message, encoded by `encodeMessage`. */
  Message = 4,
  /** Snapshot connection, dialer → listener: a piece of the state data. */
  SnapshotChunk = 5,
  /** Snapshot connection, dialer → listener: sha256 and byte count of all chunks. */
  SnapshotEnd = 6,
  /** Snapshot connection, listener → dialer: the outcome; see {@link SnapshotResult}. */
  SnapshotResult = 7,
  /** Query connection, listener → dialer: the cluster id and member list as JSON. */
  MembersInfo = 8,
  /** Rpc connection, dialer → listener: one request (JSON). */
  RpcRequest = 9,
  /** Rpc connection, listener → dialer: the answer (JSON: {ok} or {error}). */
  RpcResponse = 10,
}

/** What a connection carries, announced in the handshake. */
export enum ConnectionKind {
  /** The dialer's persistent message stream to the listener. */
  Stream = 1,
  /** One snapshot: a MsgSnap frame, chunks, an end frame; the listener answers with a result. */
  Snapshot = 2,
  /**
   * A member joining an existing cluster asks who is in it (it knows neither its id nor the
   * cluster id yet): no identity checks, one MembersInfo answer, then the listener closes.
   */
  Query = 3,
  /** One request to the member (e.g. a lease keep-alive forwarded to the leader) and its answer. */
  Rpc = 4,
}

/** Why a listener refuses a connection. Numbers are part of the wire format. */
export enum RefusalCode {
  /** The dialer speaks another protocol version. */
  IncompatibleVersion = 1,
  /** The dialer belongs to another cluster. */
  ClusterIdMismatch = 2,
  /** The dialer was removed from the cluster; it should stop itself. */
  MemberRemoved = 3,
  /** The dialer is not a member the listener knows (it may learn of it later). */
  SenderNotFound = 4,
  /** The handshake names another member as receiver. */
  ReceiverMismatch = 5,
}

/** The reason text sent with each refusal code (the texts etcd's peer handlers answer with). */
export const REFUSAL_REASONS: Readonly<Record<RefusalCode, string>> = {
  [RefusalCode.IncompatibleVersion]: 'incompatible version',
  [RefusalCode.ClusterIdMismatch]: 'cluster ID mismatch',
  [RefusalCode.MemberRemoved]: 'the member has been permanently removed from the cluster',
  [RefusalCode.SenderNotFound]: 'error sender not found',
  [RefusalCode.ReceiverMismatch]: 'to field mismatch',
};

/** A protocol violation by the remote end (bad frame, bad payload, unexpected frame). */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

/** Handshake payload. Ids are unsigned 64-bit. */
export interface Hello {
  version: number;
  kind: ConnectionKind;
  clusterId: bigint;
  from: bigint;
  to: bigint;
}

/** Refusal payload: a code and a human-readable reason. */
export interface Refusal {
  code: RefusalCode;
  reason: string;
}

/** Snapshot result payload: whether the receiver delivered the snapshot, and why not. */
export interface SnapshotResult {
  ok: boolean;
  reason: string;
}

/** Snapshot end payload: sha256 over the concatenated chunk bytes, and their total length. */
export interface SnapshotEnd {
  sha256: Uint8Array;
  bytes: number;
}

const HELLO_BYTES = 1 + 1 + 8 + 8 + 8;

/** Writes a frame header for a payload of `len` bytes at `off` in `buf`. */
export function writeFrameHeader(buf: Buffer, off: number, type: FrameType, len: number): void {
  buf.writeUInt32BE(len, off);
  buf[off + 4] = type;
}

/** Returns one complete frame (header and a copy of `payload`) in a new buffer. */
export function encodeFrame(type: FrameType, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, type, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** The Hello frame for `h`. */
export function encodeHello(h: Hello): Buffer {
  const p = Buffer.alloc(HELLO_BYTES);
  p[0] = h.version;
  p[1] = h.kind;
  p.writeBigUInt64BE(BigInt.asUintN(64, h.clusterId), 2);
  p.writeBigUInt64BE(BigInt.asUintN(64, h.from), 10);
  p.writeBigUInt64BE(BigInt.asUintN(64, h.to), 18);
  return encodeFrame(FrameType.Hello, p);
}

/**
 * Decodes a Hello payload. The version is returned as sent (the caller decides about it); the
 * length must match and the kind must be known, else ProtocolError. A payload of another length
 * with a different first byte is reported as version 0, so a future layout is refused as an
 * incompatible version rather than as garbage.
 */
export function decodeHello(p: Buffer): Hello {
  if (p.length !== HELLO_BYTES) {
    if (p.length >= 1 && p[0] !== PROTOCOL_VERSION) {
      return { version: p[0] ?? 0, kind: ConnectionKind.Stream, clusterId: 0n, from: 0n, to: 0n };
    }
    throw new ProtocolError(`bad hello length ${p.length}`);
  }
  const kind = p[1];
  if (kind !== ConnectionKind.Stream && kind !== ConnectionKind.Snapshot && kind !== ConnectionKind.Query && kind !== ConnectionKind.Rpc) {
    throw new ProtocolError(`unknown connection kind ${String(kind)}`);
  }
  return {
    version: p[0] ?? 0,
    kind,
    clusterId: p.readBigUInt64BE(2),
    from: p.readBigUInt64BE(10),
    to: p.readBigUInt64BE(18),
  };
}

/** The Reject frame for `code`, with its standard reason text. */
export function encodeRefusal(code: RefusalCode): Buffer {
  const reason = Buffer.from(REFUSAL_REASONS[code], 'utf8');
  const p = Buffer.allocUnsafe(1 + reason.length);
  p[0] = code;
  reason.copy(p, 1);
  return encodeFrame(FrameType.Reject, p);
}

/** Decodes a Reject payload; throws ProtocolError on an unknown code. */
export function decodeRefusal(p: Buffer): Refusal {
  const code = p[0];
  if (code === undefined || !(code in REFUSAL_REASONS)) {
    throw new ProtocolError(`unknown refusal code ${String(code)}`);
  }
  return { code: code as RefusalCode, reason: p.subarray(1).toString('utf8') };
}

/** The SnapshotEnd frame. `bytes` must be a safe integer. */
export function encodeSnapshotEnd(e: SnapshotEnd): Buffer {
  if (e.sha256.length !== 32) throw new RangeError('sha256 digest must be 32 bytes');
  const p = Buffer.allocUnsafe(40);
  p.set(e.sha256, 0);
  p.writeBigUInt64BE(BigInt(e.bytes), 32);
  return encodeFrame(FrameType.SnapshotEnd, p);
}

/** Decodes a SnapshotEnd payload; throws ProtocolError on a bad length or an unsafe count. */
export function decodeSnapshotEnd(p: Buffer): SnapshotEnd {
  if (p.length !== 40) throw new ProtocolError(`bad snapshot end length ${p.length}`);
  const bytes = p.readBigUInt64BE(32);
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new ProtocolError('snapshot byte count out of range');
  return { sha256: p.subarray(0, 32), bytes: Number(bytes) };
}

/** The SnapshotResult frame. */
export function encodeSnapshotResult(r: SnapshotResult): Buffer {
  const reason = Buffer.from(r.reason, 'utf8');
  const p = Buffer.allocUnsafe(1 + reason.length);
  p[0] = r.ok ? 1 : 0;
  reason.copy(p, 1);
  return encodeFrame(FrameType.SnapshotResult, p);
}

/** Decodes a SnapshotResult payload; throws ProtocolError when empty. */
export function decodeSnapshotResult(p: Buffer): SnapshotResult {
  if (p.length < 1) throw new ProtocolError('empty snapshot result');
  return { ok: p[0] === 1, reason: p.subarray(1).toString('utf8') };
}

/** One decoded frame. `payload` may be a view into a received buffer; the frame owns it. */
export interface Frame {
  type: number;
  payload: Buffer;
}

/**
 * Reassembles frames from the chunks a socket delivers. Not tied to a socket: push chunks, then
 * call `next()` until it returns undefined. Throws ProtocolError from `next()` when a header
 * announces more than {@link MAX_FRAME_PAYLOAD} bytes.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  /** Total bytes held in `chunks` (≥ 0). */
  private held = 0;

  /** Appends received bytes. The reader keeps a reference to `chunk`. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.held += chunk.length;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.held;
  }

  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Frame | undefined {
    if (this.held < FRAME_HEADER_BYTES) return undefined;
    const head = this.peek(FRAME_HEADER_BYTES);
    const len = head.readUInt32BE(0);
    const type = head[4] ?? 0;
    if (len > MAX_FRAME_PAYLOAD) throw new ProtocolError(`frame of ${len} bytes exceeds the limit`);
    if (this.held < FRAME_HEADER_BYTES + len) return undefined;
    this.consume(FRAME_HEADER_BYTES);
    return { type, payload: this.consume(len) };
  }

  /** The first `n` bytes (n ≤ held) without consuming them. */
  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks, n);
  }

  /** Removes and returns the first `n` bytes (n ≤ held); a view when they sit in one chunk. */
  private consume(n: number): Buffer {
    this.held -= n;
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, n - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    return out;
  }
}
