/**
 * The saved index: a copy of the key index written beside the database when the member stops
 * cleanly, so that the next open need not read every stored record (index-restore.ts does that).
 *
 * It is a cache, never the only copy of anything: the records in the `kv` sublevel stay the truth,
 * and the file is used only when it describes them.
 * - It is written only by a store with no write staged, in flight or failed, after LevelDB has been
 *   synced, so every record it refers to is durable; it is the index as of revision `rev`. The file
 *   is written under a temporary name, fsynced, renamed and the directory fsynced.
 * - It lives in the database directory, so a database that replaces this one (snapshot install,
 *   restore) never sees it.
 * - At open, the file must be intact (magic, version, CRC-32C of the body) and match the database:
 *   the newest record it refers to is stored, the consistent index is not behind the one it was
 *   saved with, and the compaction marks are neither below the compaction the saved index has seen
 *   nor past `rev` (a compaction past `rev` may have deleted records written after it).
 * - Records written after `rev` (by a run that loaded the file and then stopped without saving, for
 *   instance killed) are read and applied on top, and compactions at or below `rev` since are
 *   applied as at any open: compacting an index twice is the same as compacting it once at the
 *   later revision.
 * Anything else falls back to reading every record.
 *
 * Layout: "ETSINDX1", u32 LE CRC-32C of the body, the body: varints format version (1), rev,
 * compactRev + 1, consistent index, the newest record referred to (main, sub, tombstone 0/1; main 0
 * when there is none), the number of keys, then for each key in ascending order its length, its
 * bytes and its history (KeyIndex.writeTo).
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Backend, MetaKeys, SIDE_FILE_PREFIX } from '../storage/backend';
import { crc32c } from '../storage/crc32c';
import { IndexReader, IndexWriter, KeyIndex } from './key-index';
import { encodeRevision } from './revision';
import type { TreeIndex } from './tree-index';

/** The file, in the database directory. */
export const INDEX_SNAPSHOT_FILE = `${SIDE_FILE_PREFIX}index`;
const MAGIC = Buffer.from('ETSINDX1', 'latin1');
const FORMAT_VERSION = 1;
const HEADER_BYTES = MAGIC.length + 4;

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** What the saved index was taken at. */
export interface IndexSnapshotMeta {
  /** The store's current revision: the index holds every record up to it. */
  rev: number;
  /** The compaction the index has seen (-1: none). */
  compactRev: number;
  /** The consistent index of the database when saved. */
  consistentIndex: number;
}

/** A saved index that matches the database. */
export interface LoadedIndex {
  rev: number;
  keys: string[];
  values: KeyIndex[];
}

const MASK64 = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Growable buffer writer. */
class BufWriter implements IndexWriter {
  buf = Buffer.allocUnsafe(1 << 20);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  uvarint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      b[p++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    b[p++] = v;
    this.pos = p;
  }

  varint64(v: bigint): void {
    if (v === 0n) {
      this.uvarint(0);
      return;
    }
    if (v > 0n && v <= MAX_SAFE) {
      this.uvarint(Number(v));
      return;
    }
    this.ensure(10);
    let u = v & MASK64;
    while (u >= 0x80n) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  /** A binary string (characters below 0x100), one byte per character. */
  latin1(s: string): void {
    this.ensure(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }
}

/** Reader over the body; throws RangeError on malformed input. */
class BufReader implements IndexReader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
  ) {}

