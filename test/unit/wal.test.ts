import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { EntryType, NONE, nodeId } from '../../src/raft/types';
import type { Entry, HardState, SnapshotMeta } from '../../src/raft/types';
import { Wal, WalClosedError, WalCorruptError, WalGapError } from '../../src/storage/wal';
import type { WalOptions } from '../../src/storage/wal';
import { isZeroFrom } from '../../src/storage/wal-segment';

const dirs: string[] = [];

async function tmpDir(): Promise<string> {
  const d = await fsp.mkdtemp(path.join(os.tmpdir(), 'wal-test-'));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

function ent(index: number, term = 1, payload = `value-${index}-${term}`): Entry {
  return { index, term, type: index % 7 === 0 ? EntryType.ConfChange : EntryType.Normal, data: new Uint8Array(Buffer.from(payload)) };
}

function range(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

function hs(term: number, commit: number, vote = 0n): HardState {
  return { term, vote: nodeId(vote), commit };
}

function snap(index: number, term: number): SnapshotMeta {
  return { index, term, confState: { voters: [nodeId(1n), nodeId(2n), nodeId(0xffff_ffff_ffff_fff1n)], learners: [nodeId(9n)] } };
}

interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function capture(): { lines: LogLine[]; log: NonNullable<WalOptions['log']> } {
  const lines: LogLine[] = [];
  return { lines, log: (level, msg, fields) => lines.push(fields === undefined ? { level, msg } : { level, msg, fields }) };
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

async function reopen(dir: string, opts?: WalOptions): Promise<Awaited<ReturnType<typeof Wal.open>>> {
  return Wal.open(dir, opts);
}

async function copyDir(from: string, to: string): Promise<void> {
  await fsp.mkdir(to, { recursive: true });
  for (const n of await fsp.readdir(from)) await fsp.copyFile(path.join(from, n), path.join(to, n));
}

describe('Wal: basics', () => {
  test('a missing directory becomes a fresh WAL with one segment', async () => {
    const dir = path.join(await tmpDir(), 'member', 'wal');
    const { wal, hardState, entries, snapshot } = await Wal.open(dir);
    expect(hardState).toEqual({ term: 0, vote: NONE, commit: 0 });
    expect(entries).toEqual([]);
    expect(snapshot).toBeUndefined();
    expect(await segmentFiles(dir)).toEqual(['0000000000000001-0000000000000001.wal']);
    await wal.close();
    const again = await reopen(dir);
    expect(again.entries).toEqual([]);
    await again.wal.close();
  });

  test('entries and hard state survive a reopen, and appends continue after it', async () => {
    const dir = await tmpDir();
    const a = await Wal.open(dir);
    await a.wal.save(hs(1, 0, 1n), range(1, 3), true);
    await a.wal.save(undefined, range(4, 5), false);
    await a.wal.save(hs(2, 5, 0xffff_ffff_ffff_ffffn), [], true);
    await a.wal.close();

    const b = await reopen(dir);
    expect(b.entries).toEqual(range(1, 5));
    expect(b.hardState).toEqual(hs(2, 5, 0xffff_ffff_ffff_ffffn));
    await b.wal.save(hs(3, 6), range(6, 6, 3), true);
    await b.wal.close();

    const c = await reopen(dir);
    expect(c.entries).toEqual([...range(1, 5), ent(6, 3)]);
    expect(c.hardState).toEqual(hs(3, 6));
    await c.wal.close();
  });

  test('one save is one write call and one fdatasync; sync=false does no fdatasync until close', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    const base = { ...wal.stats };
    const batch = range(1, 300);
    await wal.save(hs(1, 300), batch, true);
    expect(wal.stats.writes - base.writes).toBe(1);
    expect(wal.stats.fsyncs - base.fsyncs).toBe(1);
    const expectedBytes = batch.reduce((n, e) => n + 9 + 17 + e.data.length, 0) + 9 + 24;
    expect(wal.stats.bytes - base.bytes).toBe(expectedBytes);

    await wal.save(undefined, range(301, 310), false);
    expect(wal.stats.fsyncs - base.fsyncs).toBe(1);
    expect(wal.stats.writes - base.writes).toBe(2);
    await wal.close();
    expect(wal.stats.fsyncs - base.fsyncs).toBe(2);
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, 310));
    await again.wal.close();
  });

  test('writes after close reject; writes queued before close complete', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    const pending = wal.save(hs(1, 1), range(1, 2), false);
    const closing = wal.close();
    await expect(wal.save(undefined, range(3, 3), true)).rejects.toBeInstanceOf(WalClosedError);
    await expect(wal.saveSnapshot(snap(1, 1))).rejects.toBeInstanceOf(WalClosedError);
    await expect(wal.releaseTo(1)).rejects.toBeInstanceOf(WalClosedError);
    await pending;
    await closing;
    await wal.close();
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, 2));
    await again.wal.close();
  });

  test('invalid input is rejected before anything is written', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(undefined, range(1, 3), false);
    await expect(wal.save(undefined, range(5, 6), false)).rejects.toThrow(/gap/);
    await expect(wal.save(undefined, [ent(4), ent(6)], false)).rejects.toThrow(/contiguous/);
    await expect(wal.save(undefined, [ent(0)], false)).rejects.toThrow(RangeError);
    await expect(wal.save(undefined, [{ ...ent(4), term: 2 ** 53 }], false)).rejects.toThrow(RangeError);
    await expect(wal.save({ term: 1, vote: nodeId(1n << 64n), commit: 0 }, [], false)).rejects.toThrow(RangeError);
    await expect(wal.save({ term: -1, vote: NONE, commit: 0 }, [], false)).rejects.toThrow(RangeError);
    await wal.save(undefined, range(4, 4), true);
    await wal.close();
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, 4));
    await again.wal.close();
  });

  test('a leftover .tmp segment from an interrupted rollover is removed', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(undefined, range(1, 2), true);
    await wal.close();
    await fsp.writeFile(path.join(dir, '0000000000000002-0000000000000003.wal.tmp'), Buffer.from([1, 2, 3]));
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, 2));
    expect((await fsp.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await again.wal.close();
  });
});

