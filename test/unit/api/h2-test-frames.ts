/**
 * Builders and a parser of HTTP/2 frames for the listener tests: a client connection is written
 * frame by frame as a real client would, and the bytes that reach the server are split back into
 * frames to be compared.
 */
import { CLIENT_PREFACE, FRAME_HEADER_SIZE, FrameFlag, FrameType, frameHeader, readFrameHeader } from '../../../src/api/h2-frames';

/** One frame with its payload. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** Serializes a frame. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([frameHeader(payload.length, type, flags, streamId), payload]);
}

/** A client SETTINGS frame with a couple of parameters (as grpc-go sends). */
export function clientSettings(): Buffer {
  const p = Buffer.alloc(12);
  p.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  p.writeUInt32BE(4194304, 2);
  p.writeUInt16BE(0x5, 6); // SETTINGS_MAX_FRAME_SIZE
  p.writeUInt32BE(16384, 8);
  return frame(FrameType.SETTINGS, 0, 0, p);
}

/** SETTINGS with the ACK flag. */
export function settingsAck(): Buffer {
  return frame(FrameType.SETTINGS, FrameFlag.ACK, 0);
}

/** A connection-level WINDOW_UPDATE. */
export function windowUpdate(increment: number, streamId = 0): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(increment, 0);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, p);
}

/** A PING (8 octets of opaque data). */
export function ping(ack = false): Buffer {
  return frame(FrameType.PING, ack ? FrameFlag.ACK : 0, 0, Buffer.from('01234567'));
}

/** A DATA frame. */
export function data(streamId: number, payload: Buffer, endStream = false): Buffer {
  return frame(FrameType.DATA, endStream ? FrameFlag.END_STREAM : 0, streamId, payload);
}

/** Options for a HEADERS frame built from a block. */
export interface HeadersOptions {
  endStream?: boolean;
  /** Pad length: adds the PADDED flag, the pad length octet and that many zero octets. */
  pad?: number;
  /** Stream dependency and weight: adds the PRIORITY flag. */
  priority?: { dependsOn: number; weight: number };
  /** Split the block: the HEADERS frame carries this many octets, CONTINUATION frames the rest in pieces of this size. */
  splitAt?: number;
}

/** HEADERS (+ CONTINUATION) frames carrying `block`. */
export function headers(streamId: number, block: Buffer, o: HeadersOptions = {}): Buffer {
  const split = o.splitAt ?? block.length;
  const first = block.subarray(0, split);
  let flags = o.endStream === true ? FrameFlag.END_STREAM : 0;
  if (split >= block.length) flags |= FrameFlag.END_HEADERS;
  const parts: Buffer[] = [];
  if (o.pad !== undefined) {
    flags |= FrameFlag.PADDED;
    parts.push(Buffer.from([o.pad]));
  }
  if (o.priority !== undefined) {
    flags |= FrameFlag.PRIORITY;
    const p = Buffer.alloc(5);
    p.writeUInt32BE(o.priority.dependsOn, 0);
    p[4] = o.priority.weight;
    parts.push(p);
  }
  parts.push(first);
  if (o.pad !== undefined) parts.push(Buffer.alloc(o.pad));
  const out = [frame(FrameType.HEADERS, flags, streamId, Buffer.concat(parts))];
  for (let pos = split; pos < block.length; pos += Math.max(1, split)) {
    const piece = block.subarray(pos, pos + Math.max(1, split));
    const last = pos + piece.length >= block.length;
    out.push(frame(FrameType.CONTINUATION, last ? FrameFlag.END_HEADERS : 0, streamId, piece));
  }
  return Buffer.concat(out);
}

/** The client preface. */
export const PREFACE = CLIENT_PREFACE;

/** Splits bytes (after the preface, which must be there) into frames; throws on a trailing partial frame. */
export function parseFrames(buf: Buffer, hasPreface = true): Frame[] {
  let pos = 0;
  if (hasPreface) {
    if (!buf.subarray(0, CLIENT_PREFACE.length).equals(CLIENT_PREFACE)) throw new Error('missing preface');
    pos = CLIENT_PREFACE.length;
  }
  const out: Frame[] = [];
  while (pos < buf.length) {
    if (pos + FRAME_HEADER_SIZE > buf.length) throw new Error('partial frame header');
    const h = readFrameHeader(buf, pos);
    const end = pos + FRAME_HEADER_SIZE + h.length;
    if (end > buf.length) throw new Error('partial frame payload');
    out.push({ type: h.type, flags: h.flags, streamId: h.streamId, payload: buf.subarray(pos + FRAME_HEADER_SIZE, end) });
    pos = end;
  }
  return out;
}

/** Splits a buffer into pieces of the given sizes (cycled), as a socket might deliver it. */
export function chunked(buf: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  let i = 0;
  while (pos < buf.length) {
    const n = Math.max(1, sizes[i % sizes.length] ?? 1);
    out.push(buf.subarray(pos, pos + n));
    pos += n;
    i++;
  }
  return out;
}
