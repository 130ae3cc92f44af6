/**
 * The watch hub against etcd's watch semantics, over a real KvStore on LevelDB: synced delivery,
 * catch-up from history in bounded chunks, future start revisions, filters, prev_kv, slow streams
 * (victims), compaction, progress notifications, cancel, and switching to a new store.
 */
import * as fs from 'node:fs';
import { KvStore } from '../../../src/mvcc/kv-store';
import { applyPut, noLeases } from '../../../src/server/kv-apply';
import { FakeSink, HubFixture, delOp, putOp, str, versionIs, viewOf } from './hub-harness';

let fx: HubFixture;
afterEach(async () => {
  await fx.close();
});

/** Revisions of the events of each response, e.g. [[2], [3, 3], [5]]. */
function revsPerResponse(sink: FakeSink, id: number): number[][] {
  return sink.eventResponses(id).map((r) => r.events.map((e) => e.kv.modRevision));
}

/** Fails when a revision's events are spread over more than one response. */
function expectAtomic(sink: FakeSink, id: number): void {
  const owner = new Map<number, number>();
  sink.eventResponses(id).forEach((r, i) => {
    for (const e of r.events) {
      const o = owner.get(e.kv.modRevision);
      if (o !== undefined && o !== i) throw new Error(`revision ${e.kv.modRevision} split over responses ${o} and ${i}`);
      owner.set(e.kv.modRevision, i);
    }
  });
}