describe('Wal: overwrites', () => {
  test('an entry at or below the last index replaces the tail from there', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(hs(1, 2), range(1, 10), true);
    await wal.save(hs(2, 2), range(6, 8, 2), true);
    await wal.close();
    const a = await reopen(dir);
    expect(a.entries).toEqual([...range(1, 5), ...range(6, 8, 2)]);
    // Overwrite again after a reopen, down to the very first entry.
    await a.wal.save(hs(3, 0), range(1, 2, 3), true);
    await a.wal.close();
    const b = await reopen(dir);
    expect(b.entries).toEqual(range(1, 2, 3));
    expect(b.hardState).toEqual(hs(3, 0));
    await b.wal.close();
  });

  test('overwrites apply across segment boundaries', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 150 });
    for (let i = 1; i <= 20; i++) await wal.save(undefined, [ent(i)], true);
    await wal.save(undefined, range(3, 4, 2), true);
    await wal.close();
    expect((await segmentFiles(dir)).length).toBeGreaterThan(3);
    const a = await reopen(dir, { segmentBytes: 150 });
    expect(a.entries).toEqual([...range(1, 2), ...range(3, 4, 2)]);
    await a.wal.close();
  });
});

describe('Wal: segments', () => {
  test('rolls over past segmentBytes and replays across segments', async () => {
    const dir = await tmpDir();
    const segmentBytes = 256;
    const { wal } = await Wal.open(dir, { segmentBytes });
    for (let i = 1; i <= 60; i++) await wal.save(hs(1, i - 1), [ent(i)], i % 3 === 0);
    await wal.close();

    const names = await segmentFiles(dir);
    expect(names.length).toBeGreaterThan(5);
    const parsed = names.map((n) => n.slice(0, -4).split('-').map((h) => parseInt(h, 16)) as [number, number]);
    parsed.forEach(([seq], k) => expect(seq).toBe(k + 1));
    for (let k = 1; k < parsed.length; k++) expect((parsed[k] as [number, number])[1]).toBeGreaterThan((parsed[k - 1] as [number, number])[1]);
    // No segment grows far beyond the limit: one small batch at most goes past it.
    for (const n of names.slice(0, -1)) {
      const { size } = await fsp.stat(path.join(dir, n));
      expect(size).toBeGreaterThanOrEqual(segmentBytes);
      expect(size).toBeLessThan(segmentBytes + 120);
    }

    const again = await reopen(dir, { segmentBytes });
    expect(again.entries).toEqual(range(1, 60));
    expect(again.hardState).toEqual(hs(1, 59));
    await again.wal.save(hs(2, 60), range(61, 70, 2), true);
    await again.wal.close();
    const third = await reopen(dir, { segmentBytes });
    expect(third.entries).toEqual([...range(1, 60), ...range(61, 70, 2)]);
    expect(third.hardState).toEqual(hs(2, 60));
    await third.wal.close();
  });

  test('the hard state survives even when its record lies in a released segment', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 128 });
    await wal.save(hs(7, 3, 2n), range(1, 3), true);
    for (let i = 4; i <= 40; i++) await wal.save(undefined, [ent(i)], false);
    await wal.saveSnapshot(snap(35, 1));
    await wal.releaseTo(35);
    await wal.close();
    const again = await reopen(dir);
    expect(again.hardState).toEqual(hs(7, 3, 2n));
    expect(again.snapshot).toEqual(snap(35, 1));
    expect(again.entries).toEqual(range(36, 40));
    await again.wal.close();
  });
});

