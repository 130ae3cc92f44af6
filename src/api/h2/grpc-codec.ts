/**
 * gRPC-over-HTTP/2 text rules (the gRPC "PROTOCOL-HTTP2" document): the `grpc-timeout` header,
 * the percent-encoding of `grpc-message`, the content-type check, and how a handler's error
 * becomes a status.
 */
import { GrpcStatus } from './constants';

/** Milliseconds per unit of a `grpc-timeout` value. */
const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
};

/**
 * Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n). Returns the
 * timeout in milliseconds (possibly fractional), or undefined when the value is malformed.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const n = value.length;
  if (n < 2 || n > 9) return undefined;
  const unit = TIMEOUT_UNIT_MS[value.charAt(n - 1)];
  if (unit === undefined) return undefined;
  let v = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = value.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    v = v * 10 + c;
  }
  return v * unit;
}

/**
 * Percent-encodes a status message for `grpc-message`: the UTF-8 octets outside 0x20..0x7E and
 * '%' itself become "%XX" (upper-case hex); everything else is kept.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  const bytes = Buffer.from(message, 'utf8');
  let out = '';
  for (const b of bytes) {
    if (b < 0x20 || b > 0x7e || b === 0x25) out += `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/** Reverses encodeGrpcMessage (invalid escapes are kept as they are). */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  const out: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c === 0x25 && i + 2 < encoded.length && /^[0-9a-fA-F]{2}$/.test(encoded.slice(i + 1, i + 3))) {
      out.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(c & 0xff);
    }
  }
  return Buffer.from(out).toString('utf8');
}

/**
 * True when a request `content-type` is gRPC's: "application/grpc" alone or followed by "+"
 * (a message format) or ";" (parameters).
 */
export function isGrpcContentType(value: string): boolean {
  if (!value.startsWith('application/grpc')) return false;
  if (value.length === 16) return true;
  const c = value.charAt(16);
  return c === '+' || c === ';';
}

/** A status as sent in trailers: a code (0..16) and a plain-text message. */
export interface CallStatus {
  code: number;
  details: string;
}

/**
 * The status a handler's error stands for, as grpc-js reads it: a numeric `code` in 0..16 (else
 * UNKNOWN) and `details` when it is a string (else the Error's `message`, else "").
 */
export function statusFromError(err: unknown): CallStatus {
  if (typeof err !== 'object' || err === null) return { code: GrpcStatus.UNKNOWN, details: String(err) };
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  const code = typeof e.code === 'number' && Number.isInteger(e.code) && e.code >= 0 && e.code <= 16 ? e.code : GrpcStatus.UNKNOWN;
  let details = '';
  if (typeof e.details === 'string') details = e.details;
  else if (typeof e.message === 'string') details = e.message;
  return { code, details };
}
