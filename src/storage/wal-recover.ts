/**
 * Recovery of the write-ahead log: reads every segment in order, validates records and the CRC
 * chain, cuts a torn or corrupt tail off the last segment and rebuilds the log, hard state and
 * snapshot markers. The writer state it returns lets the WAL continue appending where the last
 * good record ends.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { EntryType } from '../raft/types';
import type { Entry, HardState, SnapshotMeta } from '../raft/types';
import { WalCorruptError, WalGapError } from './wal-errors';
import {
  RECORD_HEADER_BYTES,
  RecordDecodeError,
  RecordType,
  RecordWriter,
  SEGMENT_HEADER_RECORD_BYTES,
  WAL_FORMAT_VERSION,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshot,
  entryRecordSize,
  readRecord,
} from './wal-record';
import { ReplayLog } from './wal-replay';
import { createSegmentFile, isZeroFrom, listSegments, segmentName, syncDir } from './wal-segment';
import type { SegmentId } from './wal-segment';

/** Structured log callback, as in WalOptions. */
export type WalLogger = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** A segment known to the writer: its name and the highest entry index it holds (0 if none). */
export interface SegmentState {
  id: SegmentId;
  maxIndex: number;
}

/** Everything open() needs: replay results plus the state to continue writing. */
export interface Recovered {
  hardState: HardState | undefined;
  entries: Entry[];
  /** The marker replay started from (newest one at or below the caller's snapshot index). */
  snapshot: SnapshotMeta | undefined;
  /** The newest marker in the log, whatever the caller asked for (copied into new segments). */
  newestSnapshot: SnapshotMeta | undefined;
  /** The index the next appended entry is expected to have at most. */
  nextIndex: number;
  segments: SegmentState[];
  /** Open handle on the last segment, positioned writes at `offset`. */
  fh: FileHandle;
  offset: number;
  crc: number;
  /** fsyncs done during recovery (segment creation, tail truncation). */
  fsyncs: number;
  /** Bytes written during recovery (a fresh segment's header). */
  bytes: number;
}

/**
 * Opens or creates the WAL in `dir` and replays it. `snapshotIndex`, when given, is the index of
 * the snapshot the caller holds: entries at or below it are not returned, and markers above it
 * are not selected. Throws WalCorruptError for damage that cannot be a torn tail, WalGapError when
 * the entries after the snapshot index are not all present.
 */
