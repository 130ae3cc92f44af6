/**
 * Binary codec for write-ahead log records.
 *
 * A record is `crc:u32le | len:u32le | type:u8 | payload[len]`. The CRC-32C covers `len`, `type`
 * and the payload and is chained: it starts from the CRC of the previous record in the same
 * segment (a segment header record starts from 0). Numbers inside payloads are little-endian;
 * terms and indexes are stored as 64-bit unsigned values and must be safe integers on decode.
 */
import { crc32cUpdate } from './crc32c';
import { EntryType, nodeId } from '../raft/types';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from '../raft/types';

/** Bytes before a record's payload: crc (4), length (4), type (1). */
export const RECORD_HEADER_BYTES = 9;

/** Kinds of WAL records. The numeric values are part of the on-disk format. */
export enum RecordType {
  /** First record of every segment: format version, sequence, first index, previous segment's last CRC. */
  SegmentHeader = 1,
  /** One Raft log entry. */
  Entry = 2,
  /** A Raft hard state (term, vote, commit). */
  HardState = 3,
  /** A snapshot marker: a snapshot at (index, term) with its configuration is durable. */
  Snapshot = 4,
}

/** On-disk format version written into every segment header. */
export const WAL_FORMAT_VERSION = 1;

/** Payload bytes of a segment header: version (1), seq (8), first index (8), previous CRC (4). */
const SEGMENT_HEADER_PAYLOAD = 21;
/** Fixed payload bytes of an entry record before its data: term (8), index (8), type (1). */
const ENTRY_FIXED_PAYLOAD = 17;
/** Payload bytes of a hard state record: term, vote, commit (8 each). */
const HARD_STATE_PAYLOAD = 24;
/** The largest payload a record may declare. */
export const MAX_RECORD_PAYLOAD = 0xffffffff;

const TWO_32 = 0x1_0000_0000;
/** The largest high word of a 64-bit value that still gives a safe integer. */
const MAX_SAFE_HIGH = 0x1f_ffff;

/** Thrown by the payload decoders when a CRC-valid record's payload is malformed. */
export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
}

/** Contents of a segment header record. */
export interface SegmentHeader {
  version: number;
  /** Segment sequence number (matches the file name). */
  seq: number;
  /** The index the segment was expected to start at when it was created (matches the file name). */
  firstIndex: number;
  /** CRC of the last record of the previous segment (0 for the first segment ever). */
  prevCrc: number;
}

/** Encoded size of an entry record, header included. */
export function entryRecordSize(e: Entry): number {
  return RECORD_HEADER_BYTES + ENTRY_FIXED_PAYLOAD + e.data.length;
}

/** Encoded size of a hard state record, header included. */
export const HARD_STATE_RECORD_BYTES = RECORD_HEADER_BYTES + HARD_STATE_PAYLOAD;

/** Encoded size of a segment header record, header included. */
export const SEGMENT_HEADER_RECORD_BYTES = RECORD_HEADER_BYTES + SEGMENT_HEADER_PAYLOAD;

/** Encoded size of a snapshot marker record, header included. */
export function snapshotRecordSize(meta: SnapshotMeta): number {
  return RECORD_HEADER_BYTES + 16 + 4 + 8 * meta.confState.voters.length + 4 + 8 * meta.confState.learners.length;
}

/**
 * Appends records into a caller-sized buffer, keeping the CRC chain. The caller computes the
 * exact size with the `*Size` helpers first; writing past the end throws a RangeError.
 * `crc` is the CRC of the last record written (the seed of the next one).
 */
export class RecordWriter {
  /** Next free byte in `buf`. */
  off = 0;

  /** @param buf destination; @param crc CRC of the record preceding the first one written here. */
  constructor(
    readonly buf: Buffer,
    public crc: number,
  ) {}

  /** Writes a segment header record. Its CRC chain starts from 0, whatever `crc` was. */
  putSegmentHeader(h: SegmentHeader): void {
    const p = this.begin(RecordType.SegmentHeader, SEGMENT_HEADER_PAYLOAD);
    const b = this.buf;
    b[p] = h.version;
    writeU64(b, p + 1, h.seq);
    writeU64(b, p + 9, h.firstIndex);
    b.writeUInt32LE(h.prevCrc >>> 0, p + 17);
    this.crc = 0;
    this.end(p + SEGMENT_HEADER_PAYLOAD);
  }