describe('synced watchers', () => {
  test('receive each revision as it is applied, with the revision as header', async () => {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'a');
    fx.watch(sink, 1, 'a', { end: 'c' });
    await fx.settle();
    expect(fx.hub.counts()).toEqual({ synced: 2, unsynced: 0 });
    await fx.put('a', '1');
    await fx.put('b', '1');
    await fx.put('c', '1');
    await fx.del('a');
    await fx.settle();
    expect(sink.events(0).map(viewOf)).toEqual([
      { type: 'put', key: 'a', value: '1', create: 2, mod: 2, version: 1, prev: null },
      { type: 'delete', key: 'a', value: '', create: 0, mod: 5, version: 0, prev: null },
    ]);
    expect(sink.events(1).map((e) => `${e.type} ${str(e.kv.key)}@${e.kv.modRevision}`)).toEqual(['put a@2', 'put b@3', 'delete a@5']);
    expect(sink.eventResponses(1).map((r) => r.rev)).toEqual([2, 3, 5]);
  });

  test('a txn is delivered as one response with its events in operation order', async () => {
    fx = await HubFixture.open();
    await fx.put('b', '0');
    const sink = new FakeSink();
    fx.watch(sink, 7, 'a', { end: '' });
    await fx.settle();
    const rev = await fx.txn([versionIs('b', 1)], [putOp('c', '1'), delOp('b'), putOp('a', '1')]);
    await fx.settle();
    expect(revsPerResponse(sink, 7)).toEqual([[rev, rev, rev]]);
    expect(sink.events(7).map((e) => `${e.type} ${str(e.kv.key)}`)).toEqual(['put c', 'delete b', 'put a']);
  });

  test('a future start revision waits for that revision', async () => {
    fx = await HubFixture.open();
    await fx.put('a', '1'); // rev 2
    const sink = new FakeSink();
    fx.watch(sink, 0, 'a', { startRev: 5 });
    await fx.settle();
    expect(fx.hub.counts().synced).toBe(1);
    await fx.put('a', '2'); // 3
    await fx.put('a', '3'); // 4
    await fx.settle();
    expect(sink.log).toEqual([]);
    await fx.put('a', '4'); // 5
    await fx.put('a', '5'); // 6
    await fx.settle();
    expect(sink.events(0).map((e) => e.kv.modRevision)).toEqual([5, 6]);
  });

  test('filters: NOPUT drops puts, NODELETE drops deletes; nothing is sent when everything is filtered', async () => {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'k', { noPut: true });
    fx.watch(sink, 1, 'k', { noDelete: true });
    fx.watch(sink, 2, 'k', { noPut: true, noDelete: true });
    await fx.settle();
    await fx.put('k', '1');
    await fx.del('k');
    await fx.put('k', '2');
    await fx.settle();
    expect(sink.events(0).map((e) => `${e.type}@${e.kv.modRevision}`)).toEqual(['delete@3']);
    expect(sink.events(1).map((e) => `${e.type}@${e.kv.modRevision}`)).toEqual(['put@2', 'put@4']);
    expect(sink.eventResponses(2)).toEqual([]);
    // The same filters while catching up from history.
    const late = new FakeSink();
    fx.watch(late, 0, 'k', { noPut: true, startRev: 1 });
    fx.watch(late, 1, 'k', { noDelete: true, startRev: 1 });
    await fx.synced();
    expect(late.events(0).map((e) => `${e.type}@${e.kv.modRevision}`)).toEqual(['delete@3']);
    expect(late.events(1).map((e) => `${e.type}@${e.kv.modRevision}`)).toEqual(['put@2', 'put@4']);
  });

  test('prev_kv: the previous record for updates and deletes, none for creates', async () => {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'k', { prevKv: true });
    fx.watch(sink, 1, 'k');
    await fx.settle();
    await fx.put('k', 'v1'); // 2 create
    await fx.put('k', 'v2'); // 3 update
    await fx.del('k'); // 4 delete
    await fx.put('k', 'v3'); // 5 create again
    await fx.txn([], [putOp('k', 'v4')]); // 6 update in a txn
    await fx.settle();
    const live = sink.events(0).map(viewOf);
    expect(live.map((e) => e.prev)).toEqual([
      null,
      { value: 'v1', create: 2, mod: 2, version: 1 },
      { value: 'v2', create: 2, mod: 3, version: 2 },
      null,
      { value: 'v3', create: 5, mod: 5, version: 1 },
    ]);
    expect(sink.events(1).every((e) => e.prevKv === undefined)).toBe(true);
    // The same answers for a watcher reading the same revisions from history.
    const late = new FakeSink();
    fx.watch(late, 0, 'k', { prevKv: true, startRev: 2 });
    await fx.synced();
    expect(late.events(0).map(viewOf)).toEqual(live);
  });

  test('cancel stops delivery at once, even for events already queued', async () => {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    const w = fx.watch(sink, 0, 'a');
    await fx.settle();
    await fx.put('a', '1');
    await fx.settle();
    const p = fx.put('a', '2');
    fx.hub.remove(w);
    await p;
    await fx.put('a', '3');
    await fx.settle();
    expect(sink.events(0).map((e) => e.kv.modRevision)).toEqual([2]);
    expect(fx.hub.counts()).toEqual({ synced: 0, unsynced: 0 });
  });
});

