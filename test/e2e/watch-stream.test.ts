/**
 * The gRPC Watch stream of our server against etcd's documented semantics (3.5+/3.6 where they
 * differ from 3.4): created responses, watch ids, failed creates, compaction, negative and future
 * start revisions, cancel, progress requests and progress_notify, fragments, a client that
 * half-closes, and a slow reader whose events all arrive once, in order, with bounded server memory.
 */
import * as fs from 'node:fs';
import { KvClient, Msg } from './client';
import { Member, startMember, stopAll } from './harness';
import { EventView, ResponseView, WatchStream, reassemble } from './watch-client';

const COMPACTED = 'etcdserver: mvcc: required revision has been compacted';
const MAX_REQUEST_BYTES = 1024 * 1024;

let m: Member;
let kv: KvClient;
const streams: WatchStream[] = [];

beforeAll(async () => {
  m = await startMember({
    extraArgs: ['--experimental-watch-progress-notify-interval', '200ms', '--max-request-bytes', String(MAX_REQUEST_BYTES)],
  });
  kv = new KvClient(m.endpoint);
});
afterAll(async () => {
  for (const s of streams) s.close();
  kv.close();
  await stopAll();
});

function open(): WatchStream {
  const s = new WatchStream(m.endpoint);
  streams.push(s);
  return s;
}

const buf = (s: string): Buffer => Buffer.from(s, 'latin1');

async function put(key: string, value: string | Buffer): Promise<number> {
  const r = await kv.call('Put', { key: buf(key), value: typeof value === 'string' ? buf(value) : value });
  return Number((r.header as Msg).revision);
}

async function txn(ops: Msg[]): Promise<number> {
  const r = await kv.call('Txn', { success: ops });
  return Number((r.header as Msg).revision);
}

const opPut = (key: string, value: string | Buffer): Msg => ({ request_put: { key: buf(key), value: typeof value === 'string' ? buf(value) : value } });

async function currentRev(): Promise<number> {
  const r = await kv.call('Range', { key: buf('\0'), limit: 1 });
  return Number((r.header as Msg).revision);
}

const evs = (r: ResponseView): string[] => r.events.map((e) => `${e.type} ${e.kv.key}@${e.kv.mod_revision}`);

test('created responses come in request order, before any event of their watcher; ids 0,1,2 and chosen ids', async () => {
  const first = await put('ids/a', '1');
  await put('ids/b', '1');
  const s = open();
  s.create({ key: 'ids/a', start_revision: first }); // auto → 0, replays history at once
  s.create({ key: 'ids/b', watch_id: 1, start_revision: first }); // chosen 1
  s.create({ key: 'ids/', range_end: 'ids0', start_revision: first }); // auto: 1 is taken → 2
  s.create({ key: 'ids/c' }); // auto → 3
  s.create({ key: 'ids/c', watch_id: 100 });
  await s.until(() => s.received.filter((r) => r.created).length === 5);
  await put('ids/c', '1');
  await s.until(
    () =>
      s.received.some((r) => r.watch_id === 100 && r.events.length > 0) &&
      s.received.some((r) => r.watch_id === 3 && r.events.length > 0) &&
      // watcher 2 started in the past and may still be catching up: wait for all three of its events
      s.received.filter((r) => r.watch_id === 2).flatMap(evs).length >= 3,
  );
  const got = s.received;
  const created = got.filter((r) => r.created);
  expect(created.map((r) => r.watch_id)).toEqual([0, 1, 2, 3, 100]);
  expect(created.every((r) => !r.canceled && r.events.length === 0)).toBe(true);
  for (const id of [0, 1, 2, 3, 100]) {
    const c = got.findIndex((r) => r.created && r.watch_id === id);
    const e = got.findIndex((r) => !r.created && r.watch_id === id);
    expect({ id, before: e === -1 || c < e }).toEqual({ id, before: true });
  }
  expect(got.filter((r) => r.watch_id === 2).flatMap(evs)).toEqual([`PUT ids/a@${first}`, `PUT ids/b@${first + 1}`, `PUT ids/c@${first + 2}`]);
});

