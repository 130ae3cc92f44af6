import fc from 'fast-check';
import { EntryType, nodeId } from '../../src/raft/types';
import type { Entry, HardState, SnapshotMeta } from '../../src/raft/types';
import {
  HARD_STATE_RECORD_BYTES,
  RECORD_HEADER_BYTES,
  RecordDecodeError,
  RecordType,
  RecordWriter,
  SEGMENT_HEADER_RECORD_BYTES,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshot,
  entryRecordSize,
  readRecord,
  snapshotRecordSize,
} from '../../src/storage/wal-record';

const safeInt = fc.maxSafeNat();
const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: safeInt,
  index: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
  data: fc.uint8Array({ maxLength: 64 }),
});
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const hsArb: fc.Arbitrary<HardState> = fc.record({ term: safeInt, vote: u64.map(nodeId), commit: safeInt });
const snapArb: fc.Arbitrary<SnapshotMeta> = fc.record({
  index: safeInt,
  term: safeInt,
  confState: fc.record({ voters: fc.array(u64.map(nodeId), { maxLength: 7 }), learners: fc.array(u64.map(nodeId), { maxLength: 3 }) }),
});

describe('wal record codec', () => {
  test('entries, hard states and snapshot markers round-trip with a valid CRC chain', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 8 }), hsArb, snapArb, fc.nat({ max: 0xffffffff }), (entries, hs, snap, seed) => {
        const size = entries.reduce((n, e) => n + entryRecordSize(e), 0) + HARD_STATE_RECORD_BYTES + snapshotRecordSize(snap);
        const buf = Buffer.alloc(size);
        const w = new RecordWriter(buf, seed);
        for (const e of entries) w.putEntry(e);
        w.putHardState(hs);
        w.putSnapshot(snap);
        expect(w.off).toBe(size);

        let off = 0;
        let crc = seed;
        const got: Entry[] = [];
        for (let k = 0; k < entries.length; k++) {
          const r = readRecord(buf, off, crc);
          if (!r.ok) throw new Error(r.reason);
          expect(r.type).toBe(RecordType.Entry);
          got.push(decodeEntry(buf, r.payloadStart, r.payloadEnd));
          off = r.next;
          crc = r.crc;
        }
        expect(got).toEqual(entries.map((e) => ({ ...e, data: new Uint8Array(e.data) })));
        const h = readRecord(buf, off, crc);
        if (!h.ok) throw new Error(h.reason);
        expect(h.type).toBe(RecordType.HardState);
        expect(decodeHardState(buf, h.payloadStart, h.payloadEnd)).toEqual(hs);
        const s = readRecord(buf, h.next, h.crc);
        if (!s.ok) throw new Error(s.reason);
        expect(s.type).toBe(RecordType.Snapshot);
        expect(decodeSnapshot(buf, s.payloadStart, s.payloadEnd)).toEqual(snap);
        expect(s.next).toBe(size);
        expect(w.crc).toBe(s.crc);
      }),
    );
  });

  test('segment header round-trips and restarts the CRC chain', () => {
    const buf = Buffer.alloc(SEGMENT_HEADER_RECORD_BYTES);
    const w = new RecordWriter(buf, 0x12345678);
    w.putSegmentHeader({ version: 1, seq: 7, firstIndex: 2 ** 40, prevCrc: 0xdeadbeef });
    const r = readRecord(buf, 0, 0);
    if (!r.ok) throw new Error(r.reason);
    expect(decodeSegmentHeader(buf, r.payloadStart, r.payloadEnd)).toEqual({ version: 1, seq: 7, firstIndex: 2 ** 40, prevCrc: 0xdeadbeef });
  });

  test('a record read with the wrong chain seed fails its CRC', () => {
    const e: Entry = { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) };
    const buf = Buffer.alloc(entryRecordSize(e));
    new RecordWriter(buf, 99).putEntry(e);
    expect(readRecord(buf, 0, 99).ok).toBe(true);
    const bad = readRecord(buf, 0, 98);
    expect(bad.ok).toBe(false);
  });

  test('every single-bit flip and every truncation of a record is detected', () => {
    const e: Entry = { term: 5, index: 42, type: EntryType.ConfChange, data: Buffer.from('hello world') };
    const buf = Buffer.alloc(entryRecordSize(e));
    new RecordWriter(buf, 7).putEntry(e);
    for (let i = 0; i < buf.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(buf);
        copy[i] = (copy[i] as number) ^ (1 << bit);
        expect(readRecord(copy, 0, 7).ok).toBe(false);
      }
    }
    for (let n = 0; n < buf.length; n++) expect(readRecord(buf.subarray(0, n), 0, 7).ok).toBe(false);
  });

  test('an all-zero region is not a record', () => {
    expect(readRecord(Buffer.alloc(64), 0, 0).ok).toBe(false);
    expect(readRecord(Buffer.alloc(RECORD_HEADER_BYTES), 0, 0).ok).toBe(false);
  });

  test('64-bit values beyond the safe integer range are rejected on decode', () => {
    const e: Entry = { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) };
    const buf = Buffer.alloc(entryRecordSize(e));
    new RecordWriter(buf, 0).putEntry(e);
    const p = RECORD_HEADER_BYTES;
    buf.writeUInt32LE(0x200000, p + 12); // high word of the index: 2^53
    expect(() => decodeEntry(buf, p, buf.length)).toThrow(RecordDecodeError);
    buf.writeUInt32LE(0x1fffff, p + 12);
    buf.writeUInt32LE(0xffffffff, p + 8);
    expect(decodeEntry(buf, p, buf.length).index).toBe(Number.MAX_SAFE_INTEGER);
  });

  test('malformed payloads are rejected', () => {
    const buf = Buffer.alloc(64);
    expect(() => decodeEntry(buf, 0, 10)).toThrow(RecordDecodeError); // too short
    expect(() => decodeEntry(buf, 0, 17)).toThrow(RecordDecodeError); // index 0
    buf.writeUInt32LE(1, 8);
    buf[16] = 9;
    expect(() => decodeEntry(buf, 0, 17)).toThrow(RecordDecodeError); // unknown type
    expect(() => decodeHardState(buf, 0, 23)).toThrow(RecordDecodeError);
    const s = Buffer.alloc(24);
    s.writeUInt32LE(1000, 16); // 1000 voters in an 8-byte tail
    expect(() => decodeSnapshot(s, 0, 24)).toThrow(RecordDecodeError);
  });
});
