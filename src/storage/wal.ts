/**
 * The Raft write-ahead log: durable storage for log entries, hard state and snapshot markers.
 *
 * Writes are queued and performed by one writer loop in call order. Whatever is queued while a
 * write or fdatasync is in flight forms the next group: its records go out in one write call per
 * segment and, if any call in the group asked for a sync, one fdatasync covers them all (group
 * commit). See README.md in this folder for the file format and recovery rules.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { NONE } from '../raft/types';
import type { Entry, HardState, SnapshotMeta } from '../raft/types';
import { WalClosedError, WalFailedError } from './wal-errors';
import { HARD_STATE_RECORD_BYTES, RecordWriter, SEGMENT_HEADER_RECORD_BYTES, WAL_FORMAT_VERSION, snapshotRecordSize } from './wal-record';
import { recoverWal } from './wal-recover';
import type { SegmentState, WalLogger } from './wal-recover';
import { createSegmentFile, segmentName, syncDir, writeFully } from './wal-segment';
import { checkEntries, checkHardState, checkSnapshot, isIndex } from './wal-validate';

export { WalClosedError, WalCorruptError, WalError, WalFailedError, WalGapError } from './wal-errors';
export type { WalLogger } from './wal-recover';

/** Default size (bytes) past which the WAL starts a new segment: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** What {@link Wal.open} recovered. The caller owns `entries` and the objects in it. */
export interface WalOpenResult {
  wal: Wal;
  /** The last saved hard state, or the zero value (term 0, vote NONE, commit 0). */
  hardState: HardState;
  /** Surviving entries above the snapshot index, contiguous, in index order, overwrites applied. */
  entries: Entry[];
  /** The snapshot marker replay started from, or undefined when there is none (see WalOptions.snapshotIndex). */
  snapshot: SnapshotMeta | undefined;
}

/** Options of {@link Wal.open}. */
export interface WalOptions {
  /** A new segment starts once the current one holds at least this many bytes. Default 64 MiB. */
  segmentBytes?: number;
  /**
   * Index of the snapshot the caller has on disk. Entries at or below it are not returned, markers
   * above it are ignored, and the returned `snapshot` is the newest marker at or below it (it may
   * be older when the caller's snapshot was saved but its marker was not). When omitted, replay
   * starts from the newest marker in the log.
   */
  snapshotIndex?: number;
  /** Structured log callback; torn tails that are cut are reported at 'warn'. */
  log?: WalLogger;
  /**
   * Extend the segment being written to `segmentBytes` up front (default true). The file's size
   * then stays the same while records are appended, so an fdatasync flushes only data, not the
   * inode's size as well; the zeros past the last record read as the clean end of the log.
   */
  preallocate?: boolean;
}

/** Counters since open, for metrics. */
export interface WalStats {
  /** fdatasync and directory fsync calls. */
  fsyncs: number;
  /** Bytes written to segment files. */
  bytes: number;
  /** Write calls issued (one per group per segment, plus segment creation). */
  writes: number;
}