test('failed creates: duplicate id, empty range, negative start revision → created+canceled with watch_id -1', async () => {
  const s = open();
  s.create({ key: 'dup', watch_id: 5 });
  s.create({ key: 'other', watch_id: 5 });
  s.create({ key: 'b', range_end: 'a' });
  s.create({ key: 'a', range_end: 'a' });
  s.create({ key: 'a', start_revision: -3 });
  s.create({ key: 'a', range_end: 'b', start_revision: -1 });
  const rev = await currentRev();
  const r = await s.take(6);
  expect(r[0]).toMatchObject({ watch_id: 5, created: true, canceled: false });
  const failed = (reason: string): Partial<ResponseView> => ({ watch_id: -1, created: true, canceled: true, cancel_reason: reason, events: [] });
  expect(r[1]).toMatchObject(failed('mvcc: duplicate watch ID provided on the WatchStream'));
  expect(r[2]).toMatchObject(failed('mvcc: watcher range is empty'));
  expect(r[3]).toMatchObject(failed('mvcc: watcher range is empty'));
  expect(r[4]).toMatchObject(failed(COMPACTED));
  expect(r[5]).toMatchObject(failed(COMPACTED));
  expect(r[4]!.header.revision).toBe(rev);
  // The first watcher with id 5 still works.
  const at = await put('dup', 'x');
  expect(evs(await s.next())).toEqual([`PUT dup@${at}`]);
});

test('start revision below the compaction: created, then canceled with the compact revision', async () => {
  const r1 = await put('cmp/k', '1');
  const r2 = await put('cmp/k', '2');
  await put('cmp/k', '3');
  await kv.call('Compact', { revision: String(r2) });
  const s = open();
  s.create({ key: 'cmp/k', start_revision: r1 });
  s.create({ key: 'cmp/k', start_revision: r2, prev_kv: true });
  const got = await s.until((r) => r.watch_id === 1 && r.events.length > 0);
  const w0 = got.filter((r) => r.watch_id === 0);
  expect(w0[0]).toMatchObject({ created: true, canceled: false });
  expect(w0[1]).toMatchObject({ created: false, canceled: true, compact_revision: r2, cancel_reason: '', events: [] });
  expect(w0[1]!.header.revision).toBe(0);
  expect(got.filter((r) => r.watch_id === 1).flatMap(evs)).toEqual([`PUT cmp/k@${r2}`, `PUT cmp/k@${r2 + 1}`]);
  // The watcher at the compact revision goes on live.
  const r4 = await put('cmp/k', '4');
  const live = await s.next();
  expect(live.watch_id).toBe(1);
  expect(live.events[0]!.prev_kv).toMatchObject({ value: '3', mod_revision: r2 + 1 });
  expect(live.events[0]!.kv.mod_revision).toBe(r4);
});

test('a future start revision waits, then delivers from exactly that revision', async () => {
  const now = await currentRev();
  const s = open();
  s.create({ key: 'fut/k', start_revision: now + 3 });
  const created = await s.next();
  expect(created).toMatchObject({ created: true, watch_id: 0 });
  expect(created.header.revision).toBe(now);
  const revs: number[] = [];
  for (let i = 0; i < 5; i++) revs.push(await put('fut/k', String(i)));
  expect(revs[0]).toBe(now + 1);
  const got = await s.take(3);
  expect(got.map((r) => r.events[0]!.kv.mod_revision)).toEqual([now + 3, now + 4, now + 5]);
  expect(got.map((r) => r.header.revision)).toEqual([now + 3, now + 4, now + 5]);
});

