/**
 * Streaming copies of the state database, used to send a member the whole state (Raft snapshot
 * transfer) and to install it.
 *
 * - `dumpState` reads the whole LevelDB through ONE iterator (one consistent LevelDB snapshot) and
 *   yields chunks of records: [u32 key length][key][u32 value length][value]. The dump carries the
 *   `meta` sublevel, so the receiver learns the consistent index the copy stands at.
 * - `restoreState` writes such a stream into a NEW database directory (never over a live one);
 *   `switchStateDir` then points the member at it atomically: the name of the current state
 *   directory lives in the file `state.current` (written to a temporary file and renamed), and the
 *   old directory is deleted afterwards. A crash at any point leaves either the old or the new
 *   directory current.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Level } from 'level';

const POINTER = 'state.current';
const DEFAULT_STATE = 'state';

/** The state directory the member should open (relative names live under memberDir). */
export function currentStateDir(memberDir: string): string {
  const p = path.join(memberDir, POINTER);
  let name = DEFAULT_STATE;
  if (fs.existsSync(p)) {
    const t = fs.readFileSync(p, 'utf8').trim();
    if (t !== '' && !t.includes('/') && !t.includes('\\')) name = t;
  }
  return path.join(memberDir, name);
}

/** Makes `dir` (a directory directly under memberDir) the current state directory, durably. */
export function switchStateDir(memberDir: string, dir: string): void {
  const name = path.basename(dir);
  const tmp = path.join(memberDir, `${POINTER}.tmp`);
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, name);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(memberDir, POINTER));
  const dfd = fs.openSync(memberDir, 'r');
  fs.fsyncSync(dfd);
  fs.closeSync(dfd);
}

/** Removes state directories other than the current one (left by an interrupted install). */
export function removeStaleStateDirs(memberDir: string): void {
  const current = path.basename(currentStateDir(memberDir));
  for (const e of fs.readdirSync(memberDir)) {
    if ((e === DEFAULT_STATE || e.startsWith('state-')) && e !== current) {
      fs.rmSync(path.join(memberDir, e), { recursive: true, force: true });
    }
  }
}

/** Yields the whole database as record chunks of about `chunkBytes`. */
export async function* dumpState(db: Level<Uint8Array, Uint8Array>, chunkBytes = 256 * 1024): AsyncGenerator<Uint8Array> {
  const it = db.iterator({ keyEncoding: 'view', valueEncoding: 'view' });
  let parts: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const e = await it.next();
      if (e === undefined) break;
      const [k, v] = e;
      const head = Buffer.alloc(4);
      head.writeUInt32BE(k.length);
      const mid = Buffer.alloc(4);
      mid.writeUInt32BE(v.length);
      parts.push(head, Buffer.from(k), mid, Buffer.from(v));
      size += 8 + k.length + v.length;
      if (size >= chunkBytes) {
        yield Buffer.concat(parts);
        parts = [];
        size = 0;
      }
    }
  } finally {
    await it.close();
  }
  if (size > 0) yield Buffer.concat(parts);
}

/**
 * Writes a dump into a new database at `dir` (which must not exist) and closes it. Throws on a
 * malformed stream; the caller removes `dir` then.
 */
export async function restoreState(dir: string, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view', errorIfExists: true });
  await db.open();
  let records = 0;
  try {
    let carry: Buffer = Buffer.alloc(0);
    let batch = db.batch();
    for await (const chunk of chunks) {
      let buf = carry.length === 0 ? Buffer.from(chunk) : Buffer.concat([carry, chunk]);
      let off = 0;
      for (;;) {
        if (buf.length - off < 4) break;
        const kl = buf.readUInt32BE(off);
        if (buf.length - off < 8 + kl) break;
        const vl = buf.readUInt32BE(off + 4 + kl);
        if (buf.length - off < 8 + kl + vl) break;
        const k = buf.subarray(off + 4, off + 4 + kl);
        const v = buf.subarray(off + 8 + kl, off + 8 + kl + vl);
        batch.put(Buffer.from(k), Buffer.from(v));
        records++;
        off += 8 + kl + vl;
        if (batch.length >= 1000) {
          await batch.write();
          batch = db.batch();
        }
      }
      carry = buf.subarray(off);
      buf = Buffer.alloc(0);
    }
    if (carry.length !== 0) throw new Error('state stream ended inside a record');
    await batch.write({ sync: true } as never);
  } finally {
    await db.close();
  }
  return records;
}