describe('Wal: recovery from damage', () => {
  /** Builds a one-segment WAL whose last record is a single entry; returns sizes before and after it. */
  async function buildTornFixture(): Promise<{ golden: string; file: string; good: number; end: number; kept: Entry[] }> {
    const golden = await tmpDir();
    // Not preallocated, so the file's size marks the end of the last record.
    const { wal } = await Wal.open(golden, { preallocate: false });
    await wal.save(hs(1, 3), range(1, 3), true);
    await wal.save(hs(2, 4), range(4, 5, 2), true);
    const names = await segmentFiles(golden);
    const file = names[0] as string;
    const good = (await fsp.stat(path.join(golden, file))).size;
    await wal.save(undefined, [ent(6, 2, 'the-last-record')], true);
    await wal.close();
    const end = (await fsp.stat(path.join(golden, file))).size;
    return { golden, file, good, end, kept: [...range(1, 3), ...range(4, 5, 2)] };
  }

  test('a torn last record is cut at every possible length, and the WAL stays writable', async () => {
    const { golden, file, good, end, kept } = await buildTornFixture();
    expect(end - good).toBeGreaterThan(30);
    for (let cut = good; cut < end; cut++) {
      const dir = await tmpDir();
      await copyDir(golden, dir);
      await fsp.truncate(path.join(dir, file), cut);
      const { lines, log } = capture();
      const a = await Wal.open(dir, { log });
      expect(a.entries).toEqual(kept);
      expect(a.hardState).toEqual(hs(2, 4));
      const after = await fsp.readFile(path.join(dir, file));
      expect(after.subarray(0, good).equals((await fsp.readFile(path.join(golden, file))).subarray(0, good))).toBe(true);
      expect(isZeroFrom(after, good)).toBe(true);
      expect(lines.filter((l) => l.level === 'warn').length).toBe(cut > good ? 1 : 0);
      await a.wal.save(hs(3, 6), range(6, 7, 3), true);
      await a.wal.close();
      const b = await Wal.open(dir);
      expect(b.entries).toEqual([...kept, ...range(6, 7, 3)]);
      expect(b.hardState).toEqual(hs(3, 6));
      await b.wal.close();
      await fsp.rm(dir, { recursive: true });
    }
  });

  test('a flipped byte anywhere in the last record cuts that record', async () => {
    const { golden, file, good, end, kept } = await buildTornFixture();
    for (let at = good; at < end; at++) {
      const dir = await tmpDir();
      await copyDir(golden, dir);
      const p = path.join(dir, file);
      const bytes = await fsp.readFile(p);
      bytes[at] = (bytes[at] as number) ^ 0x5a;
      await fsp.writeFile(p, bytes);
      const { lines, log } = capture();
      const a = await Wal.open(dir, { log });
      expect(a.entries).toEqual(kept);
      expect(lines.some((l) => l.level === 'warn' && l.fields?.['offset'] === good)).toBe(true);
      await a.wal.save(undefined, [ent(6, 2, 'again')], true);
      await a.wal.close();
      const b = await Wal.open(dir);
      expect(b.entries).toEqual([...kept, ent(6, 2, 'again')]);
      await b.wal.close();
      await fsp.rm(dir, { recursive: true });
    }
  });

  test('zeros after the last record are the clean end of the log: no warning, and appends go on after the records', async () => {
    const { golden, file } = await buildTornFixture();
    const dir = await tmpDir();
    await copyDir(golden, dir);
    await fsp.appendFile(path.join(dir, file), Buffer.alloc(4096));
    const { lines, log } = capture();
    const a = await Wal.open(dir, { log });
    expect(a.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    await a.wal.save(undefined, [ent(7, 2, 'after-zeros')], true);
    await a.wal.close();
    const b = await Wal.open(dir);
    expect(b.entries.map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    await b.wal.close();
  });

  test('the segment being written is preallocated: its size does not change as records are appended', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 1 << 20 });
    const file = path.join(dir, (await segmentFiles(dir))[0] as string);
    expect((await fsp.stat(file)).size).toBe(1 << 20);
    await wal.save(hs(1, 10), range(1, 10), true);
    expect((await fsp.stat(file)).size).toBe(1 << 20);
    await wal.close();
    const again = await Wal.open(dir, { segmentBytes: 1 << 20 });
    expect(again.entries).toEqual(range(1, 10));
    expect(again.hardState).toEqual(hs(1, 10));
    await again.wal.close();
  });

  test('an older segment that ends in preallocated zeros is read as complete', async () => {
    // Preallocated for 1 MiB segments, then reopened with smaller ones: the first segment is
    // closed by a rollover with most of its preallocated space unused.
    const dir = await tmpDir();
    const first = await Wal.open(dir, { segmentBytes: 1 << 20 });
    await first.wal.save(hs(1, 5), range(1, 5), true);
    await first.wal.close();
    const second = await Wal.open(dir, { segmentBytes: 200 });
    for (let i = 6; i <= 20; i++) await second.wal.save(hs(1, i), [ent(i)], true);
    await second.wal.close();
    const names = await segmentFiles(dir);
    expect(names.length).toBeGreaterThan(2);
    const head = await fsp.readFile(path.join(dir, names[0] as string));
    expect(head.length).toBe(1 << 20);
    expect(head[head.length - 1]).toBe(0);
    const again = await Wal.open(dir, { segmentBytes: 200 });
    expect(again.entries).toEqual(range(1, 20));
    expect(again.hardState).toEqual(hs(1, 20));
    await again.wal.close();
  });

  async function buildSegments(): Promise<{ dir: string; names: string[] }> {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 200 });
    for (let i = 1; i <= 40; i++) await wal.save(hs(1, i), [ent(i)], true);
    await wal.close();
    const names = await segmentFiles(dir);
    expect(names.length).toBeGreaterThanOrEqual(4);
    return { dir, names };
  }

  test('a flipped byte in an earlier segment is an error, not a silent cut', async () => {
    const { dir, names } = await buildSegments();
    const golden = await tmpDir();
    await copyDir(dir, golden);
    for (const victim of [names[0] as string, names[2] as string]) {
      const size = (await fsp.stat(path.join(golden, victim))).size;
      for (const at of [0, 4, 12, 29, 30, 40, Math.floor(size / 2), size - 1]) {
        const work = await tmpDir();
        await copyDir(golden, work);
        const p = path.join(work, victim);
        const bytes = await fsp.readFile(p);
        bytes[at] = (bytes[at] as number) ^ 0x01;
        await fsp.writeFile(p, bytes);
        const err = await Wal.open(work).then(
          async (r) => {
            await r.wal.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WalCorruptError);
        expect((err as WalCorruptError).file).toBe(p);
        await fsp.rm(work, { recursive: true });
      }
    }
  });

  test('a torn earlier segment, a missing middle segment or a bad last-segment header is an error', async () => {
    const { dir, names } = await buildSegments();
    const golden = await tmpDir();
    await copyDir(dir, golden);

    const torn = await tmpDir();
    await copyDir(golden, torn);
    const first = path.join(torn, names[0] as string);
    await fsp.truncate(first, (await fsp.stat(first)).size - 3);
    await expect(Wal.open(torn)).rejects.toBeInstanceOf(WalCorruptError);

    const gap = await tmpDir();
    await copyDir(golden, gap);
    await fsp.rm(path.join(gap, names[1] as string));
    await expect(Wal.open(gap)).rejects.toThrow(/sequence/);

    const header = await tmpDir();
    await copyDir(golden, header);
    const last = path.join(header, names[names.length - 1] as string);
    const bytes = await fsp.readFile(last);
    bytes[10] = (bytes[10] as number) ^ 0x80;
    await fsp.writeFile(last, bytes);
    await expect(Wal.open(header)).rejects.toBeInstanceOf(WalCorruptError);
  });
});