test('cancel is answered with canceled and stops events', async () => {
  const s = open();
  s.create({ key: 'can/k' });
  s.create({ key: 'can/k' });
  await s.take(2);
  await put('can/k', '1');
  await s.take(2);
  s.cancel(0);
  s.cancel(42); // unknown: no answer
  const c = await s.next();
  expect(c).toMatchObject({ watch_id: 0, canceled: true, created: false, events: [] });
  const at = await put('can/k', '2');
  const r = await s.next();
  expect(r.watch_id).toBe(1);
  expect(evs(r)).toEqual([`PUT can/k@${at}`]);
  expect(await s.quiet(300)).toBe(true);
});

test('filters and prev_kv on the wire', async () => {
  const s = open();
  s.create({ key: 'flt/', range_end: 'flt0', filters: [0], prev_kv: true }); // NOPUT
  s.create({ key: 'flt/', range_end: 'flt0', filters: [1], prev_kv: true }); // NODELETE
  await s.take(2);
  const r1 = await put('flt/a', '1');
  const r2 = await put('flt/a', '2');
  const r3 = Number((((await kv.call('DeleteRange', { key: buf('flt/'), range_end: buf('flt0') })) as Msg).header as Msg).revision);
  const got = await s.take(3);
  const one = (e: EventView): string => `${e.type} ${e.kv.key}@${e.kv.mod_revision} prev=${e.prev_kv === null ? '-' : `${e.prev_kv.value}@${e.prev_kv.mod_revision}`}`;
  expect(got.filter((r) => r.watch_id === 1).flatMap((r) => r.events.map(one))).toEqual([`PUT flt/a@${r1} prev=-`, `PUT flt/a@${r2} prev=1@${r1}`]);
  expect(got.filter((r) => r.watch_id === 0).flatMap((r) => r.events.map(one))).toEqual([`DELETE flt/a@${r3} prev=2@${r2}`]);
});

test('a progress request is answered with watch_id -1 at the current revision once every watcher is synced', async () => {
  const empty = open();
  empty.progress();
  // No watchers on the stream: nothing to report (3.6).
  expect(await empty.quiet(300)).toBe(true);

  const s = open();
  s.create({ key: 'prg/a' });
  s.create({ key: 'prg/b', start_revision: 1 });
  await s.take(2);
  const at = await put('prg/a', '1');
  s.progress();
  const got = await s.until((r) => r.watch_id === -1);
  const p = got[got.length - 1]!;
  expect(p).toMatchObject({ watch_id: -1, created: false, canceled: false, events: [], compact_revision: 0 });
  expect(p.header.revision).toBe(await currentRev());
  expect(p.header.revision).toBeGreaterThanOrEqual(at);
  // Every event at or below the progress revision came before it.
  expect(got.slice(0, -1).some((r) => r.events.some((e) => e.kv.key === 'prg/a' && e.kv.mod_revision === at))).toBe(true);
});

test('progress_notify sends event-less responses to idle synced watchers at the configured interval', async () => {
  const s = open();
  s.create({ key: 'pn/k', progress_notify: true });
  s.create({ key: 'pn/other' });
  await s.take(2);
  const rev = await currentRev();
  const got = await s.take(2, 2000);
  for (const r of got) {
    expect(r).toMatchObject({ watch_id: 0, created: false, canceled: false, events: [], compact_revision: 0 });
    expect(r.header.revision).toBeGreaterThanOrEqual(rev);
  }
  // The watcher without progress_notify got none of them.
  expect(s.received.some((r) => r.watch_id === 1 && !r.created)).toBe(false);
});