interface AppendOp {
  kind: 'append';
  hs: HardState | undefined;
  entries: readonly Entry[];
  snapshot: SnapshotMeta | undefined;
  sync: boolean;
  /** Encoded size in bytes. */
  size: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface ReleaseOp {
  kind: 'release';
  index: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type Op = AppendOp | ReleaseOp;

/**
 * A write-ahead log in one directory. Obtain one with {@link Wal.open}. Not safe to open the same
 * directory twice (in one or several processes).
 */
export class Wal {
  /** Counters since open; updated in place. */
  readonly stats: WalStats;

  private readonly queue: Op[] = [];
  private running = false;
  /** A save was written directly (not through the queue) in the current turn. */
  private wroteThisTurn = false;
  private readonly endTurn = (): void => {
    this.wroteThisTurn = false;
  };
  private drained: Promise<void> = Promise.resolve();
  private closed = false;
  private closing: Promise<void> | undefined;
  private failure: unknown;

  private unsynced = false;
  /** Highest index a new batch may start at (call-time check, in call order). */
  private acceptNext: number;

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    /** Whether new segments are extended to segmentBytes when created (see WalOptions.preallocate). */
    private readonly preallocate: boolean,
    private readonly log: WalLogger | undefined,
    /** Segments in order; the last one is being written. Invariant: never empty. */
    private readonly segments: SegmentState[],
    private fh: FileHandle,
    /** Bytes in the current segment; the next record goes here. */
    private offset: number,
    /** CRC of the last record in the current segment. */
    private crc: number,
    /** Latest hard state written, copied into every new segment. */
    private hardState: HardState | undefined,
    /** Latest snapshot marker written, copied into every new segment. */
    private snapshot: SnapshotMeta | undefined,
    /** Index after the last entry written (names new segments). */
    private nextIndex: number,
    stats: WalStats,
  ) {
    this.acceptNext = nextIndex;
    this.stats = stats;
  }

  /**
   * Opens the WAL in `dir`, creating the directory and a first segment when there is none, and
   * replays it. A torn or corrupt tail of the last segment is cut (and logged); damage anywhere
   * else throws WalCorruptError; missing entries after the snapshot index throw WalGapError.
   */
  static async open(dir: string, opts: WalOptions = {}): Promise<WalOpenResult> {
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < 1) throw new RangeError(`wal: segmentBytes must be a positive integer, got ${segmentBytes}`);
    if (opts.snapshotIndex !== undefined && !isIndex(opts.snapshotIndex)) throw new RangeError(`wal: snapshotIndex must be a non-negative integer, got ${opts.snapshotIndex}`);
    const r = await recoverWal(dir, opts.snapshotIndex, opts.log);
    const stats: WalStats = { fsyncs: r.fsyncs, bytes: r.bytes, writes: r.bytes > 0 ? 1 : 0 };
    const prealloc = opts.preallocate ?? true;
    if (prealloc && (await r.fh.stat()).size < segmentBytes) {
      await r.fh.truncate(segmentBytes);
      await r.fh.datasync();
      stats.fsyncs++;
    }
    const wal = new Wal(dir, segmentBytes, prealloc, opts.log, r.segments, r.fh, r.offset, r.crc, r.hardState, r.newestSnapshot, r.nextIndex, stats);
    const hardState = r.hardState ?? { term: 0, vote: NONE, commit: 0 };
    return { wal, hardState, entries: r.entries, snapshot: r.snapshot };
  }

