import { DecodeError } from './errors';
import { EntryType, MessageType, nodeId } from './types';
import type { Entry, Message, NodeId, Snapshot } from './types';

/*
 * Compact binary form of a Message for the peer transport.
 *
 *   u8      format version (1)
 *   u8      message type (MessageType)
 *   u64     from, to (big-endian, fixed 8 bytes)
 *   uvarint term, logTerm, index, commit, rejectHint
 *   u8      flags: 1 reject, 2 snapshot present, 4 context present
 *   uvarint entry count, then per entry:
 *           uvarint term, uvarint index, u8 type, uvarint data length, data
 *   if snapshot: uvarint index, uvarint term, uvarint voter count, u64 voters…,
 *                uvarint learner count, u64 learners…, uvarint data length, data
 *   if context:  uvarint length, bytes
 *
 * uvarint is the usual base-128 little-endian varint, limited to safe integers (< 2^53).
 */

const VERSION = 1;
const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;
const MAX_TYPE = MessageType.MsgPreVoteResp;

class Writer {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  reset(): this {
    this.pos = 0;
    return this;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u64(v: bigint): void {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, v), false);
    this.pos += 8;
  }

  uvarint(v: number): void {
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  bytes(b: Uint8Array): void {
    this.uvarint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/** Messages estimated at up to this size are encoded in one reused writer. */
const SCRATCH_BYTES = 64 * 1024;
const scratch = new Writer(SCRATCH_BYTES);

class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new DecodeError('message truncated');
    return this.buf[this.pos++]!;
  }

  u64(): NodeId {
    if (this.pos + 8 > this.buf.length) throw new DecodeError('message truncated');
    const v = this.view.getBigUint64(this.pos, false);
    this.pos += 8;
    return nodeId(v);
  }

  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new DecodeError('integer out of range');
        return result;
      }
      mul *= 0x80;
    }
    throw new DecodeError('integer out of range');
  }

  bytes(): Uint8Array {
    const n = this.uvarint();
    if (this.pos + n > this.buf.length) throw new DecodeError('message truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  done(): boolean {
    return this.pos === this.buf.length;
  }
}

/** Encodes `m`. Returns a new buffer (exactly the encoded length). */
export function encodeMessage(m: Message): Uint8Array {
  let estimate = 64;
  for (const e of m.entries) estimate += e.data.length + 24;
  if (m.snapshot !== undefined) estimate += m.snapshot.data.length + 64;
  if (m.context !== undefined) estimate += m.context.length + 8;
  const w = estimate <= SCRATCH_BYTES ? scratch.reset() : new Writer(estimate);
  w.u8(VERSION);
  w.u8(m.type);
  w.u64(m.from);
  w.u64(m.to);
  w.uvarint(m.term);
  w.uvarint(m.logTerm);
  w.uvarint(m.index);
  w.uvarint(m.commit);
  w.uvarint(m.rejectHint);
  let flags = 0;
  if (m.reject) flags |= FLAG_REJECT;
  if (m.snapshot !== undefined) flags |= FLAG_SNAPSHOT;
  if (m.context !== undefined) flags |= FLAG_CONTEXT;
  w.u8(flags);
  w.uvarint(m.entries.length);
  for (const e of m.entries) {
    w.uvarint(e.term);
    w.uvarint(e.index);
    w.u8(e.type);
    w.bytes(e.data);
  }
  if (m.snapshot !== undefined) {
    const s = m.snapshot;
    w.uvarint(s.meta.index);
    w.uvarint(s.meta.term);
    w.uvarint(s.meta.confState.voters.length);
    for (const id of s.meta.confState.voters) w.u64(id);
    w.uvarint(s.meta.confState.learners.length);
    for (const id of s.meta.confState.learners) w.u64(id);
    w.bytes(s.data);
  }
  if (m.context !== undefined) w.bytes(m.context);
  // A copy: small ones share a slab of Node's buffer pool (fewer array buffers to collect).
  const out = Buffer.allocUnsafe(w.pos);
  out.set(w.buf.subarray(0, w.pos));
  return out;
}

/**
 * Decodes what encodeMessage produced. Byte fields (entry data, snapshot data, context) are
 * views into `buf`, which the caller must therefore not reuse. Throws DecodeError on any
 * malformed input (truncation, unknown version or type, out-of-range integers, trailing bytes).
 */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new Reader(buf);
  const version = r.u8();
  if (version !== VERSION) throw new DecodeError(`unknown message format version ${version}`);
  const type = r.u8();
  if (type > MAX_TYPE) throw new DecodeError(`unknown message type ${type}`);
  const from = r.u64();
  const to = r.u64();
  const term = r.uvarint();
  const logTerm = r.uvarint();
  const index = r.uvarint();
  const commit = r.uvarint();
  const rejectHint = r.uvarint();
  const flags = r.u8();
  if (flags & ~(FLAG_REJECT | FLAG_SNAPSHOT | FLAG_CONTEXT)) throw new DecodeError(`unknown flags ${flags}`);
  const count = r.uvarint();
  // Every entry takes at least 4 bytes; refuse absurd counts before allocating.
  if (count > buf.length) throw new DecodeError('entry count exceeds message size');
  const entries: Entry[] = new Array<Entry>(count);
  for (let k = 0; k < count; k++) {
    const eterm = r.uvarint();
    const eindex = r.uvarint();
    const etype = r.u8();
    if (etype !== EntryType.Normal && etype !== EntryType.ConfChange) {
      throw new DecodeError(`unknown entry type ${etype}`);
    }
    entries[k] = { term: eterm, index: eindex, type: etype, data: r.bytes() };
  }
  const m: Message = {
    type: type as MessageType,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint,
  };
  if (flags & FLAG_SNAPSHOT) {
    const sindex = r.uvarint();
    const sterm = r.uvarint();
    const nv = r.uvarint();
    if (nv * 8 > buf.length) throw new DecodeError('voter count exceeds message size');
    const voters: NodeId[] = [];
    for (let k = 0; k < nv; k++) voters.push(r.u64());
    const nl = r.uvarint();
    if (nl * 8 > buf.length) throw new DecodeError('learner count exceeds message size');
    const learners: NodeId[] = [];
    for (let k = 0; k < nl; k++) learners.push(r.u64());
    const snap: Snapshot = { meta: { index: sindex, term: sterm, confState: { voters, learners } }, data: r.bytes() };
    m.snapshot = snap;
  }
  if (flags & FLAG_CONTEXT) m.context = r.bytes();
  if (!r.done()) throw new DecodeError('trailing bytes after message');
  return m;
}
