/**
 * Randomized check of etcd's watch guarantees (ordered, unique, reliable, atomic, bookmarkable):
 * random writes (puts, deletes, delete ranges, txns), random watchers created at past, current and
 * future revisions, random pauses of their streams, random flushes and progress requests. At the
 * end every watcher's events must equal the events computed from a model of the write log for its
 * range, filters and start revision, and no stream was written to while paused.
 */
import fc from 'fast-check';
import { Watcher } from '../../../src/watch/watcher-group';
import { EventView, FakeSink, HubFixture, delOp, putOp, versionIs, viewOf } from './hub-harness';

const KEYS = ['a', 'b', 'c', 'd', 'e', 'f', 'q'];
const SINKS = 3;

type SubOp = { t: 'put'; k: string; v: string } | { t: 'del'; k: string };
type Op =
  | { t: 'put'; k: string; v: string }
  | { t: 'del'; k: string }
  | { t: 'delr'; k: string; end: string }
  | { t: 'txn'; ck: string; cv: number; success: SubOp[]; failure: SubOp[] }
  | { t: 'watch'; sink: number; k: string; end: string | undefined; offset: number | null; prevKv: boolean; noPut: boolean; noDelete: boolean }
  | { t: 'pause'; sink: number }
  | { t: 'unpause'; sink: number }
  | { t: 'cancel'; n: number }
  | { t: 'progress'; sink: number }
  | { t: 'compact'; n: number }
  | { t: 'flush' }
  | { t: 'settle' }
  | { t: 'tick' };

/** Keys written; "q" rarely, so watchers on it stay quiet for long stretches. */
const key = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f') }, { weight: 1, arbitrary: fc.constant('q') });
const watchKey = fc.constantFrom(...KEYS);
const value = fc.string({ minLength: 0, maxLength: 3 });
/** Sub-operations of one txn branch on distinct keys (etcd rejects duplicate keys in a txn). */
const branch = fc
  .uniqueArray(fc.tuple(key, fc.boolean(), value), { maxLength: 3, selector: (x) => x[0] })
  .map((xs) => xs.map(([k, isPut, v]): SubOp => (isPut ? { t: 'put', k, v } : { t: 'del', k })));

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('put' as const), k: key, v: value }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: key }) },
  {
    weight: 1,
    arbitrary: fc.tuple(key, key).map(([x, y]): Op => ({ t: 'delr', k: x < y ? x : y, end: x < y ? y : `${y}\xff` })),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('txn' as const), ck: key, cv: fc.integer({ min: 0, max: 3 }), success: branch, failure: branch }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('watch' as const),
      sink: fc.integer({ min: 0, max: SINKS - 1 }),
      k: watchKey,
      end: fc.oneof(fc.constant(undefined), fc.constant(''), key.map((k) => `${k}\x01`), fc.constantFrom('c', 'e', 'g')),
      offset: fc.oneof(fc.constant(null), fc.integer({ min: -12, max: 4 })),
      prevKv: fc.boolean(),
      noPut: fc.boolean(),
      noDelete: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pause' as const), sink: fc.integer({ min: 0, max: SINKS - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('unpause' as const), sink: fc.integer({ min: 0, max: SINKS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cancel' as const), n: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('progress' as const), sink: fc.integer({ min: 0, max: SINKS - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), n: fc.nat() }) },
  { weight: 2, arbitrary: fc.constant({ t: 'flush' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'settle' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'tick' as const }) },
);

interface Rec {
  value: string;
  create: number;
  mod: number;
  version: number;
}

/** The model: the live keys and every event by revision. */
class Model {
  rev = 1;
  readonly live = new Map<string, Rec>();
  readonly events: EventView[] = [];

  private change(k: string, put: string | undefined, rev: number): EventView {
    const prev = this.live.get(k);
    const prevView = prev === undefined ? null : { ...prev };
    if (put === undefined) {
      this.live.delete(k);
      return { type: 'delete', key: k, value: '', create: 0, mod: rev, version: 0, prev: prevView };
    }
    const rec: Rec = { value: put, create: prev?.create ?? rev, mod: rev, version: (prev?.version ?? 0) + 1 };
    this.live.set(k, rec);
    return { type: 'put', key: k, ...rec, prev: prevView };
  }