  uvarint(): number {
    const b = this.buf;
    let p = this.pos;
    let r = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (p >= b.length) throw new RangeError('saved index: truncated');
      const c = b[p++]!;
      r += (c & 0x7f) * mul;
      if (c < 0x80) {
        if (r > Number.MAX_SAFE_INTEGER) throw new RangeError('saved index: number out of range');
        this.pos = p;
        return r;
      }
      mul *= 0x80;
    }
    throw new RangeError('saved index: number out of range');
  }

  varint64(): bigint {
    let r = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) throw new RangeError('saved index: truncated');
      const c = this.buf[this.pos++]!;
      r |= BigInt(c & 0x7f) << shift;
      if (c < 0x80) return r === 0n ? 0n : BigInt.asIntN(64, r);
      shift += 7n;
    }
    throw new RangeError('saved index: number too long');
  }

  remaining(): number {
    return this.buf.length - this.pos;
  }

  latin1(n: number): string {
    if (n > this.remaining()) throw new RangeError('saved index: truncated');
    const s = this.buf.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

/** Encodes the index (the whole file) as of `meta`. */
export function encodeIndexSnapshot(index: TreeIndex, meta: IndexSnapshotMeta): Buffer {
  const w = new BufWriter();
  w.buf.fill(0, 0, HEADER_BYTES);
  w.pos = HEADER_BYTES;
  w.uvarint(FORMAT_VERSION);
  w.uvarint(meta.rev);
  w.uvarint(meta.compactRev + 1);
  w.uvarint(meta.consistentIndex);
  // The newest record the index refers to: the last modification of some key held.
  let lastMain = 0;
  let lastSub = 0;
  let lastTomb = false;
  index.forEachKey((_k, ki) => {
    if (ki.modMain > lastMain || (ki.modMain === lastMain && ki.modSub > lastSub)) {
      lastMain = ki.modMain;
      lastSub = ki.modSub;
      lastTomb = !ki.isLive();
    }
  });
  w.uvarint(lastMain);
  w.uvarint(lastSub);
  w.uvarint(lastTomb ? 1 : 0);
  w.uvarint(index.size);
  index.forEachKey((k, ki) => {
    w.uvarint(k.length);
    w.latin1(k);
    ki.writeTo(w);
  });
  const out = w.buf.subarray(0, w.pos);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(crc32c(out, HEADER_BYTES, out.length), MAGIC.length);
  return out;
}

/** Writes the file durably into `dir` (temporary file, fsync, rename, directory fsync). */
export async function writeIndexSnapshot(dir: string, data: Uint8Array): Promise<void> {
  const file = path.join(dir, INDEX_SNAPSHOT_FILE);
  const tmp = `${file}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const d = await fsp.open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Removes the file (and a temporary one) from `dir`, if any. */
export async function removeIndexSnapshot(dir: string): Promise<void> {
  const file = path.join(dir, INDEX_SNAPSHOT_FILE);
  await fsp.rm(file, { force: true });
  await fsp.rm(`${file}.tmp`, { force: true });
}

/** Decoded file contents. */
interface Decoded extends IndexSnapshotMeta {
  last: { main: number; sub: number; tombstone: boolean } | undefined;
  keys: string[];
  values: KeyIndex[];
}

/** Decodes a file; throws RangeError when it is not an intact saved index. */
export function decodeIndexSnapshot(buf: Buffer): Decoded {
  if (buf.length < HEADER_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new RangeError('saved index: bad magic');
  if (buf.readUInt32LE(MAGIC.length) !== crc32c(buf, HEADER_BYTES, buf.length)) throw new RangeError('saved index: crc mismatch');
  const r = new BufReader(buf, HEADER_BYTES);
  const version = r.uvarint();
  if (version !== FORMAT_VERSION) throw new RangeError(`saved index: unknown format version ${version}`);
  const rev = r.uvarint();
  const compactRev = r.uvarint() - 1;
  const consistentIndex = r.uvarint();
  const lastMain = r.uvarint();
  const lastSub = r.uvarint();
  const lastTomb = r.uvarint() === 1;
  const n = r.uvarint();
  if (n > r.remaining()) throw new RangeError('saved index: key count past the end');
  const keys = new Array<string>(n);
  const values = new Array<KeyIndex>(n);
  let prev: string | undefined;
  for (let i = 0; i < n; i++) {
    const k = r.latin1(r.uvarint());
    if (prev !== undefined && !(prev < k)) throw new RangeError('saved index: keys out of order');
    keys[i] = k;
    values[i] = KeyIndex.readFrom(r);
    prev = k;
  }
  if (r.remaining() !== 0) throw new RangeError('saved index: trailing bytes');
  return { rev, compactRev, consistentIndex, last: lastMain === 0 ? undefined : { main: lastMain, sub: lastSub, tombstone: lastTomb }, keys, values };
}

/**
 * Reads the saved index of the backend's database and checks it against the database (see the top
 * of this file). Returns undefined, logging why, when there is none or it cannot be used.
 */
export async function loadIndexSnapshot(backend: Backend, log: Log): Promise<LoadedIndex | undefined> {
  const file = path.join(backend.path, INDEX_SNAPSHOT_FILE);
  let buf: Buffer;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log('warn', 'cannot read the saved index; reading every record', { error: String(err) });
    return undefined;
  }
  let d: Decoded;
  try {
    d = decodeIndexSnapshot(buf);
  } catch (err) {
    log('warn', 'the saved index is damaged; reading every record', { error: String(err) });
    await removeIndexSnapshot(backend.path);
    return undefined;
  }
  const why = await mismatch(backend, d);
  if (why !== undefined) {
    // It will not match later either (the database only moves further from it).
    log('info', 'the saved index does not match the database; reading every record', { reason: why, revision: d.rev });
    await removeIndexSnapshot(backend.path);
    return undefined;
  }
  return { rev: d.rev, keys: d.keys, values: d.values };
}

/** Why a decoded saved index does not describe the database, or undefined when it does. */
async function mismatch(backend: Backend, d: Decoded): Promise<string | undefined> {
  const scheduled = await backend.metaNumber(MetaKeys.scheduledCompact, -1);
  const finished = await backend.metaNumber(MetaKeys.finishedCompact, -1);
  const compactRev = Math.max(scheduled, finished);
  if (compactRev > d.rev) return `compacted at ${compactRev}, after the saved revision`;
  if (compactRev < d.compactRev) return `compaction mark ${compactRev} is behind the saved index's ${d.compactRev}`;
  const ci = await backend.metaNumber(MetaKeys.consistentIndex);
  if (ci < d.consistentIndex) return `consistent index ${ci} is behind the saved ${d.consistentIndex}`;
  if (d.last !== undefined && (await backend.kv.get(encodeRevision(d.last.main, d.last.sub, d.last.tombstone))) === undefined) {
    return `record ${d.last.main}.${d.last.sub} is not stored`;
  }
  return undefined;
}

