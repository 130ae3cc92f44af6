import * as fc from 'fast-check';
import type { RevisionEvents, WatchEvent, WatchResponseRecord, WatchSession } from '../../../src/check/history';
import { inRange } from '../../../src/check/history';
import { checkWatches } from '../../../src/check/watch-check';
import { kv } from './builders';
import { buildHistory, intents } from './generate';

/** What a correct server delivers: one response per `batch` revisions, progress every `every` responses. */
function deliver(
  history: readonly RevisionEvents[],
  w: { key: string; rangeEnd: string; start: number; prevKv: boolean; batch?: number; progressEvery?: number; watcher?: number; session?: number },
): WatchSession {
  const responses: WatchResponseRecord[] = [];
  let t = 0;
  const res = (revision: number, events: WatchEvent[], extra: Partial<WatchResponseRecord> = {}): WatchResponseRecord => ({
    time: t++,
    revision,
    watchId: 0,
    created: false,
    canceled: false,
    compactRevision: 0,
    events,
    ...extra,
  });
  const last = history.length === 0 ? 1 : history[history.length - 1]!.revision;
  responses.push(res(last, [], { created: true }));
  let pending: WatchEvent[] = [];
  let revs = 0;
  let count = 0;
  for (const r of history) {
    if (r.revision < w.start) continue;
    const evs = r.events.filter((e) => inRange(e.kv.key, w.key, w.rangeEnd)).map((e) => (w.prevKv ? e : { type: e.type, kv: e.kv }));
    if (evs.length === 0) continue;
    pending.push(...evs);
    revs++;
    if (revs >= (w.batch ?? 1)) {
      responses.push(res(r.revision, pending));
      pending = [];
      revs = 0;
      count++;
      if (w.progressEvery !== undefined && count % w.progressEvery === 0) responses.push(res(r.revision, []));
    }
  }
  if (pending.length > 0) responses.push(res(last, pending));
  responses.push(res(last, []));
  return {
    watcher: w.watcher ?? 0,
    session: w.session ?? 0,
    key: w.key,
    rangeEnd: w.rangeEnd,
    startRevision: w.start,
    prevKv: w.prevKv,
    progressNotify: true,
    start: 0,
    end: t,
    endReason: 'end of run',
    responses,
  };
}

/** A small history: puts on a and b, a lease revoke deleting both in one revision, a re-create. */
const HIST: RevisionEvents[] = [
  { revision: 2, events: [{ type: 'put', kv: kv('a', 'a1', 2, { lease: '7' }) }] },
  { revision: 3, events: [{ type: 'put', kv: kv('b', 'b1', 3, { lease: '7' }) }] },
  { revision: 4, events: [{ type: 'put', kv: kv('a', 'a2', 4, { create: 2, version: 2, lease: '7' }), prevKv: kv('a', 'a1', 2, { lease: '7' }) }] },
  {
    revision: 5,
    events: [
      { type: 'delete', kv: kv('a', '', 5, { create: 0, version: 0 }), prevKv: kv('a', 'a2', 4, { create: 2, version: 2, lease: '7' }) },
      { type: 'delete', kv: kv('b', '', 5, { create: 0, version: 0 }), prevKv: kv('b', 'b1', 3, { lease: '7' }) },
    ],
  },
  { revision: 6, events: [{ type: 'put', kv: kv('a', 'a3', 6) }] },
  { revision: 7, events: [{ type: 'put', kv: kv('c', 'c1', 7) }] },
];

const all = { key: 'a', rangeEnd: 'c', start: 2, prevKv: true };

function messages(s: WatchSession[]): string[] {
  return checkWatches(s, HIST).anomalies.map((a) => a.message);
}

/** Replaces the responses of a session. */
function withResponses(s: WatchSession, f: (rs: WatchResponseRecord[]) => WatchResponseRecord[]): WatchSession {
  return { ...s, responses: f([...s.responses]) };
}