  /** Applies one write; the changes share the next revision when there is at least one. */
  apply(ops: SubOp[]): void {
    const rev = this.rev + 1;
    const evs: EventView[] = [];
    for (const o of ops) {
      if (o.t === 'put') evs.push(this.change(o.k, o.v, rev));
      else if (this.live.has(o.k)) evs.push(this.change(o.k, undefined, rev));
    }
    if (evs.length === 0) return;
    this.rev = rev;
    this.events.push(...evs);
  }
}

interface Tracked {
  w: Watcher;
  sink: number;
  key: string;
  end: string | undefined;
  start: number;
  canceled: boolean;
  /** Set when a compaction happened while this watcher could legitimately lose history to it. */
  mayBeCompacted: boolean;
}

function inRange(t: Tracked, k: string): boolean {
  if (t.end === undefined) return k === t.key;
  return k >= t.key && (t.end === '' || k < t.end);
}

function expected(model: Model, t: Tracked): EventView[] {
  return model.events
    .filter((e) => e.mod >= t.start && inRange(t, e.key))
    .filter((e) => (e.type === 'put' ? !t.w.noPut : !t.w.noDelete))
    .map((e) => (t.w.prevKv ? e : { ...e, prev: null }));
}

async function run(ops: Op[], chunk: number): Promise<void> {
  const fx = await HubFixture.open({ chunk, retryMs: 5 });
  // History reads take a turn of the event loop, so the test's steps interleave with them.
  const read = fx.store.history.bind(fx.store);
  fx.store.history = async (...args: Parameters<typeof read>) => {
    const r = await read(...args);
    await new Promise((res) => setImmediate(res));
    return r;
  };
  try {
    const model = new Model();
    const sinks = Array.from({ length: SINKS }, () => new FakeSink());
    const tracked: Tracked[] = [];
    const ids = new Array<number>(SINKS).fill(0);
    /** Progress request id → the watchers it speaks for. */
    const progressFor = new Map<number, Tracked[]>();
    let nextProgress = 1000;
    for (const o of ops) {
      switch (o.t) {
        case 'put':
          await fx.put(o.k, o.v);
          model.apply([o]);
          break;
        case 'del':
          await fx.del(o.k);
          model.apply([o]);
          break;
        case 'delr':
          await fx.del(o.k, o.end);
          model.apply(KEYS.filter((k) => k >= o.k && k < o.end).map((k): SubOp => ({ t: 'del', k })));
          break;
        case 'txn': {
          const toReq = (s: SubOp): ReturnType<typeof putOp> | ReturnType<typeof delOp> => (s.t === 'put' ? putOp(s.k, s.v) : delOp(s.k));
          await fx.txn([versionIs(o.ck, o.cv)], o.success.map(toReq), o.failure.map(toReq));
          const ok = (model.live.get(o.ck)?.version ?? 0) === o.cv;
          model.apply(ok ? o.success : o.failure);
          break;
        }
        case 'watch': {
          const start = o.offset === null ? model.rev + 1 : Math.max(1, model.rev + o.offset);
          const w = fx.watch(sinks[o.sink]!, ids[o.sink]!++, o.k, {
            end: o.end,
            startRev: o.offset === null ? 0 : start,
            prevKv: o.prevKv,
            noPut: o.noPut,
            noDelete: o.noDelete,
          });
          tracked.push({ w, sink: o.sink, key: o.k, end: o.end, start, canceled: false, mayBeCompacted: start < fx.store.compactRev });
          break;
        }
        case 'pause':
          sinks[o.sink]!.paused = true;
          break;
        case 'unpause':
          sinks[o.sink]!.paused = false;
          fx.hub.kick();
          break;
        case 'cancel': {
          const live = tracked.filter((t) => !t.canceled);
          if (live.length === 0) break;
          const t = live[o.n % live.length]!;
          t.canceled = true;
          fx.hub.remove(t.w);
          break;
        }
        case 'progress': {
          const mine = tracked.filter((t) => t.sink === o.sink && !t.canceled);
          const id = nextProgress++;
          progressFor.set(id, mine);
          void fx.hub.requestProgress(sinks[o.sink]!, mine.map((t) => t.w), id);
          break;
        }
        case 'compact': {
          // A compaction at a revision with a delete would also drop that tombstone from history
          // (a known storage issue covered elsewhere); compact only at revisions without one.
          const candidates: number[] = [];
          for (let r = Math.max(fx.store.compactRev + 1, 2); r <= model.rev; r++) {
            if (!model.events.some((e) => e.mod === r && e.type === 'delete')) candidates.push(r);
          }
          if (candidates.length === 0) break;
          const rev = candidates[o.n % candidates.length]!;
          // With the hub caught up, a synced watcher has every event up to the current revision and
          // must never be canceled; an unsynced one may be if it still needs revisions below `rev`.
          await fx.settle();
          for (const t of tracked) if (t.w.state !== 'synced' && t.w.minRev < rev) t.mayBeCompacted = true;
          await fx.compact(rev);
          break;
        }
        case 'flush':
          fx.flush();
          break;
        case 'settle':
          await fx.settle();
          break;
        case 'tick':
          await new Promise((r) => setImmediate(r));
          break;
      }
    }
    for (const s of sinks) s.paused = false;
    fx.hub.kick();
    await fx.synced(10000);

    for (const s of sinks) expect(s.sentWhilePaused()).toBe(0);
    for (const t of tracked) {
      const sink = sinks[t.sink]!;
      const got = sink.events(t.w.id).map(viewOf);
      // prev_kv is read at mod_revision - 1; when that revision has been compacted by the time the
      // event is delivered it is omitted (etcd does the same), so either form is right there.
      const want = expected(model, t).map((e, i) =>
        e.mod - 1 < fx.store.compactRev && got[i] !== undefined && got[i]!.mod === e.mod && got[i]!.prev === null ? { ...e, prev: null } : e,
      );
      const compacted = sink.log.filter((r) => r.kind === 'compacted' && r.watchId === t.w.id);
      if (compacted.length > 0) {
        expect({ id: t.w.id, start: t.start, mayBeCompacted: t.mayBeCompacted }).toEqual({ id: t.w.id, start: t.start, mayBeCompacted: true });
        expect(compacted).toHaveLength(1);
        // Nothing after the cancel, and what came before is a prefix of the expected events.
        expect(sink.log.filter((r) => r.watchId === t.w.id).pop()).toBe(compacted[0]);
        expect(want.slice(0, got.length)).toEqual(got);
      } else if (t.canceled) expect(want.slice(0, got.length)).toEqual(got);
      else expect({ start: t.start, key: t.key, end: t.end, got }).toEqual({ start: t.start, key: t.key, end: t.end, got: want });
      // Atomic: a revision's events are in one response.
      const seen = new Map<number, number>();
      sink.eventResponses(t.w.id).forEach((r, i) => {
        for (const e of r.events) {
          expect(seen.get(e.kv.modRevision) ?? i).toBe(i);
          seen.set(e.kv.modRevision, i);
        }
      });
    }
    // Bookmarkable: at a progress at revision R, every event ≤ R of the watchers it covers was sent.
    for (const s of sinks) {
      s.log.forEach((r, i) => {
        if (r.kind !== 'progress') return;
        const covered = progressFor.get(r.watchId) ?? [];
        const before = s.log.slice(0, i);
        for (const t of covered) {
          if (t.canceled || s.log.some((x) => x.kind === 'compacted' && x.watchId === t.w.id)) continue;
          const due = expected(model, t).filter((e) => e.mod <= r.rev).length;
          const sent = before.filter((x) => x.kind === 'events' && x.watchId === t.w.id).flatMap((x) => (x.kind === 'events' ? x.events : [])).length;
          expect(sent).toBeGreaterThanOrEqual(due);
        }
      });
    }
  } finally {
    await fx.close();
  }
}

test('every watcher receives exactly the events of its range from its start revision', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 80, size: 'max' }), fc.integer({ min: 1, max: 3 }), (ops, chunk) => run(ops, chunk)),
    { numRuns: 100 },
  );
}, 60000);
