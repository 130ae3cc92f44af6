/**
 * The state database: one LevelDB with sublevels `kv` (revision → KeyValue), `meta` (consistent
 * index, compaction marks), `lease`, `members` and `auth`. Keys and values are raw bytes.
 * LevelDB writes are not synced: after a crash, entries above the consistent index are replayed
 * from the WAL. `sync()` forces durability before the WAL is cut behind a snapshot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';
import type { AbstractSublevel } from 'abstract-level';

type Bytes = Uint8Array;
/** A sublevel with byte keys and values. */
export type ByteSublevel = AbstractSublevel<Level<Bytes, Bytes>, Bytes | string | Buffer, Bytes, Bytes>;

/** One write in a batch. */
export interface BatchOp {
  type: 'put' | 'del';
  sublevel: ByteSublevel;
  key: Bytes;
  value?: Bytes;
}

const enc = { keyEncoding: 'view', valueEncoding: 'view' } as const;

/**
 * Entries and bytes per read of {@link Backend.scan}. Small batches keep the entries short-lived
 * (collected young), which matters more than the number of reads.
 */
const SCAN_BATCH_ENTRIES = 1024;
const SCAN_BATCH_BYTES = 1 << 20;

/**
 * Files in the database directory whose names start with this are not LevelDB's: they are kept
 * beside the database (and go with it) but are not counted in its size.
 */
export const SIDE_FILE_PREFIX = 'side-';

/** Keys of the `meta` sublevel. */
export const MetaKeys = {
  consistentIndex: Buffer.from('consistent_index'),
  consistentTerm: Buffer.from('consistent_term'),
  scheduledCompact: Buffer.from('scheduled_compact_rev'),
  finishedCompact: Buffer.from('finished_compact_rev'),
} as const;

/** Encodes a non-negative safe integer as 8 big-endian bytes. */
export function u64Bytes(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
}

/** Decodes 8 big-endian bytes to a safe integer. */
export function bytesU64(b: Uint8Array): number {
  const v = Buffer.from(b.buffer, b.byteOffset, b.byteLength).readBigUInt64BE(0);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('u64 out of safe range');
  return Number(v);
}

/** An op as classic-level's native batch takes it: full database key, raw bytes. */
interface RawOp {
  type: 'put' | 'del';
  key: Buffer;
  value?: Uint8Array;
}

/** classic-level's `_batch(operations, options)`. */
type RawBatch = (ops: RawOp[], options: { sync: boolean }) => Promise<void>;

/** The part of a classic-level iterator that scans use. */
interface RawIterator<K, V> {
  nextv(n: number): Promise<[K, V][]>;
  seek(target: Uint8Array, options: { keyEncoding: 'buffer' }): void;
  close(): Promise<void>;
}

/**
 * The database key range of a sublevel: its prefix ("!name!") and the bound every key of it sorts
 * before ("!name" followed by the next character after the separator).
 */
function sublevelBounds(sub: ByteSublevel): [Buffer, Buffer] {
  const lower = Buffer.from(sub.prefix, 'utf8');
  const upper = Buffer.from(lower);
  upper[upper.length - 1]!++;
  return [lower, upper];
}

/** The LevelDB state store. */
export class Backend {
  /** Database key prefix of each sublevel, for writes that bypass the per-op sublevel handling. */
  private readonly prefixes = new Map<ByteSublevel, Buffer>();
  /** classic-level's batch of ready-encoded ops, when available (see write). */
  private readonly rawBatch: RawBatch | undefined;

  private constructor(
    readonly db: Level<Bytes, Bytes>,
    readonly kv: ByteSublevel,
    readonly meta: ByteSublevel,
    readonly lease: ByteSublevel,
    readonly members: ByteSublevel,
    readonly auth: ByteSublevel,
    readonly path: string,
  ) {
    for (const sub of [kv, meta, lease, members, auth]) this.prefixes.set(sub, sublevelBounds(sub)[0]);
    const raw = (db as unknown as { _batch?: unknown })._batch;
    this.rawBatch = typeof raw === 'function' ? (raw as RawBatch) : undefined;
  }

  /** Opens (creating if needed) the database at `path`. */
  static async open(path: string): Promise<Backend> {
    const db = new Level<Bytes, Bytes>(path, enc);
    await db.open();
    const sub = (name: string): ByteSublevel => db.sublevel<Bytes, Bytes>(name, enc) as unknown as ByteSublevel;
    return new Backend(db, sub('kv'), sub('meta'), sub('lease'), sub('members'), sub('auth'), path);
  }

  /**
   * Writes the ops atomically (one LevelDB batch). The ops are prefixed here and handed to
   * classic-level's batch directly: abstract-level's batch() copies, checks and re-encodes every op
   * in JavaScript, which costs more than the write itself for batches of small records. Anything
   * that path does not cover (an op of another sublevel, a key or value that is not a Uint8Array,
   * a database not open) goes through batch() as before.
   */
  async write(ops: BatchOp[], sync = false): Promise<void> {
    if (ops.length === 0) return;
    const raw = this.rawBatch;
    const encoded = raw === undefined || this.db.status !== 'open' ? undefined : this.encodeOps(ops);
    if (encoded === undefined) {
      await this.db.batch(ops as never, { sync });
      return;
    }
    await raw!.call(this.db, encoded, { sync });
  }