describe('Wal: snapshots and release', () => {
  test('releaseTo deletes only segments wholly at or below the snapshot, and replay starts after it', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 300 });
    for (let i = 1; i <= 60; i++) await wal.save(hs(1, i), [ent(i)], false);
    // Without a snapshot marker nothing may be released.
    const unreleased = await segmentFiles(dir);
    await wal.releaseTo(50);
    expect(await segmentFiles(dir)).toEqual(unreleased);

    await wal.saveSnapshot(snap(30, 1));
    const before = await segmentFiles(dir);
    await wal.releaseTo(30);
    const after = await segmentFiles(dir);
    const firstIndexOf = (n: string): number => parseInt(n.split('-')[1] as string, 16);
    // The segment holding entry 31 and everything after it stay; everything before it goes.
    const keepFrom = before.findIndex((n, k) => {
      const next = before[k + 1];
      return next === undefined || firstIndexOf(next) > 31;
    });
    expect(keepFrom).toBeGreaterThan(0);
    expect(after).toEqual(before.slice(keepFrom));
    expect(firstIndexOf(after[0] as string)).toBeLessThanOrEqual(31);

    // A release past the newest marker is capped at the marker.
    await wal.releaseTo(1000);
    expect(await segmentFiles(dir)).toEqual(after);
    await wal.close();

    const a = await reopen(dir);
    expect(a.snapshot).toEqual(snap(30, 1));
    expect(a.entries).toEqual(range(31, 60));
    expect(a.hardState).toEqual(hs(1, 60));
    await a.wal.close();

    // The caller has a newer snapshot whose marker was never written: start after it.
    const b = await reopen(dir, { snapshotIndex: 45 });
    expect(b.snapshot).toEqual(snap(30, 1));
    expect(b.entries).toEqual(range(46, 60));
    await b.wal.close();

    // The caller's snapshot is older than what the WAL still holds: the entries in between are gone.
    const err: unknown = await Wal.open(dir, { snapshotIndex: 10 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalGapError);
    expect((err as WalGapError).after).toBe(10);
  });

  test('snapshotIndex selects the newest marker at or below it', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(undefined, range(1, 20), true);
    await wal.saveSnapshot(snap(5, 1));
    await wal.saveSnapshot(snap(15, 1));
    await wal.close();
    const newest = await reopen(dir);
    expect(newest.snapshot?.index).toBe(15);
    expect(newest.entries).toEqual(range(16, 20));
    await newest.wal.close();
    const older = await reopen(dir, { snapshotIndex: 5 });
    expect(older.snapshot?.index).toBe(5);
    expect(older.entries).toEqual(range(6, 20));
    await older.wal.close();
    const none = await reopen(dir, { snapshotIndex: 0 });
    expect(none.snapshot).toBeUndefined();
    expect(none.entries).toEqual(range(1, 20));
    await none.wal.close();
  });

  test("a snapshot whose term differs from the log's entry at its index replaces the log", async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(hs(1, 4), range(1, 10, 1), true);
    await wal.saveSnapshot(snap(8, 3));
    await wal.close();
    const a = await reopen(dir);
    expect(a.snapshot).toEqual(snap(8, 3));
    expect(a.entries).toEqual([]); // the conflicting 9 and 10 of term 1 are gone
    await a.wal.save(hs(3, 10), range(9, 12, 3), true);
    await a.wal.close();
    const b = await reopen(dir);
    expect(b.entries).toEqual(range(9, 12, 3));
    await b.wal.close();
  });

  test("a snapshot of the member's own log keeps the entries after it", async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 200 });
    await wal.save(hs(1, 8), range(1, 10, 1), true);
    await wal.saveSnapshot(snap(8, 1));
    // Roll over several times so the marker is copied into later segments.
    for (let i = 11; i <= 30; i++) await wal.save(undefined, [ent(i)], false);
    await wal.close();
    const a = await reopen(dir);
    expect(a.entries).toEqual(range(9, 30));
    await a.wal.close();
  });

  test('a snapshot past the end of the log lets entries continue after it', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await wal.save(undefined, range(1, 5), true);
    await expect(wal.save(undefined, range(21, 22, 2), true)).rejects.toThrow(/gap/);
    await wal.saveSnapshot(snap(20, 2));
    await wal.save(hs(2, 21), range(21, 22, 2), true);
    await wal.close();
    const a = await reopen(dir);
    expect(a.snapshot?.index).toBe(20);
    expect(a.entries).toEqual(range(21, 22, 2));
    await a.wal.close();
  });
});