export async function recoverWal(dir: string, snapshotIndex: number | undefined, log: WalLogger | undefined): Promise<Recovered> {
  const made = await fsp.mkdir(dir, { recursive: true });
  if (made !== undefined) {
    // Make every newly created directory's entry durable in its parent.
    for (let d = dir; ; d = path.dirname(d)) {
      await syncDir(path.dirname(d));
      if (path.resolve(d) === path.resolve(made) || path.dirname(d) === d) break;
    }
  }
  const { segments: ids, tmp, others } = await listSegments(dir);
  for (const t of tmp) {
    await fsp.rm(path.join(dir, t), { force: true });
    log?.('info', 'wal: removed unfinished segment', { file: t });
  }
  for (const o of others) log?.('warn', 'wal: ignoring unexpected file in wal directory', { file: o });
  if (ids.length === 0) return createFresh(dir, snapshotIndex, log);

  for (let k = 1; k < ids.length; k++) {
    const prev = ids[k - 1] as SegmentId;
    const cur = ids[k] as SegmentId;
    if (cur.seq !== prev.seq + 1) {
      throw new WalCorruptError(path.join(dir, cur.name), 0, `segment sequence jumps from ${prev.seq} to ${cur.seq}`);
    }
  }

  const replay = new ReplayLog();
  const markers: SnapshotMeta[] = [];
  const segments: SegmentState[] = [];
  let hardState: HardState | undefined;
  let crc = 0;
  let offset = 0;
  let fsyncs = 0;
  let truncateAt: number | undefined;

  for (let k = 0; k < ids.length; k++) {
    const id = ids[k] as SegmentId;
    const file = path.join(dir, id.name);
    const isLast = k === ids.length - 1;
    const buf = await fsp.readFile(file);

    const h = readRecord(buf, 0, 0);
    if (!h.ok) throw new WalCorruptError(file, 0, `bad segment header: ${h.reason}`);
    if (h.type !== RecordType.SegmentHeader) throw new WalCorruptError(file, 0, `segment starts with record type ${h.type}`);
    const header = decodeOrCorrupt(file, 0, () => decodeSegmentHeader(buf, h.payloadStart, h.payloadEnd));
    if (header.version !== WAL_FORMAT_VERSION) throw new WalCorruptError(file, 0, `unsupported format version ${header.version}`);
    if (header.seq !== id.seq || header.firstIndex !== id.firstIndex) {
      throw new WalCorruptError(file, 0, `header (seq ${header.seq}, first index ${header.firstIndex}) does not match the file name`);
    }
    if (k > 0 && header.prevCrc !== crc) throw new WalCorruptError(file, 0, 'crc chain broken between segments');

    let off = h.next;
    crc = h.crc;
    let maxIndex = 0;
    while (off < buf.length) {
      const r = readRecord(buf, off, crc);
      if (!r.ok) {
        // Zeros to the end are the preallocated space after the last record (no record starts
        // with a zero type byte), not damage.
        if (isZeroFrom(buf, off)) break;
        if (!isLast) throw new WalCorruptError(file, off, r.reason);
        truncateAt = off;
        log?.('warn', 'wal: cutting torn or corrupt tail of the last segment', { file, offset: off, droppedBytes: buf.length - off, reason: r.reason });
        break;
      }
      const at = off;
      switch (r.type) {
        case RecordType.Entry: {
          const e = decodeOrCorrupt(file, at, () => decodeEntryView(buf, r.payloadStart, r.payloadEnd));
          replay.appendEntry(e);
          if (e.index > maxIndex) maxIndex = e.index;
          break;
        }
        case RecordType.HardState:
          hardState = decodeOrCorrupt(file, at, () => decodeHardState(buf, r.payloadStart, r.payloadEnd));
          break;
        case RecordType.Snapshot: {
          const meta = decodeOrCorrupt(file, at, () => decodeSnapshot(buf, r.payloadStart, r.payloadEnd));
          replay.applySnapshot(meta);
          markers.push(meta);
          break;
        }
        case RecordType.SegmentHeader:
          throw new WalCorruptError(file, at, 'segment header in the middle of a segment');
      }
      off = r.next;
      crc = r.crc;
    }
    segments.push({ id, maxIndex });
    offset = off;
  }

  const last = segments[segments.length - 1] as SegmentState;
  const lastFile = path.join(dir, last.id.name);
  const fh = await fsp.open(lastFile, 'r+');
  try {
    if (truncateAt !== undefined) {
      await fh.truncate(truncateAt);
      await fh.datasync();
      fsyncs++;
    }
    const newestSnapshot = markers[markers.length - 1];
    const snapshot = snapshotIndex === undefined ? newestSnapshot : findLast(markers, (m) => m.index <= snapshotIndex);
    const skip = snapshotIndex ?? snapshot?.index ?? 0;
    const entries = entriesAfter(replay.entries, skip);
    // Entries were read as views into the segment buffers; the ones returned get their own copy.
    for (const e of entries) e.data = new Uint8Array(e.data);
    const lastIndex = replay.lastIndex() ?? 0;
    const nextIndex = Math.max(lastIndex, newestSnapshot?.index ?? 0, skip) + 1;
    return { hardState, entries, snapshot, newestSnapshot, nextIndex, segments, fh, offset, crc, fsyncs, bytes: 0 };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Payload bytes of an entry record before its data. */
const ENTRY_HEAD_BYTES = entryRecordSize({ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }) - RECORD_HEADER_BYTES;

/**
 * Decodes an entry payload like decodeEntry, but with `data` a view into `buf` rather than a copy:
 * replay drops most entries (those a snapshot covers), so only the ones kept are copied.
 */
function decodeEntryView(buf: Buffer, start: number, end: number): Entry {
  if (end - start < ENTRY_HEAD_BYTES) return decodeEntry(buf, start, end); // throws the precise error
  const e = decodeEntry(buf, start, start + ENTRY_HEAD_BYTES);
  e.data = buf.subarray(start + ENTRY_HEAD_BYTES, end);
  return e;
}

/** The entries above `skip` from a contiguous list; throws WalGapError if `skip + 1` is missing. */
function entriesAfter(all: Entry[], skip: number): Entry[] {
  const first = all[0];
  const last = all[all.length - 1];
  if (first === undefined || last === undefined || last.index <= skip) return [];
  if (first.index > skip + 1) throw new WalGapError(skip, first.index);
  return all.slice(skip + 1 - first.index);
}

function findLast<T>(xs: readonly T[], pred: (x: T) => boolean): T | undefined {
  for (let k = xs.length - 1; k >= 0; k--) {
    const x = xs[k] as T;
    if (pred(x)) return x;
  }
  return undefined;
}

function decodeOrCorrupt<T>(file: string, offset: number, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof RecordDecodeError) throw new WalCorruptError(file, offset, err.message);
    throw err;
  }
}

async function createFresh(dir: string, snapshotIndex: number | undefined, log: WalLogger | undefined): Promise<Recovered> {
  const nextIndex = (snapshotIndex ?? 0) + 1;
  const id: SegmentId = { seq: 1, firstIndex: nextIndex, name: segmentName(1, nextIndex) };
  const buf = Buffer.allocUnsafe(SEGMENT_HEADER_RECORD_BYTES);
  const w = new RecordWriter(buf, 0);
  w.putSegmentHeader({ version: WAL_FORMAT_VERSION, seq: id.seq, firstIndex: id.firstIndex, prevCrc: 0 });
  let fsyncs = 0;
  const fh = await createSegmentFile(dir, id.name, buf, buf.length, () => fsyncs++);
  log?.('info', 'wal: created', { dir, segment: id.name });
  return {
    hardState: undefined,
    entries: [],
    snapshot: undefined,
    newestSnapshot: undefined,
    nextIndex,
    segments: [{ id, maxIndex: 0 }],
    fh,
    offset: buf.length,
    crc: w.crc,
    fsyncs,
    bytes: buf.length,
  };
}
