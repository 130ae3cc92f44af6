/**
 * Segment files of the write-ahead log: naming, listing, creation and directory syncing.
 *
 * A segment is named `<seq>-<firstIndex>.wal`, both as 16 lower-case hex digits, so the lexical
 * order of names is the order of segments. A new segment is written under a `.tmp` name, synced,
 * then renamed into place and the directory synced, so a segment file that exists always starts
 * with a complete header.
 */
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

/** File name suffix of segment files. */
export const SEGMENT_SUFFIX = '.wal';
/** Suffix of a segment being created; such files are removed at open. */
export const TMP_SUFFIX = '.tmp';

const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

/** A segment identified by its file name. */
export interface SegmentId {
  seq: number;
  firstIndex: number;
  name: string;
}

/** Formats a segment file name. Both numbers must be non-negative safe integers. */
export function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}${SEGMENT_SUFFIX}`;
}

function hex16(v: number): string {
  return v.toString(16).padStart(16, '0');
}

/** Parses a segment file name; undefined when `name` is not one or its numbers are not safe integers. */
export function parseSegmentName(name: string): SegmentId | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const seq = parseInt(m[1] as string, 16);
  const firstIndex = parseInt(m[2] as string, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { seq, firstIndex, name };
}

/**
 * Lists the segments in `dir` in order, and the names of leftover `.tmp` files. Other files are
 * returned in `others` and otherwise ignored.
 */
export async function listSegments(dir: string): Promise<{ segments: SegmentId[]; tmp: string[]; others: string[] }> {
  const names = (await fsp.readdir(dir)).sort();
  const segments: SegmentId[] = [];
  const tmp: string[] = [];
  const others: string[] = [];
  for (const n of names) {
    const id = parseSegmentName(n);
    if (id) segments.push(id);
    else if (n.endsWith(TMP_SUFFIX)) tmp.push(n);
    else others.push(n);
  }
  return { segments, tmp, others };
}

/** fsyncs a directory so that entries created, renamed or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `buf[0, len)` at `position`, looping over short writes. */
export async function writeFully(fh: FileHandle, buf: Buffer, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const { bytesWritten } = await fh.write(buf, done, len - done, position + done);
    if (bytesWritten <= 0) throw new Error('wal: write made no progress');
    done += bytesWritten;
  }
}

/**
 * Creates segment `name` in `dir` starting with `contents`, zero-filled up to `size` bytes when
 * that is longer: writes a `.tmp` file, fdatasyncs it, renames it into place and fsyncs the
 * directory. Returns the open handle (read/write, positioned writes) for further appends; the
 * caller closes it. Counts two syncs via `onSync`.
 */
export async function createSegmentFile(dir: string, name: string, contents: Buffer, size: number, onSync: () => void): Promise<FileHandle> {
  const final = path.join(dir, name);
  const tmp = final + TMP_SUFFIX;
  const fh = await fsp.open(tmp, 'w+');
  try {
    await writeFully(fh, contents, contents.length, 0);
    if (size > contents.length) await fh.truncate(size);
    await fh.datasync();
    onSync();
    await fsp.rename(tmp, final);
    await syncDir(dir);
    onSync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  return fh;
}

/** True when every byte of `buf` from `off` on is zero: the unwritten, preallocated end of a segment. */
export function isZeroFrom(buf: Buffer, off: number): boolean {
  const step = ZEROS.length;
  for (let at = off; at < buf.length; at += step) {
    const end = Math.min(buf.length, at + step);
    if (buf.compare(ZEROS, 0, end - at, at, end) !== 0) return false;
  }
  return true;
}

const ZEROS = Buffer.alloc(64 * 1024);
