/**
 * The small part of HTTP/2 framing (RFC 9113 §3.4, §4, §6) the client listener needs to look at
 * a connection before handing it on: the client connection preface, frame headers, the HEADERS
 * and CONTINUATION frame layout, and an empty server SETTINGS frame.
 *
 * Frame layout: length (24 bits) | type (8) | flags (8) | R + stream id (1 + 31) | payload.
 */

import { CLIENT_PREFACE, FrameFlag, FrameType } from './h2/constants';

export { CLIENT_PREFACE, FrameFlag, FrameType };

/** Size of a frame header in octets. */
export const FRAME_HEADER_SIZE = 9;

/** The initial (and, for our server, the only) SETTINGS_MAX_FRAME_SIZE: largest payload a peer may send. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;

/** A decoded frame header. */
export interface FrameHeader {
  /** Payload length in octets (0..2^24-1). */
  length: number;
  type: number;
  flags: number;
  /** Stream identifier with the reserved bit cleared. */
  streamId: number;
}

/** Reads the 9-octet frame header at `buf[offset]`; the caller guarantees 9 octets are there. */
export function readFrameHeader(buf: Uint8Array, offset: number): FrameHeader {
  const b = (i: number): number => buf[offset + i] ?? 0;
  return {
    length: (b(0) << 16) | (b(1) << 8) | b(2),
    type: b(3),
    flags: b(4),
    streamId: ((b(5) & 0x7f) * 0x1000000) + ((b(6) << 16) | (b(7) << 8) | b(8)),
  };
}

/** Builds a 9-octet frame header. */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h[0] = (length >>> 16) & 0xff;
  h[1] = (length >>> 8) & 0xff;
  h[2] = length & 0xff;
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return h;
}

/**
 * An empty SETTINGS frame: a valid server connection preface that announces no parameters, so
 * the client assumes the protocol defaults until the server sends its own SETTINGS.
 */
export function emptySettingsFrame(): Buffer {
  return frameHeader(0, FrameType.SETTINGS, 0, 0);
}

/** The header block fragment of a HEADERS frame payload, and the priority fields if present. */
export interface HeadersPayload {
  /** Stream dependency and weight (5 octets) when the PRIORITY flag is set. */
  priority: Buffer | undefined;
  fragment: Buffer;
}

/**
 * Splits a HEADERS payload into priority fields and fragment, dropping padding. Returns undefined
 * when the lengths are inconsistent (a PROTOCOL_ERROR).
 */
export function parseHeadersPayload(payload: Buffer, flags: number): HeadersPayload | undefined {
  let start = 0;
  let end = payload.length;
  if ((flags & FrameFlag.PADDED) !== 0) {
    const pad = payload[0];
    if (pad === undefined) return undefined;
    start = 1;
    end -= pad;
  }
  let priority: Buffer | undefined;
  if ((flags & FrameFlag.PRIORITY) !== 0) {
    if (start + 5 > end) return undefined;
    priority = payload.subarray(start, start + 5);
    start += 5;
  }
  if (end < start) return undefined;
  return { priority, fragment: payload.subarray(start, end) };
}

/**
 * Frames one header block as a HEADERS frame followed by as many CONTINUATION frames as needed
 * so no payload exceeds `maxFrameSize`. `endStream` sets END_STREAM on the HEADERS frame;
 * `priority` (5 octets) is carried in the HEADERS frame with the PRIORITY flag. Padding is never
 * added. Returns the frames' octets as a list of buffers.
 */
export function frameHeaderBlock(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  priority: Buffer | undefined,
  maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE,
): Buffer[] {
  const out: Buffer[] = [];
  const prioLen = priority === undefined ? 0 : priority.length;
  const firstLen = Math.min(block.length, maxFrameSize - prioLen);
  let flags = endStream ? FrameFlag.END_STREAM : 0;
  if (priority !== undefined) flags |= FrameFlag.PRIORITY;
  if (firstLen === block.length) flags |= FrameFlag.END_HEADERS;
  out.push(frameHeader(prioLen + firstLen, FrameType.HEADERS, flags, streamId));
  if (priority !== undefined) out.push(priority);
  out.push(block.subarray(0, firstLen));
  let pos = firstLen;
  while (pos < block.length) {
    const len = Math.min(block.length - pos, maxFrameSize);
    const last = pos + len === block.length;
    out.push(frameHeader(len, FrameType.CONTINUATION, last ? FrameFlag.END_HEADERS : 0, streamId));
    out.push(block.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}