describe('Wal: small groups', () => {
  const idle = (): Promise<void> => new Promise((r) => setImmediate(r));

  test('with the writer idle, a small group is written before save() returns; a synced one is also synced', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await idle();
    const base = { ...wal.stats };
    const p1 = wal.save(hs(1, 1), [ent(1)], true);
    expect(wal.stats.writes - base.writes).toBe(1);
    expect(wal.stats.fsyncs - base.fsyncs).toBe(1);
    await p1;
    await idle();
    const p2 = wal.save(hs(1, 2), [], false);
    expect(wal.stats.writes - base.writes).toBe(2);
    expect(wal.stats.fsyncs - base.fsyncs).toBe(1);
    await p2;
    await wal.close();
    expect(wal.stats.fsyncs - base.fsyncs).toBe(2);
    const again = await reopen(dir);
    expect(again.entries).toEqual([ent(1)]);
    expect(again.hardState).toEqual(hs(1, 2));
    await again.wal.close();
  });
});

describe('Wal: small groups in one turn', () => {
  test('saves issued in one turn share fdatasyncs: after the first, they are written as groups', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir);
    await new Promise((r) => setImmediate(r));
    const base = { ...wal.stats };
    const calls: Promise<void>[] = [];
    for (let i = 1; i <= 10; i++) calls.push(wal.save(hs(1, i), [ent(i)], true));
    await Promise.all(calls);
    expect(wal.stats.fsyncs - base.fsyncs).toBeLessThanOrEqual(3);
    await wal.close();
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, 10));
    expect(again.hardState).toEqual(hs(1, 10));
    await again.wal.close();
  });
});