describe('unsynced watchers catch up from history', () => {
  for (const chunk of [1, 2, 3]) {
    test(`chunk size ${chunk}: every event once, in order, never splitting a revision, flushed or not`, async () => {
      fx = await HubFixture.open({ chunk });
      await fx.put('a', '1'); // 2
      await fx.txn([], [putOp('a', '2'), putOp('b', '1'), putOp('c', '1')]); // 3 (3 records)
      await fx.put('x', '1'); // 4 (outside the range)
      fx.flush();
      await fx.store.flushed();
      await fx.txn([], [delOp('a', 'c'), putOp('c', '2')]); // 5 (3 records), not flushed yet
      await fx.put('b', '9'); // 6, not flushed yet
      const sink = new FakeSink();
      fx.watch(sink, 3, 'a', { end: 'd', startRev: 2, prevKv: true });
      await fx.synced();
      expect(sink.events(3).map((e) => `${e.type} ${str(e.kv.key)}@${e.kv.modRevision}`)).toEqual([
        'put a@2', 'put a@3', 'put b@3', 'put c@3', 'delete a@5', 'delete b@5', 'put c@5', 'put b@6',
      ]);
      expectAtomic(sink, 3);
      // Several chunks were needed: with a record limit of `chunk`, at most one revision past it.
      expect(sink.eventResponses(3).length).toBeGreaterThanOrEqual(chunk === 1 ? 4 : 3);
      expect(sink.events(3).map((e) => (e.prevKv === undefined ? '-' : str(e.prevKv.value)))).toEqual([
        '-', '1', '-', '-', '2', '1', '1', '-',
      ]);
      // Now synced: live events follow without a gap or a repeat.
      await fx.put('a', 'z');
      await fx.settle();
      expect(sink.events(3).map((e) => e.kv.modRevision).slice(-2)).toEqual([6, 7]);
    });
  }

  test('catch-up responses never claim a revision beyond the events they deliver', async () => {
    fx = await HubFixture.open({ chunk: 1 });
    for (let i = 0; i < 5; i++) await fx.put('a', String(i)); // 2..6
    fx.flush();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'a', { startRev: 2 });
    await fx.synced();
    for (const r of sink.eventResponses(0)) {
      const last = r.events[r.events.length - 1]!.kv.modRevision;
      // A later response must not carry events at or below an earlier response's header revision.
      expect(r.rev).toBeGreaterThanOrEqual(last);
    }
    const resp = sink.eventResponses(0);
    for (let i = 1; i < resp.length; i++) expect(resp[i]!.events[0]!.kv.modRevision).toBeGreaterThan(resp[i - 1]!.rev);
  });

  test('a watcher behind the compaction is canceled with the compact revision; one at it is not', async () => {
    fx = await HubFixture.open();
    for (let i = 0; i < 6; i++) await fx.put('a', String(i)); // 2..7
    await fx.compact(5);
    const sink = new FakeSink();
    fx.watch(sink, 0, 'a', { startRev: 4 });
    fx.watch(sink, 1, 'a', { startRev: 5 });
    await fx.synced();
    expect(sink.log.filter((r) => r.watchId === 0)).toEqual([{ kind: 'compacted', watchId: 0, compactRev: 5, whilePaused: false }]);
    expect(sink.events(1).map((e) => e.kv.modRevision)).toEqual([5, 6, 7]);
    await fx.put('a', 'x');
    await fx.settle();
    expect(sink.log.filter((r) => r.watchId === 0)).toHaveLength(1);
    expect(fx.hub.counts()).toEqual({ synced: 1, unsynced: 0 });
  });
});

