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

/** The LevelDB state store. */
export class Backend {
  private constructor(
    readonly db: Level<Bytes, Bytes>,
    readonly kv: ByteSublevel,
    readonly meta: ByteSublevel,
    readonly lease: ByteSublevel,
    readonly members: ByteSublevel,
    readonly auth: ByteSublevel,
    readonly path: string,
  ) {}

  /** Opens (creating if needed) the database at `path`. */
  static async open(path: string): Promise<Backend> {
    const db = new Level<Bytes, Bytes>(path, enc);
    await db.open();
    const sub = (name: string): ByteSublevel => db.sublevel<Bytes, Bytes>(name, enc) as unknown as ByteSublevel;
    return new Backend(db, sub('kv'), sub('meta'), sub('lease'), sub('members'), sub('auth'), path);
  }

  /** Writes the ops atomically (one LevelDB batch). */
  async write(ops: BatchOp[], sync = false): Promise<void> {
    if (ops.length === 0) return;
    await this.db.batch(ops as never, { sync });
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