test('fragment=true splits large responses at max-request-bytes + 512 KiB; the pieces reassemble', async () => {
  const limit = MAX_REQUEST_BYTES + 512 * 1024;
  const value = (c: number): Buffer => Buffer.alloc(60 * 1024, c);
  const keys = Array.from({ length: 16 }, (_, i) => `frg/${String(i).padStart(2, '0')}`);
  const first = await txn(keys.map((k) => opPut(k, value(1))));
  const s = open();
  s.create({ key: 'frg/', range_end: 'frg0', prev_kv: true, fragment: true });
  s.create({ key: 'frg/', range_end: 'frg0', prev_kv: true });
  // A third watcher replays the first txn from history together with the second one.
  s.create({ key: 'frg/', range_end: 'frg0', prev_kv: true, fragment: true, start_revision: first });
  await s.take(3);
  // One txn whose watch response (values + prev values ≈ 1.9 MiB) exceeds the limit.
  const second = await txn(keys.map((k) => opPut(k, value(2))));
  const got = await s.until(() => s.received.filter((r) => r.watch_id === 0 && !r.fragment && r.events.length > 0).length === 1
    && s.received.some((r) => r.watch_id === 1 && r.events.length > 0)
    && s.received.some((r) => r.watch_id === 2 && !r.fragment && r.events.some((e) => e.kv.mod_revision === second)), 10000);
  const pieces = got.filter((r) => r.watch_id === 0);
  expect(pieces.length).toBeGreaterThanOrEqual(2);
  expect(pieces.slice(0, -1).every((r) => r.fragment)).toBe(true);
  expect(pieces[pieces.length - 1]!.fragment).toBe(false);
  for (const p of pieces) expect(p.events.length).toBeGreaterThanOrEqual(1);
  const whole = reassemble(pieces);
  expect(whole).toHaveLength(1);
  expect(whole[0]!.events.map((e) => `${e.kv.key}@${e.kv.mod_revision}:${e.prev_kv?.mod_revision}`)).toEqual(keys.map((k) => `${k}@${second}:${first}`));
  expect(whole[0]!.events.every((e) => e.kv.value === value(2).toString('latin1') && e.prev_kv?.value === value(1).toString('latin1'))).toBe(true);
  // Without fragment=true: one response with all 16 events.
  const plain = got.filter((r) => r.watch_id === 1);
  expect(plain).toHaveLength(1);
  expect(plain[0]!.events).toHaveLength(16);
  expect(plain[0]!.fragment).toBe(false);
  // Catch-up responses are fragmented too; together they hold both txns in order.
  const replay = reassemble(got.filter((r) => r.watch_id === 2 && !r.created));
  expect(replay.flatMap((r) => r.events.map((e) => `${e.kv.key}@${e.kv.mod_revision}`))).toEqual([
    ...keys.map((k) => `${k}@${first}`),
    ...keys.map((k) => `${k}@${second}`),
  ]);
  expect(got.filter((r) => r.watch_id === 2 && r.fragment).length).toBeGreaterThanOrEqual(1);
  // A response above max-request-bytes but below the limit is not split.
  const mid = keys.map((k) => `frg/m${k.slice(4)}`);
  await txn(mid.map((k) => opPut(k, Buffer.alloc(36 * 1024, 3))));
  const third = await txn(mid.map((k) => opPut(k, Buffer.alloc(36 * 1024, 4))));
  const midGot = await s.until(() => s.received.some((r) => r.watch_id === 0 && !r.fragment && r.events.some((e) => e.kv.mod_revision === third)), 10000);
  const midPieces = midGot.filter((r) => r.watch_id === 0 && r.events.some((e) => e.kv.mod_revision === third));
  expect(midPieces.map((r) => [r.fragment, r.events.length])).toEqual([[false, 16]]);
  // Each piece with more than one event stays below the limit (approximate wire size).
  for (const p of [...pieces, ...got.filter((r) => r.watch_id === 2)]) {
    if (p.events.length < 2) continue;
    const size = p.events.reduce((n, e) => n + e.kv.value.length + (e.prev_kv?.value.length ?? 0), 0);
    expect(size).toBeLessThan(limit);
  }
}, 20000);