describe('slow streams (victims)', () => {
  test('a paused stream receives nothing; after it drains every event arrives once and in order', async () => {
    fx = await HubFixture.open({ chunk: 2 });
    const sink = new FakeSink();
    const other = new FakeSink();
    const slow = fx.watch(sink, 0, 'k', { end: 'l', prevKv: true });
    fx.watch(other, 0, 'k', { end: 'l' });
    await fx.settle();
    await fx.put('k1', 'a');
    await fx.settle();
    sink.paused = true;
    for (let i = 0; i < 40; i++) {
      await fx.put(`k${i % 3}`, `v${i}`);
      if (i % 7 === 0) fx.flush();
    }
    await fx.del('k', 'l');
    await fx.settle();
    await new Promise((r) => setTimeout(r, 30));
    await fx.settle();
    // While paused: nothing sent, and the watcher is parked as unsynced (no queue of events).
    expect(sink.log).toHaveLength(1);
    expect(fx.hub.counts().unsynced).toBe(1);
    expect(slow.state).toBe('victim');
    // The other stream was not held back.
    expect(other.events(0)).toHaveLength(44);
    sink.paused = false;
    fx.hub.kick();
    await fx.synced();
    expect(slow.state).toBe('synced');
    expect(sink.sentWhilePaused()).toBe(0);
    expect(sink.events(0).map((e) => ({ ...viewOf(e), prev: null }))).toEqual(other.events(0).map(viewOf));
    expectAtomic(sink, 0);
    // prev_kv of the replayed events is still right.
    const ev = sink.events(0);
    for (let i = 1; i < ev.length; i++) {
      const e = ev[i]!;
      const before = ev.slice(0, i).reverse().find((x) => str(x.kv.key) === str(e.kv.key));
      if (before === undefined || before.type === 'delete') expect(e.prevKv).toBeUndefined();
      else expect(e.prevKv && str(e.prevKv.value)).toBe(str(before.kv.value));
    }
  });

  test('a quiet synced watcher that becomes a victim resumes from where it was, not from its creation', async () => {
    // Watcher on "q" created at revision 2; much later, after a compaction, its stream is slow when
    // "q" changes. Its history before that change is not needed, so the compaction must not cancel it.
    fx = await HubFixture.open();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'q');
    await fx.settle();
    for (let i = 0; i < 20; i++) await fx.put('other', String(i));
    await fx.compact(fx.store.currentRev);
    sink.paused = true;
    const rev = await fx.put('q', '1');
    await fx.settle();
    sink.paused = false;
    fx.hub.kick();
    await fx.synced();
    expect(sink.log.map((r) => r.kind)).toEqual(['events']);
    expect(sink.events(0).map((e) => e.kv.modRevision)).toEqual([rev]);
  });

  test('a stream that pauses during a catch-up read is not written to after the read', async () => {
    fx = await HubFixture.open({ chunk: 1 });
    for (let i = 0; i < 30; i++) await fx.put('a', String(i));
    fx.flush();
    await fx.store.flushed();
    const sink = new FakeSink();
    // The stream fills up while the first history read is in flight.
    const read = fx.store.history.bind(fx.store);
    let reads = 0;
    fx.store.history = async (...args: Parameters<typeof read>) => {
      const r = await read(...args);
      if (reads++ === 0) sink.paused = true;
      return r;
    };
    fx.watch(sink, 0, 'a', { startRev: 2 });
    await fx.settle();
    await new Promise((r) => setTimeout(r, 20));
    expect(sink.sentWhilePaused()).toBe(0);
    sink.paused = false;
    fx.hub.kick();
    await fx.synced();
    expect(sink.events(0).map((e) => e.kv.modRevision)).toEqual(Array.from({ length: 30 }, (_, i) => i + 2));
  });
});

describe('progress', () => {
  test('sent only when every watcher of the stream is synced, at the last notified revision', async () => {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    const a = fx.watch(sink, 0, 'a');
    const b = fx.watch(sink, 1, 'b');
    await fx.settle();
    await fx.put('a', '1');
    expect(await fx.hub.requestProgress(sink, [a, b], -1)).toBe(true);
    expect(sink.log.map((r) => r.kind)).toEqual(['events', 'progress']);
    expect(sink.log[1]).toEqual({ kind: 'progress', watchId: -1, rev: 2 });
    // b becomes a victim: no progress until it has caught up.
    sink.paused = true;
    await fx.put('b', '1');
    await fx.settle();
    expect(await fx.hub.requestProgress(sink, [a, b], -1)).toBe(false);
    expect(await fx.hub.requestProgress(sink, [a], 0)).toBe(true);
    sink.paused = false;
    fx.hub.kick();
    await fx.synced();
    expect(await fx.hub.requestProgress(sink, [a, b], -1)).toBe(true);
    const log = sink.log;
    expect(log[log.length - 1]).toEqual({ kind: 'progress', watchId: -1, rev: 3 });
    // No stream-wide progress was ever sent ahead of events it covers.
    assertBookmarks(sink);
  });

  test('a watcher that is still catching up blocks progress; an unwatched stream answers nothing', async () => {
    fx = await HubFixture.open();
    for (let i = 0; i < 5; i++) await fx.put('a', String(i));
    const sink = new FakeSink();
    expect(await fx.hub.requestProgress(sink, [], -1)).toBe(true);
    expect(sink.log).toEqual([]);
    sink.paused = true;
    const w = fx.watch(sink, 0, 'a', { startRev: 2 });
    expect(await fx.hub.requestProgress(sink, [w], -1)).toBe(false);
    sink.paused = false;
    fx.hub.kick();
    await fx.synced();
    expect(await fx.hub.requestProgress(sink, [w], -1)).toBe(true);
    assertBookmarks(sink);
  });
});

