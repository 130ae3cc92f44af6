/**
 * The snapshot file: a point-in-time copy of the state database, as `etcdctl snapshot save` stores
 * it and our restore command reads it.
 *
 * Layout: "ETCDTSS1" (8 bytes), then records [u32 key length][key][u32 value length][value] (the
 * whole LevelDB, every sublevel, read through one iterator), then the end mark 0xFFFFFFFF, then zero
 * padding to a multiple of 512 bytes. When streamed to a client, the 32-byte SHA-256 of those bytes
 * follows (etcdctl requires total length % 512 == 32 and checks the digest).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Level } from 'level';
import { dumpState } from './state-snapshot';

const MAGIC = Buffer.from('ETCDTSS1', 'latin1');
const END_MARK = 0xffffffff;

/** Writes the whole database to `file`; returns its size and SHA-256 (of the padded body). */
export async function writeSnapshotFile(db: Level<Uint8Array, Uint8Array>, file: string): Promise<{ size: number; sha256: Buffer }> {
  const fh = await fs.promises.open(file, 'w');
  const hash = createHash('sha256');
  let size = 0;
  const put = async (b: Uint8Array): Promise<void> => {
    hash.update(b);
    size += b.length;
    await fh.write(b);
  };
  try {
    await put(MAGIC);
    for await (const chunk of dumpState(db)) await put(chunk);
    const end = Buffer.alloc(4);
    end.writeUInt32BE(END_MARK);
    await put(end);
    const pad = (512 - (size % 512)) % 512;
    if (pad > 0) await put(Buffer.alloc(pad));
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest() };
}

/**
 * Reads a saved snapshot: checks the trailing SHA-256 when present (a file saved by etcdctl has it)
 * and yields the state records as dump chunks (the format state-snapshot.restoreState reads).
 * Throws on a bad magic, digest or truncated body.
 */
export async function* readSnapshotFile(file: string): AsyncGenerator<Uint8Array> {
  const data = await fs.promises.readFile(file);
  let body = data;
  if (data.length % 512 === 32) {
    body = data.subarray(0, data.length - 32);
    const want = data.subarray(data.length - 32);
    const got = createHash('sha256').update(body).digest();
    if (!got.equals(want)) throw new Error('snapshot file is corrupt: sha256 mismatch');
  }
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error('not a snapshot file of this server');
  }
  let off = MAGIC.length;
  const records: Buffer[] = [];
  let size = 0;
  for (;;) {
    if (off + 4 > body.length) throw new Error('snapshot file is truncated');
    const kl = body.readUInt32BE(off);
    if (kl === END_MARK) break;
    const vOff = off + 4 + kl;
    if (vOff + 4 > body.length) throw new Error('snapshot file is truncated');
    const vl = body.readUInt32BE(vOff);
    const next = vOff + 4 + vl;
    if (next > body.length) throw new Error('snapshot file is truncated');
    records.push(body.subarray(off, next));
    size += next - off;
    off = next;
    if (size >= 256 * 1024) {
      yield Buffer.concat(records);
      records.length = 0;
      size = 0;
    }
  }
  if (records.length > 0) yield Buffer.concat(records);
}