describe('Wal: concurrency', () => {
  test('overlapping saves keep call order, all resolve in order, and share fdatasyncs', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 1024 });
    const fsyncsBefore = wal.stats.fsyncs;
    const resolved: number[] = [];
    const calls: Promise<void>[] = [];
    const n = 60;
    for (let i = 1; i <= n; i++) {
      calls.push(wal.save(hs(1, i), [ent(i)], true).then(() => void resolved.push(i)));
    }
    await Promise.all(calls);
    expect(resolved).toEqual(range(1, n).map((e) => e.index));
    const fsyncs = wal.stats.fsyncs - fsyncsBefore;
    expect(fsyncs).toBeLessThan(n);
    await wal.close();
    const again = await reopen(dir);
    expect(again.entries).toEqual(range(1, n));
    expect(again.hardState).toEqual(hs(1, n));
    await again.wal.close();
  });

  test('saves, snapshot markers and releases issued together run in call order', async () => {
    const dir = await tmpDir();
    const { wal } = await Wal.open(dir, { segmentBytes: 200 });
    const ops: Promise<void>[] = [];
    for (let i = 1; i <= 30; i++) ops.push(wal.save(undefined, [ent(i)], i % 2 === 0));
    ops.push(wal.saveSnapshot(snap(20, 1)));
    ops.push(wal.releaseTo(20));
    for (let i = 31; i <= 40; i++) ops.push(wal.save(undefined, [ent(i)], false));
    ops.push(wal.save(undefined, range(38, 39, 2), true)); // overwrite queued behind the others
    await Promise.all(ops);
    await wal.close();
    const names = await segmentFiles(dir);
    expect(names[0]?.startsWith('0000000000000001-')).toBe(false);
    const a = await reopen(dir);
    expect(a.snapshot?.index).toBe(20);
    expect(a.entries).toEqual([...range(21, 37), ...range(38, 39, 2)]);
    await a.wal.close();
  });
});