describe('watch checks', () => {
  test('a correct delivery passes, in any batching, with or without prev_kv', () => {
    for (const batch of [1, 2, 5]) {
      for (const prevKv of [true, false]) {
        const s = deliver(HIST, { ...all, prevKv, batch, progressEvery: 1 });
        expect(messages([s])).toEqual([]);
      }
    }
    expect(messages([deliver(HIST, { key: 'a', rangeEnd: '', start: 3, prevKv: true })])).toEqual([]);
  });

  test('correct deliveries of generated histories pass', () => {
    fc.assert(
      fc.property(intents(), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), (list, batch, start) => {
        const g = buildHistory(list);
        const s1 = deliver(g.events, { key: 'k', rangeEnd: 'l', start, prevKv: true, batch, progressEvery: 2 });
        const s2 = deliver(g.events, { key: 'k1', rangeEnd: '', start: 1, prevKv: false, watcher: 1 });
        expect(checkWatches([s1, s2], g.events).anomalies).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  test('reliable: a dropped event', () => {
    const s = withResponses(deliver(HIST, all), (rs) => rs.filter((r) => !r.events.some((e) => e.kv.modRevision === 3)));
    expect(messages([s]).join('\n')).toMatch(/reliable: 1 event\(s\) skipped before revision 4/);
  });

  test('reliable: the events before the last progress notification must all arrive', () => {
    const s = withResponses(deliver(HIST, all), (rs) => rs.filter((r) => !r.events.some((e) => e.kv.modRevision === 6)));
    expect(messages([s]).join('\n')).toMatch(/progress notification at revision 7 .* revision 6/);
  });

  test('unique: an event delivered twice', () => {
    const s = withResponses(deliver(HIST, all), (rs) => {
      const i = rs.findIndex((r) => r.events.some((e) => e.kv.modRevision === 2));
      rs.splice(i + 1, 0, rs[i]!);
      return rs;
    });
    expect(messages([s]).join('\n')).toMatch(/delivered twice or out of order/);
  });

  test('ordered: two responses swapped', () => {
    const s = withResponses(deliver(HIST, all), (rs) => {
      const i = rs.findIndex((r) => r.events.some((e) => e.kv.modRevision === 3));
      [rs[i], rs[i + 1]] = [rs[i + 1]!, rs[i]!];
      return rs;
    });
    const m = messages([s]).join('\n');
    expect(m).toMatch(/skipped before revision 4/);
    expect(m).toMatch(/delivered twice or out of order/);
  });

  test('atomic: one revision split over two responses', () => {
    const s = withResponses(deliver(HIST, all), (rs) => {
      const i = rs.findIndex((r) => r.events.length === 2);
      const r = rs[i]!;
      rs.splice(i, 1, { ...r, events: [r.events[0]!] }, { ...r, events: [r.events[1]!] });
      return rs;
    });
    expect(messages([s]).join('\n')).toMatch(/atomic: revision 5 has 2 matching events but this response carries 1/);
  });

  test('prev_kv and create detection', () => {
    const wrongPrev = withResponses(deliver(HIST, all), (rs) =>
      rs.map((r) => ({ ...r, events: r.events.map((e) => (e.kv.modRevision === 4 ? { ...e, prevKv: kv('a', 'zz', 2) } : e)) })),
    );
    expect(messages([wrongPrev]).join('\n')).toMatch(/prev_kv of put a@4/);
    const missingPrev = withResponses(deliver(HIST, all), (rs) =>
      rs.map((r) => ({ ...r, events: r.events.map((e) => (e.kv.modRevision === 5 ? { type: e.type, kv: e.kv } : e)) })),
    );
    expect(messages([missingPrev]).join('\n')).toMatch(/prev_kv of delete a@5 is ∅/);
    const unasked = deliver(HIST, { ...all, prevKv: false });
    const withPrev = withResponses(unasked, (rs) => rs.map((r) => ({ ...r, events: r.events.map((e) => (e.kv.modRevision === 4 ? { ...e, prevKv: kv('a', 'a1', 2, { lease: '7' }) } : e)) })));
    expect(messages([withPrev]).join('\n')).toMatch(/prev_kv sent though not asked for/);
    const notCreate = withResponses(deliver(HIST, all), (rs) =>
      rs.map((r) => ({ ...r, events: r.events.map((e) => (e.kv.modRevision === 6 ? { ...e, kv: { ...e.kv, version: 2 } } : e)) })),
    );
    const m = messages([notCreate]).join('\n');
    expect(m).toMatch(/create detection/);
    expect(m).toMatch(/differs from the final history/);
  });

  test('filters: events outside the range or before the start', () => {
    const s = deliver(HIST, { key: 'a', rangeEnd: '', start: 4, prevKv: true });
    const outside = withResponses(s, (rs) => {
      rs.splice(1, 0, { ...rs[1]!, events: [HIST[1]!.events[0]!] });
      return rs;
    });
    expect(messages([outside]).join('\n')).toMatch(/outside the watched range/);
    const early = withResponses(s, (rs) => {
      rs.splice(1, 0, { ...rs[1]!, events: [HIST[0]!.events[0]!] });
      return rs;
    });
    expect(messages([early]).join('\n')).toMatch(/before the start revision 4/);
  });

  test('bookmarkable: a progress notification ahead of undelivered events', () => {
    const s = withResponses(deliver(HIST, all), (rs) => {
      const i = rs.findIndex((r) => r.events.some((e) => e.kv.modRevision === 4));
      rs.splice(i, 0, { ...rs[i]!, events: [], revision: 4 });
      return rs;
    });
    expect(messages([s]).join('\n')).toMatch(/progress notification at revision 4 .* revision 4/);
  });

  test('resumable: a second session must pick up right after the first', () => {
    const first = withResponses(deliver(HIST, { ...all, start: 2 }), (rs) => rs.filter((r) => r.created || (r.events.length > 0 && r.revision <= 3)));
    const good = deliver(HIST, { ...all, start: 4, session: 1 });
    expect(messages([first, good])).toEqual([]);
    const gap = deliver(HIST, { ...all, start: 5, session: 1 });
    expect(messages([first, gap]).join('\n')).toMatch(/resumed at revision 5, but the last revision received was 3/);
    // A server that skips the first events of the resumed session is caught by reliability.
    const skipping = withResponses(good, (rs) => rs.filter((r) => !r.events.some((e) => e.kv.modRevision === 4)));
    expect(messages([first, skipping]).join('\n')).toMatch(/skipped before revision 5/);
  });

  test('events that the final history does not have', () => {
    const s = withResponses(deliver(HIST, all), (rs) => {
      rs.splice(1, 0, { ...rs[1]!, revision: 9, events: [{ type: 'put', kv: kv('a', 'ghost', 9) }] });
      return rs;
    });
    expect(messages([s]).join('\n')).toMatch(/not in the final history/);
  });
});