/** Every progress at revision R comes after all events ≤ R of the watchers it speaks for. */
function assertBookmarks(sink: FakeSink): void {
  const all = sink.log;
  all.forEach((r, i) => {
    if (r.kind !== 'progress') return;
    for (const later of all.slice(i + 1)) {
      if (later.kind !== 'events') continue;
      if (r.watchId !== -1 && later.watchId !== r.watchId) continue;
      for (const e of later.events) expect(e.kv.modRevision).toBeGreaterThan(r.rev);
    }
  });
}

describe('switching to a new store (snapshot installed)', () => {
  /** Three watchers synced at revision 3 (the last events of two of them are older); the snapshot holds revisions up to 9, compacted at `compactAt`. */
  async function switchStores(compactAt: number, check: (sink: FakeSink, s2: KvStore) => Promise<void>): Promise<void> {
    fx = await HubFixture.open();
    const sink = new FakeSink();
    fx.watch(sink, 0, 'q', { prevKv: true });
    fx.watch(sink, 1, 'a', { end: 'z' });
    fx.watch(sink, 2, 'zz');
    await fx.settle();
    await fx.put('q', '1'); // 2
    await fx.put('a', '1'); // 3
    await fx.settle();
    const snap = await HubFixture.openStore();
    try {
      const s2 = snap.store;
      await applyPut(s2, putOp('q', '1'), noLeases);
      await applyPut(s2, putOp('a', '1'), noLeases);
      for (let i = 0; i < 5; i++) await applyPut(s2, putOp('m', String(i)), noLeases); // 4..8
      await applyPut(s2, putOp('q', '2'), noLeases); // 9
      s2.compact(compactAt);
      await s2.flush(1, 1);
      await fx.hub.suspend();
      s2.onCommit = (rev, changes) => fx.hub.notify(rev, changes);
      fx.hub.setStore(s2);
      await fx.synced();
      await check(sink, s2);
      await s2.flushed();
    } finally {
      await fx.settle();
      await snap.backend.close();
      fs.rmSync(snap.dir, { recursive: true, force: true });
    }
  }

  test('watchers catch up from the new store without repeats or gaps, and continue live', async () => {
    // Compacted past the watchers' creation (revision 1) but not past what they already have (3).
    await switchStores(4, async (sink, s2) => {
      expect(sink.log.some((r) => r.kind === 'compacted')).toBe(false);
      expect(sink.events(0).map((e) => `${e.kv.modRevision}:${str(e.kv.value)}:${e.prevKv ? str(e.prevKv.value) : '-'}`)).toEqual(['2:1:-', '9:2:1']);
      expect(sink.events(1).map((e) => e.kv.modRevision)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
      await applyPut(s2, putOp('q', '3'), noLeases); // 10, live from the new store
      await fx.settle();
      expect(sink.events(0).map((e) => e.kv.modRevision)).toEqual([2, 9, 10]);
      expect(fx.hub.counts()).toEqual({ synced: 3, unsynced: 0 });
    });
  });

  test('watchers are canceled when the revisions they still need were compacted in the new store', async () => {
    await switchStores(5, async (sink) => {
      const canceled = sink.log.filter((r) => r.kind === 'compacted').sort((x, y) => x.watchId - y.watchId);
      expect(canceled).toEqual([
        { kind: 'compacted', watchId: 0, compactRev: 5, whilePaused: false },
        { kind: 'compacted', watchId: 1, compactRev: 5, whilePaused: false },
        { kind: 'compacted', watchId: 2, compactRev: 5, whilePaused: false },
      ]);
      expect(fx.hub.counts()).toEqual({ synced: 0, unsynced: 0 });
    });
  });
});