  /** The ops with full database keys, or undefined when one of them is not of the simple kind. */
  private encodeOps(ops: BatchOp[]): RawOp[] | undefined {
    const out = new Array<RawOp>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const prefix = this.prefixes.get(op.sublevel);
      if (prefix === undefined || !(op.key instanceof Uint8Array)) return undefined;
      const key = Buffer.allocUnsafe(prefix.length + op.key.length);
      prefix.copy(key, 0);
      key.set(op.key, prefix.length);
      if (op.type === 'put') {
        if (!(op.value instanceof Uint8Array)) return undefined;
        out[i] = { type: 'put', key, value: op.value };
      } else if (op.type === 'del') {
        out[i] = { type: 'del', key };
      } else {
        return undefined;
      }
    }
    return out;
  }

  /**
   * Reads every entry of `sub` in key order, in large batches, calling `fn` with each batch while
   * the next one is read (and waiting for it when it returns a promise). Values are exact copies;
   * keys are full database keys (with the sublevel prefix, `prefixLength` characters) decoded as
   * UTF-8 into strings, which is much cheaper than a buffer per key but lossy: bytes that are not
   * valid UTF-8 become U+FFFD. ASCII bytes always come out as themselves, one character each, and
   * nothing else produces ASCII characters, so a key's trailing ASCII characters are its exact
   * trailing bytes. `exactKeys` reads keys exactly where that is not enough. With `from`, the scan
   * starts at that key (of the sublevel) instead of its first.
   */
  async scan(sub: ByteSublevel, fn: (entries: [string, Buffer][], prefixLength: number) => void | Promise<void>, from?: Uint8Array): Promise<void> {
    const [lower, upper] = sublevelBounds(sub);
    // Range bounds are encoded with the key encoding: the prefix bounds are ASCII, but a binary
    // start must be given to seek() with its own encoding.
    const it = this.db.iterator({
      gte: lower.toString('latin1'),
      lt: upper.toString('latin1'),
      keyEncoding: 'utf8',
      valueEncoding: 'buffer',
      highWaterMarkBytes: SCAN_BATCH_BYTES,
      fillCache: false,
    } as never) as unknown as RawIterator<string, Buffer>;
    if (from !== undefined) it.seek(Buffer.concat([lower, from]), { keyEncoding: 'buffer' });
    let next: Promise<[string, Buffer][]> | undefined = it.nextv(SCAN_BATCH_ENTRIES);
    try {
      for (;;) {
        const batch: [string, Buffer][] = await next;
        next = undefined;
        if (batch.length === 0) break;
        next = it.nextv(SCAN_BATCH_ENTRIES);
        await fn(batch, lower.length);
      }
    } finally {
      if (next !== undefined) await next.catch(() => undefined);
      await it.close();
    }
  }

  /**
   * The exact keys (without the sublevel prefix) of the `count` entries of `sub` that follow the
   * key `after`, or when it is undefined, that start at `from` (at the first entry when that is
   * undefined too); fewer when the sublevel ends first.
   */
  async exactKeys(sub: ByteSublevel, after: Uint8Array | undefined, count: number, from?: Uint8Array): Promise<Buffer[]> {
    const [lower, upper] = sublevelBounds(sub);
    const range =
      after !== undefined ? { gt: Buffer.concat([lower, after]) } : { gte: from === undefined ? lower : Buffer.concat([lower, from]) };
    const it = this.db.iterator({
      ...range,
      lt: upper,
      limit: count,
      keyEncoding: 'buffer',
      valueEncoding: 'utf8',
      highWaterMarkBytes: SCAN_BATCH_BYTES,
      fillCache: false,
    } as never) as unknown as RawIterator<Buffer, string>;
    const out: Buffer[] = [];
    try {
      while (out.length < count) {
        const batch = await it.nextv(count - out.length);
        if (batch.length === 0) break;
        for (const [k] of batch) out.push(k.subarray(lower.length));
      }
    } finally {
      await it.close();
    }
    return out;
  }

  /** Reads a meta value as a number (`absent` when missing, 0 by default). */
  async metaNumber(key: Uint8Array, absent = 0): Promise<number> {
    const v = await this.meta.get(key);
    return v === undefined ? absent : bytesU64(v);
  }

  /** Forces previous writes to disk by writing a synced marker. */
  async sync(): Promise<void> {
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: Buffer.from('sync_marker'), value: Buffer.alloc(0) }] as never, { sync: true } as never);
  }

  /** On-disk size of the database files in bytes. */
  async approximateSize(): Promise<number> {
    let total = 0;
    for (const name of await fs.promises.readdir(this.path)) {
      if (name.startsWith(SIDE_FILE_PREFIX)) continue;
      try {
        total += (await fs.promises.stat(path.join(this.path, name))).size;
      } catch {
        // a file LevelDB removed meanwhile
      }
    }
    return total;
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.db.close();
  }
}
