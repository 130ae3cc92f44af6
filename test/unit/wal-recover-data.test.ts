import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EntryType, nodeId } from '../../src/raft/types';
import type { Entry } from '../../src/raft/types';
import { Wal } from '../../src/storage/wal';

function ent(index: number): Entry {
  return { index, term: 1, type: EntryType.Normal, data: new Uint8Array(Buffer.from(`value-${index}`)) };
}

describe('WAL recovery: entry data', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wal-data-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('entries returned own their data; entries a snapshot covers are not returned', async () => {
    const first = await Wal.open(dir);
    const entries: Entry[] = [];
    for (let i = 1; i <= 20; i++) entries.push(ent(i));
    entries.push({ index: 21, term: 1, type: EntryType.Normal, data: new Uint8Array(0) });
    await first.wal.save({ term: 1, vote: nodeId(0n), commit: 21 }, entries, true);
    await first.wal.saveSnapshot({ index: 10, term: 1, confState: { voters: [nodeId(1n)], learners: [] } });
    await first.wal.close();

    const r = await Wal.open(dir);
    expect(r.entries.map((e) => e.index)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
    const buffers = new Set<ArrayBufferLike>();
    for (const e of r.entries) {
      expect(e.data.byteOffset).toBe(0);
      expect(e.data.buffer.byteLength).toBe(e.data.byteLength);
      buffers.add(e.data.buffer);
      if (e.index <= 20) expect(Buffer.from(e.data).toString()).toBe(`value-${e.index}`);
      else expect(e.data.byteLength).toBe(0);
    }
    expect(buffers.size).toBe(r.entries.length);
    await r.wal.close();
  });
});