test('a client that half-closes its side keeps receiving events', async () => {
  const s = open();
  s.create({ key: 'half/k' });
  await s.next();
  s.call.end();
  await new Promise((r) => setTimeout(r, 100));
  const at = await put('half/k', '1');
  expect(evs(await s.next())).toEqual([`PUT half/k@${at}`]);
});

function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const line = status.split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? '0');
}

test('a slow reader gets every event exactly once and in order; server memory stays bounded', async () => {
  const pid = m.proc.pid!;
  const s = open();
  const probe = open();
  s.create({ key: 'slow/', range_end: 'slow0', prev_kv: true });
  s.create({ key: 'slow/0', prev_kv: true });
  probe.create({ key: 'slow/', range_end: 'slow0' });
  await s.take(2);
  await probe.next();
  const before = rssKb(pid);
  s.pause();
  const value = Buffer.alloc(2048, 'v');
  const written: { rev: number; keys: string[] }[] = [];
  const started = Date.now();
  // Thousands of events while the reader does not read (10 puts per txn).
  for (let t = 0; t < 300; t++) {
    const keys = Array.from({ length: 10 }, (_, i) => `slow/${(t * 10 + i) % 50}`);
    written.push({ rev: await txn(keys.map((k, i) => opPut(k, Buffer.concat([value, buf(`${t}.${i}`)])))), keys });
  }
  // The live reader on another stream was not held back.
  await probe.until((r) => r.events.some((e) => e.kv.mod_revision === written[written.length - 1]!.rev), 10000);
  const held = Date.now() - started;
  await new Promise((r) => setTimeout(r, Math.max(0, 2000 - held)));
  const during = rssKb(pid);
  s.progress();
  s.resume();
  const last = written[written.length - 1]!.rev;
  const lastOfKey0 = written.filter((w) => w.keys.includes('slow/0')).pop()!.rev;
  const got = await s.until(
    () => s.received.some((r) => r.watch_id === 0 && r.events.some((e) => e.kv.mod_revision === last)) &&
      s.received.some((r) => r.watch_id === 1 && r.events.some((e) => e.kv.mod_revision === lastOfKey0)),
    20000,
  );
  const after = rssKb(pid);
  // Watcher 0: every event once, in order, whole revisions per response.
  const w0 = got.filter((r) => r.watch_id === 0);
  const expected = written.flatMap((w) => w.keys.map((k) => `${k}@${w.rev}`));
  expect(w0.flatMap((r) => r.events.map((e) => `${e.kv.key}@${e.kv.mod_revision}`))).toEqual(expected);
  const owner = new Map<number, number>();
  w0.forEach((r, i) => {
    for (const e of r.events) {
      expect(owner.get(e.kv.mod_revision) ?? i).toBe(i);
      owner.set(e.kv.mod_revision, i);
    }
  });
  // prev_kv of each event is the key's previous write.
  const lastWrite = new Map<string, number>();
  for (const e of w0.flatMap((r) => r.events)) {
    const p = lastWrite.get(e.kv.key);
    if (p !== undefined) expect(e.prev_kv?.mod_revision).toBe(p);
    lastWrite.set(e.kv.key, e.kv.mod_revision);
  }
  // Watcher 1 (one key) on the same stream too.
  expect(got.filter((r) => r.watch_id === 1).flatMap((r) => r.events.map((e) => e.kv.mod_revision))).toEqual(
    written.filter((w) => w.keys.includes('slow/0')).map((w) => w.rev),
  );
  // A progress answer, if the server gave one, comes after every event it covers.
  const p = got.findIndex((r) => r.watch_id === -1);
  if (p >= 0) {
    const covered = got[p]!.header.revision;
    const afterP = got.slice(p + 1).flatMap((r) => r.events.map((e) => e.kv.mod_revision));
    expect(afterP.every((rev) => rev > covered)).toBe(true);
  }
  expect((during - before) / 1024).toBeLessThan(300);
  expect((after - before) / 1024).toBeLessThan(300);
}, 40000);