describe('Wal: model check', () => {
  type Cmd =
    | { t: 'append'; n: number; sync: boolean }
    | { t: 'overwrite'; back: number; n: number }
    | { t: 'hard'; commitBack: number }
    | { t: 'reopen' };

  const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 0, max: 12 }), sync: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('overwrite' as const), back: fc.integer({ min: 0, max: 6 }), n: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('hard' as const), commitBack: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
  );

  test('replay always equals a simple model of the log', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(96, 200, 512, 1 << 20), fc.array(cmdArb, { minLength: 1, maxLength: 25 }), async (segmentBytes, cmds) => {
        const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wal-model-'));
        try {
          let model: Entry[] = [];
          let modelHs: HardState = { term: 0, vote: NONE, commit: 0 };
          let term = 1;
          let opened = await Wal.open(dir, { segmentBytes });
          for (const c of cmds) {
            if (c.t === 'append') {
              const batch = range(model.length + 1, model.length + c.n, term);
              await opened.wal.save(undefined, batch, c.sync);
              model = [...model, ...batch];
            } else if (c.t === 'overwrite') {
              const from = Math.max(1, model.length + 1 - c.back);
              term++;
              const batch = range(from, from + c.n - 1, term);
              await opened.wal.save(undefined, batch, true);
              model = [...model.slice(0, from - 1), ...batch];
            } else if (c.t === 'hard') {
              modelHs = hs(term, Math.max(0, model.length - c.commitBack), BigInt(term % 3));
              await opened.wal.save(modelHs, [], false);
            } else {
              await opened.wal.close();
              opened = await Wal.open(dir, { segmentBytes });
              expect(opened.entries).toEqual(model);
              expect(opened.hardState).toEqual(modelHs);
            }
          }
          await opened.wal.close();
          const last = await Wal.open(dir, { segmentBytes });
          expect(last.entries).toEqual(model);
          expect(last.hardState).toEqual(modelHs);
          await last.wal.close();
        } finally {
          await fsp.rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 40 },
    );
  });
});