  /** Writes one entry record. */
  putEntry(e: Entry): void {
    const p = this.begin(RecordType.Entry, ENTRY_FIXED_PAYLOAD + e.data.length);
    const b = this.buf;
    writeU64(b, p, e.term);
    writeU64(b, p + 8, e.index);
    b[p + 16] = e.type;
    b.set(e.data, p + ENTRY_FIXED_PAYLOAD);
    this.end(p + ENTRY_FIXED_PAYLOAD + e.data.length);
  }

  /** Writes one hard state record. */
  putHardState(hs: HardState): void {
    const p = this.begin(RecordType.HardState, HARD_STATE_PAYLOAD);
    const b = this.buf;
    writeU64(b, p, hs.term);
    b.writeBigUInt64LE(hs.vote, p + 8);
    writeU64(b, p + 16, hs.commit);
    this.end(p + HARD_STATE_PAYLOAD);
  }

  /** Writes one snapshot marker record. */
  putSnapshot(meta: SnapshotMeta): void {
    const { voters, learners } = meta.confState;
    const len = 16 + 4 + 8 * voters.length + 4 + 8 * learners.length;
    const p = this.begin(RecordType.Snapshot, len);
    const b = this.buf;
    writeU64(b, p, meta.index);
    writeU64(b, p + 8, meta.term);
    let o = writeIds(b, p + 16, voters);
    o = writeIds(b, o, learners);
    this.end(o);
  }

  /** Reserves the record header; returns the payload offset. */
  private begin(type: RecordType, len: number): number {
    const o = this.off;
    if (o + RECORD_HEADER_BYTES + len > this.buf.length) throw new RangeError('wal: record buffer too small');
    this.buf.writeUInt32LE(len, o + 4);
    this.buf[o + 8] = type;
    return o + RECORD_HEADER_BYTES;
  }

  /** Seals the record that started at `off` and ends at `payloadEnd`. */
  private end(payloadEnd: number): void {
    const o = this.off;
    const crc = crc32cUpdate(this.crc, this.buf, o + 4, payloadEnd);
    this.buf.writeUInt32LE(crc, o);
    this.crc = crc;
    this.off = payloadEnd;
  }
}

function writeU64(b: Buffer, o: number, v: number): void {
  b.writeUInt32LE(v >>> 0, o);
  b.writeUInt32LE(Math.floor(v / TWO_32), o + 4);
}

function writeIds(b: Buffer, o: number, ids: readonly NodeId[]): number {
  b.writeUInt32LE(ids.length, o);
  let p = o + 4;
  for (const id of ids) {
    b.writeBigUInt64LE(id, p);
    p += 8;
  }
  return p;
}

/** A record read by {@link readRecord}: its type, payload bounds, CRC and the offset after it. */
export interface RecordView {
  ok: true;
  type: RecordType;
  payloadStart: number;
  payloadEnd: number;
  crc: number;
  next: number;
}

/** Why no record could be read at an offset: a short/overlong record or a bad CRC or type. */
export interface RecordFault {
  ok: false;
  reason: string;
}

/**
 * Reads the record at `off` of `buf` (which ends at `buf.length`), checking its length against
 * the bytes left, its CRC chained from `prevCrc` (use 0 for a segment header) and its type.
 * Payload contents are not decoded. Never throws.
 */
export function readRecord(buf: Buffer, off: number, prevCrc: number): RecordView | RecordFault {
  const left = buf.length - off;
  if (left < RECORD_HEADER_BYTES) return { ok: false, reason: `truncated record header (${left} bytes)` };
  const len = buf.readUInt32LE(off + 4);
  if (len > left - RECORD_HEADER_BYTES) return { ok: false, reason: `record length ${len} exceeds the ${left - RECORD_HEADER_BYTES} bytes left` };
  const payloadEnd = off + RECORD_HEADER_BYTES + len;
  const stored = buf.readUInt32LE(off);
  const crc = crc32cUpdate(prevCrc, buf, off + 4, payloadEnd);
  if (crc !== stored) return { ok: false, reason: `crc mismatch (stored ${hex32(stored)}, computed ${hex32(crc)})` };
  const type = buf[off + 8] as number;
  if (type < RecordType.SegmentHeader || type > RecordType.Snapshot) return { ok: false, reason: `unknown record type ${type}` };
  return { ok: true, type: type as RecordType, payloadStart: off + RECORD_HEADER_BYTES, payloadEnd, crc, next: payloadEnd };
}