  /**
   * Appends `entries` and then `hs` (when given) as one write, after every earlier call's records.
   * Entries must be contiguous and start at most one past the last entry accepted so far (an
   * earlier index overwrites the tail from there). With `sync`, the promise resolves only after
   * an fdatasync covering these records; without it, once they are written to the file.
   * The WAL reads `entries` until the promise settles; do not mutate them meanwhile.
   * Rejects with RangeError for invalid input, WalClosedError after close(), WalFailedError after
   * an earlier I/O failure, or the I/O error itself.
   */
  save(hs: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void> {
    let size = 0;
    try {
      this.checkOpen();
      if (hs !== undefined) {
        checkHardState(hs);
        size += HARD_STATE_RECORD_BYTES;
      }
      size += checkEntries(entries, this.acceptNext);
    } catch (err) {
      return Promise.reject(err);
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) this.acceptNext = last.index + 1;
    const hsCopy = hs === undefined ? undefined : { term: hs.term, vote: hs.vote, commit: hs.commit };
    if (!this.running && !this.wroteThisTurn && this.failure === undefined && size <= SYNC_PATH_BYTES && this.offset < this.segmentBytes) {
      // Nothing queued ahead, a small write and room in the segment: written (and synced) right
      // here, as the writer loop's own small-batch path would, without going through the queue.
      // Saves that follow in the same turn go through the queue, which groups them (one
      // fdatasync for all).
      this.wroteThisTurn = true;
      queueMicrotask(this.endTurn);
      try {
        this.writeSmallSync(hsCopy, entries, sync, size);
      } catch (err) {
        this.failed(err);
        return Promise.reject(err);
      }
      return RESOLVED;
    }
    return this.enqueue({ kind: 'append', hs: hsCopy, entries, snapshot: undefined, sync, size });
  }

  /** Writes one small append at the current offset with one synchronous write, then fdatasyncs if asked. */
  private writeSmallSync(hs: HardState | undefined, entries: readonly Entry[], sync: boolean, bytes: number): void {
    const buf = Buffer.allocUnsafe(bytes);
    const w = new RecordWriter(buf, this.crc);
    this.encodeRecords(undefined, entries, hs, w);
    this.writeSync(buf, bytes, w.crc, sync);
  }

  /** Writes `bytes` of encoded records (ending with chain value `crc`) at the offset synchronously, then fdatasyncs if asked. */
  private writeSync(buf: Buffer, bytes: number, crc: number, sync: boolean): void {
    writeFullySync(this.fh.fd, buf, bytes, this.offset);
    this.offset += bytes;
    this.crc = crc;
    this.stats.bytes += bytes;
    this.stats.writes++;
    this.unsynced = true;
    if (sync) {
      fs.fdatasyncSync(this.fh.fd);
      this.stats.fsyncs++;
      this.unsynced = false;
    }
  }

  /** Records a write failure: no further writes are accepted. */
  private failed(err: unknown): void {
    this.failure = err;
    this.log?.('error', 'wal: write failed; no further writes accepted', { error: String(err) });
  }

  /**
   * Durably records (fdatasync) that a snapshot at `meta.index`/`meta.term` exists. Call it only
   * after the snapshot itself is durable, and before saving entries that follow a snapshot
   * received from the leader. Rejects like save().
   */
  saveSnapshot(meta: SnapshotMeta): Promise<void> {
    try {
      this.checkOpen();
      checkSnapshot(meta);
    } catch (err) {
      return Promise.reject(err);
    }
    this.acceptNext = Math.max(this.acceptNext, meta.index + 1);
    const copy: SnapshotMeta = { index: meta.index, term: meta.term, confState: { voters: [...meta.confState.voters], learners: [...meta.confState.learners] } };
    return this.enqueue({ kind: 'append', hs: undefined, entries: [], snapshot: copy, sync: true, size: snapshotRecordSize(copy) });
  }

  /**
   * Deletes, oldest first, the segments all of whose entries are at or below `index`, stopping at
   * the first that holds a later entry and never touching the segment being written. `index` is
   * capped at the newest snapshot marker, so nothing a reopen would need is removed. Runs in
   * call order with writes. Rejects like save(), or with the unlink error (segments deleted
   * before it stay deleted).
   */
  releaseTo(index: number): Promise<void> {
    try {
      this.checkOpen();
      if (!isIndex(index)) throw new RangeError(`wal: release index must be a non-negative integer, got ${index}`);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueue({ kind: 'release', index });
  }

  /**
   * Waits for every queued call, fdatasyncs unsynced writes and closes the file. Later calls to
   * save, saveSnapshot and releaseTo reject with WalClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.closed = true;
      this.closing = this.finish();
    }
    return this.closing;
  }

  private async finish(): Promise<void> {
    await this.drained;
    try {
      if (this.unsynced && this.failure === undefined) await this.datasync();
    } finally {
      await this.fh.close();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new WalClosedError();
    if (this.failure !== undefined) throw new WalFailedError(this.failure);
  }

  private enqueue(op: Omit<AppendOp, 'resolve' | 'reject'> | Omit<ReleaseOp, 'resolve' | 'reject'>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ...op, resolve, reject });
      if (!this.running) {
        this.running = true;
        this.drained = this.drain();
      }
    });
  }

  /** The writer loop: takes everything queued so far as one group, until the queue is empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const group = this.queue.splice(0, this.queue.length);
        await this.processGroup(group);
      }
    } catch (err) {
      // processGroup settles every op itself; reaching here is a bug. Fail everything left.
      this.failure ??= err;
      this.log?.('error', 'wal: writer loop failed', { error: String(err) });
      for (const op of this.queue.splice(0, this.queue.length)) op.reject(new WalFailedError(err));
    } finally {
      this.running = false;
    }
  }

  private async processGroup(group: Op[]): Promise<void> {
    let i = 0;
    while (i < group.length) {
      if (this.failure !== undefined) {
        const err = new WalFailedError(this.failure);
        for (; i < group.length; i++) (group[i] as Op).reject(err);
        return;
      }
      const op = group[i] as Op;
      if (op.kind === 'release') {
        i++;
        try {
          await this.release(op.index);
          op.resolve();
        } catch (err) {
          op.reject(err);
        }
        continue;
      }
      let j = i;
      while (j < group.length && (group[j] as Op).kind === 'append') j++;
      const run = group.slice(i, j) as AppendOp[];
      i = j;
      try {
        await this.writeRun(run);
      } catch (err) {
        this.failed(err);
        for (const a of run) a.reject(err);
        continue;
      }
      for (const a of run) a.resolve();
    }
  }

  /** Writes a run of append ops: one write per segment touched, then one fdatasync if any asked. */
  private async writeRun(run: AppendOp[]): Promise<void> {
    let k = 0;
    while (k < run.length) {
      if (this.offset >= this.segmentBytes) await this.rollover();
      // Take ops while the segment has room; a segment holds at least one op.
      let bytes = 0;
      let m = k;
      do {
        bytes += (run[m] as AppendOp).size;
        m++;
      } while (m < run.length && this.offset + bytes < this.segmentBytes);
      if (bytes > 0) {
        const buf = Buffer.allocUnsafe(bytes);
        const w = new RecordWriter(buf, this.crc);
        for (let q = k; q < m; q++) {
          const op = run[q] as AppendOp;
          this.encodeRecords(op.snapshot, op.entries, op.hs, w);
        }
        const lastChunk = m >= run.length;
        if (lastChunk && bytes <= SYNC_PATH_BYTES) {
          // Small batch (light load): write, and fdatasync if asked, right here. The sync blocks
          // the event loop for its duration, which under light load is shorter than two
          // thread-pool round trips; a write alone only copies into the page cache, far cheaper
          // than one round trip.
          this.writeSync(buf, bytes, w.crc, run.some((a) => a.sync));
          k = m;
          continue;
        }
        await writeFully(this.fh, buf, bytes, this.offset);
        this.offset += bytes;
        this.crc = w.crc;
        this.stats.bytes += bytes;
        this.stats.writes++;
        this.unsynced = true;
      }
      k = m;
    }
    if (this.unsynced && run.some((a) => a.sync)) await this.datasync();
  }

  /** Encodes one append: snapshot marker, then entries, then hard state (so a cut never keeps a commit without its entries). */
  private encodeRecords(snapshot: SnapshotMeta | undefined, entries: readonly Entry[], hs: HardState | undefined, w: RecordWriter): void {
    if (snapshot !== undefined) {
      w.putSnapshot(snapshot);
      this.snapshot = snapshot;
      this.nextIndex = Math.max(this.nextIndex, snapshot.index + 1);
    }
    const seg = this.segments[this.segments.length - 1] as SegmentState;
    for (const e of entries) {
      w.putEntry(e);
      if (e.index > seg.maxIndex) seg.maxIndex = e.index;
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) this.nextIndex = last.index + 1;
    if (hs !== undefined) {
      w.putHardState(hs);
      this.hardState = hs;
    }
  }

  private async datasync(): Promise<void> {
    await this.fh.datasync();
    this.stats.fsyncs++;
    this.unsynced = false;
  }

  /**
   * Starts a new segment. The current one is synced first, so only the last segment can ever
   * have a torn tail. The new one starts with a header and copies of the latest hard state and
   * snapshot marker, so older segments are never needed for those.
   */
  private async rollover(): Promise<void> {
    if (this.unsynced) await this.datasync();
    const cur = this.segments[this.segments.length - 1] as SegmentState;
    const seq = cur.id.seq + 1;
    const id = { seq, firstIndex: this.nextIndex, name: segmentName(seq, this.nextIndex) };
    const size =
      SEGMENT_HEADER_RECORD_BYTES + (this.hardState ? HARD_STATE_RECORD_BYTES : 0) + (this.snapshot ? snapshotRecordSize(this.snapshot) : 0);
    const buf = Buffer.allocUnsafe(size);
    const w = new RecordWriter(buf, 0);
    w.putSegmentHeader({ version: WAL_FORMAT_VERSION, seq, firstIndex: id.firstIndex, prevCrc: this.crc });
    if (this.hardState) w.putHardState(this.hardState);
    if (this.snapshot) w.putSnapshot(this.snapshot);
    const fh = await createSegmentFile(this.dir, id.name, buf, this.preallocate ? this.segmentBytes : size, () => this.stats.fsyncs++);
    const old = this.fh;
    this.fh = fh;
    this.segments.push({ id, maxIndex: 0 });
    this.offset = size;
    this.crc = w.crc;
    this.stats.bytes += size;
    this.stats.writes++;
    await old.close();
    this.log?.('info', 'wal: started segment', { segment: id.name });
  }

  private async release(index: number): Promise<void> {
    const limit = Math.min(index, this.snapshot?.index ?? 0);
    while (this.segments.length > 1) {
      const s = this.segments[0] as SegmentState;
      if (s.maxIndex > limit) break;
      await fsp.unlink(path.join(this.dir, s.id.name));
      this.segments.shift();
      // One directory sync per unlink keeps the surviving segments a contiguous run after a crash.
      await syncDir(this.dir);
      this.stats.fsyncs++;
      this.log?.('info', 'wal: released segment', { segment: s.id.name, upTo: limit });
    }
  }
}

/** Batches up to this size are written and synced synchronously (see writeRun). */
const SYNC_PATH_BYTES = 16 * 1024;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * What save() returns when it wrote (and, if asked, synced) the records before returning: a caller
 * that compares against it can go on at once instead of awaiting.
 */
export const WAL_SAVED: Promise<void> = RESOLVED;

function writeFullySync(fd: number, buf: Buffer, len: number, position: number): void {
  let done = 0;
  while (done < len) {
    const n = fs.writeSync(fd, buf, done, len - done, position + done);
    if (n <= 0) throw new Error('wal: write made no progress');
    done += n;
  }
}