function hex32(v: number): string {
  return v.toString(16).padStart(8, '0');
}

/** Reads a 64-bit unsigned value that must be a safe integer. */
function readU64(b: Buffer, o: number): number {
  const lo = b.readUInt32LE(o);
  const hi = b.readUInt32LE(o + 4);
  if (hi > MAX_SAFE_HIGH) throw new RecordDecodeError(`64-bit value at payload offset ${o} is not a safe integer`);
  return hi * TWO_32 + lo;
}

function expectLength(start: number, end: number, want: number, what: string): void {
  if (end - start !== want) throw new RecordDecodeError(`${what} payload is ${end - start} bytes, want ${want}`);
}

/** Decodes a segment header payload. Throws RecordDecodeError when malformed. */
export function decodeSegmentHeader(b: Buffer, start: number, end: number): SegmentHeader {
  expectLength(start, end, SEGMENT_HEADER_PAYLOAD, 'segment header');
  return { version: b[start] as number, seq: readU64(b, start + 1), firstIndex: readU64(b, start + 9), prevCrc: b.readUInt32LE(start + 17) };
}

/**
 * Decodes an entry payload. The returned entry owns a fresh copy of its data (it does not keep
 * `b` alive). Throws RecordDecodeError when malformed.
 */
export function decodeEntry(b: Buffer, start: number, end: number): Entry {
  if (end - start < ENTRY_FIXED_PAYLOAD) throw new RecordDecodeError(`entry payload is ${end - start} bytes, want at least ${ENTRY_FIXED_PAYLOAD}`);
  const term = readU64(b, start);
  const index = readU64(b, start + 8);
  const t = b[start + 16] as number;
  if (t !== EntryType.Normal && t !== EntryType.ConfChange) throw new RecordDecodeError(`unknown entry type ${t}`);
  if (index < 1) throw new RecordDecodeError('entry index 0');
  const data = new Uint8Array(end - start - ENTRY_FIXED_PAYLOAD);
  data.set(b.subarray(start + ENTRY_FIXED_PAYLOAD, end));
  return { term, index, type: t as EntryType, data };
}

/** Decodes a hard state payload. Throws RecordDecodeError when malformed. */
export function decodeHardState(b: Buffer, start: number, end: number): HardState {
  expectLength(start, end, HARD_STATE_PAYLOAD, 'hard state');
  return { term: readU64(b, start), vote: nodeId(b.readBigUInt64LE(start + 8)), commit: readU64(b, start + 16) };
}

/** Decodes a snapshot marker payload. Throws RecordDecodeError when malformed. */
export function decodeSnapshot(b: Buffer, start: number, end: number): SnapshotMeta {
  if (end - start < 24) throw new RecordDecodeError(`snapshot payload is ${end - start} bytes, want at least 24`);
  const index = readU64(b, start);
  const term = readU64(b, start + 8);
  const [voters, o] = readIds(b, start + 16, end);
  const [learners, o2] = readIds(b, o, end);
  if (o2 !== end) throw new RecordDecodeError(`snapshot payload has ${end - o2} trailing bytes`);
  const confState: ConfState = { voters, learners };
  return { index, term, confState };
}

function readIds(b: Buffer, o: number, end: number): [NodeId[], number] {
  if (end - o < 4) throw new RecordDecodeError('snapshot payload ends inside a member list');
  const n = b.readUInt32LE(o);
  let p = o + 4;
  if (n > (end - p) / 8) throw new RecordDecodeError(`snapshot member list of ${n} does not fit the payload`);
  const ids: NodeId[] = new Array<NodeId>(n);
  for (let i = 0; i < n; i++, p += 8) ids[i] = nodeId(b.readBigUInt64LE(p));
  return [ids, p];
}
