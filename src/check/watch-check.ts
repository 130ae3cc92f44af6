/**
 * Checks recorded watch streams against the final event history (etcd's watch guarantees):
 *
 * - ordered: a session's events come in history order (revision, then order within a revision);
 * - unique: no event is delivered twice;
 * - atomic: all of a revision's events that match the watch come in one response;
 * - reliable: every matching event from the session's start revision up to the last revision it
 *   received (an event or a progress notification) was delivered;
 * - resumable: a client that resumes at last + 1 loses and repeats nothing across the break
 *   (each session is reliable from its start, and its start follows the previous session's last);
 * - correct content: each event equals the history's event; prev_kv equals the pair before the
 *   revision (and is absent when not asked for); create detection: a put has version 1 exactly
 *   when its create revision equals its mod revision;
 * - filters: only events of the watched range at or after the start revision;
 * - bookmarkable: a progress notification at revision P comes only after every matching event
 *   ≤ P, and no later event is ≤ P.
 */
import type { Anomaly } from './anomaly';
import type { KvRecord, RevisionEvents, WatchEvent, WatchSession } from './history';
import { inRange, kvText } from './history';
import { sameKv } from './events';

/** One event of the final history with its position and the pair before it. */
interface HistEvent {
  readonly pos: number;
  readonly revision: number;
  readonly event: WatchEvent;
  /** The key's pair before this revision; null when absent. */
  readonly prev: KvRecord | null;
}

/** The final history flattened, with lookups. */
export class FlatHistory {
  readonly events: HistEvent[] = [];
  private readonly byRevKey = new Map<string, HistEvent>();
  readonly lastRevision: number;

  constructor(history: readonly RevisionEvents[]) {
    const state = new Map<string, KvRecord>();
    for (const r of history) {
      const before = new Map<string, KvRecord | null>();
      for (const e of r.events) if (!before.has(e.kv.key)) before.set(e.kv.key, state.get(e.kv.key) ?? null);
      for (const e of r.events) {
        const he: HistEvent = { pos: this.events.length, revision: r.revision, event: e, prev: before.get(e.kv.key) ?? null };
        this.events.push(he);
        this.byRevKey.set(`${r.revision}\u0000${e.kv.key}`, he);
        if (e.type === 'put') state.set(e.kv.key, e.kv);
        else state.delete(e.kv.key);
      }
    }
    this.lastRevision = history.length === 0 ? 1 : history[history.length - 1]!.revision;
  }

  /** The history event for (revision, key), if any. */
  find(revision: number, key: string): HistEvent | undefined {
    return this.byRevKey.get(`${revision}\u0000${key}`);
  }
}

function eventText(e: WatchEvent): string {
  return `${e.type} ${kvText(e.kv)}${e.prevKv !== undefined ? ` prev ${kvText(e.prevKv)}` : ''}`;
}

function sameEvent(got: WatchEvent, want: WatchEvent): boolean {
  if (got.type !== want.type) return false;
  if (got.type === 'delete') return got.kv.key === want.kv.key && got.kv.modRevision === want.kv.modRevision;
  return sameKv(got.kv, want.kv);
}

/** Options of the watch checks. */
export interface WatchCheckOptions {
  /** Report at most this many anomalies per session (default 5); the rest are counted. */
  readonly maxPerSession?: number;
  /** Time origin for reports, ms. */
  readonly origin?: number;
}

/** Statistics of the watch checks. */
export interface WatchCheckResult {
  readonly anomalies: Anomaly[];
  readonly sessions: number;
  readonly eventsDelivered: number;
  readonly progressNotifications: number;
}

/** Checks every session against the history. */
export function checkWatches(sessions: readonly WatchSession[], history: readonly RevisionEvents[] | FlatHistory, options: WatchCheckOptions = {}): WatchCheckResult {
  const flat = history instanceof FlatHistory ? history : new FlatHistory(history);
  const maxPer = options.maxPerSession ?? 5;
  const origin = options.origin ?? 0;
  const anomalies: Anomaly[] = [];
  let delivered = 0;
  let progress = 0;

  const byWatcher = new Map<number, WatchSession[]>();
  for (const s of sessions) {
    const l = byWatcher.get(s.watcher);
    if (l === undefined) byWatcher.set(s.watcher, [s]);
    else l.push(s);
  }

  for (const s of sessions) {
    const found: string[] = [];
    const report = (msg: string): void => {
      found.push(msg);
    };
    const t = (ms: number): string => `${((ms - origin) / 1000).toFixed(3)}s`;

    // The effective start revision.
    let start = s.startRevision;
    const createdAt = s.responses.findIndex((r) => r.created);
    if (createdAt > 0) report(`the created response is response #${createdAt + 1}, not the first`);
    if (start <= 0) {
      if (createdAt < 0) continue; // never created: nothing to check
      start = s.responses[createdAt]!.revision + 1;
    }
    const expected = flat.events.filter((e) => e.revision >= start && inRange(e.event.kv.key, s.key, s.rangeEnd));
    const expectedPos = new Map<number, number>(); // history pos → index in expected
    const perRevision = new Map<number, number>(); // revision → matching events
    expected.forEach((e, i) => {
      expectedPos.set(e.pos, i);
      perRevision.set(e.revision, (perRevision.get(e.revision) ?? 0) + 1);
    });

    let next = 0; // index in `expected` of the next event due
    let lastRev = 0; // last revision received (event or progress)
    let lastPos = -1;
    let canceled = false;
    for (const r of s.responses) {
      if (canceled) {
        report(`response at ${t(r.time)} after the watch was canceled`);
        break;
      }
      if (r.canceled) {
        canceled = true;
        if (r.compactRevision > 0 && start >= r.compactRevision) report(`canceled as compacted at ${r.compactRevision}, but its start revision ${start} is not compacted`);
      }
      if (r.created || r.canceled) {
        if (r.events.length > 0) report(`created/canceled response carries ${r.events.length} events`);
        continue;
      }
      if (r.events.length === 0) {
        // A progress notification.
        progress++;
        const due = expected[next];
        if (due !== undefined && due.revision <= r.revision) {
          report(`progress notification at revision ${r.revision} (${t(r.time)}) while the event at revision ${due.revision} (${eventText(due.event)}) was not yet delivered`);
        }
        lastRev = Math.max(lastRev, r.revision);
        continue;
      }
      // Atomic: the revisions of this response, and how many of each it carries.
      const counts = new Map<number, number>();
      let maxRev = 0;
      for (const e of r.events) {
        delivered++;
        const rev = e.kv.modRevision;
        counts.set(rev, (counts.get(rev) ?? 0) + 1);
        maxRev = Math.max(maxRev, rev);
        if (!inRange(e.kv.key, s.key, s.rangeEnd)) {
          report(`event outside the watched range: ${eventText(e)}`);
          continue;
        }
        if (rev < start) {
          report(`event before the start revision ${start}: ${eventText(e)}`);
          continue;
        }
        const h = flat.find(rev, e.kv.key);
        if (h === undefined) {
          report(`event not in the final history: ${eventText(e)}`);
          continue;
        }
        if (!sameEvent(e, h.event)) report(`event differs from the final history: got ${eventText(e)}, history has ${eventText(h.event)}`);
        if (e.type === 'put' && (e.kv.version === 1) !== (e.kv.createRevision === e.kv.modRevision)) {
          report(`create detection: ${eventText(e)} has version ${e.kv.version} but create ${e.kv.createRevision} / mod ${e.kv.modRevision}`);
        }
        if (s.prevKv) {
          if (!sameKv(e.prevKv ?? null, h.prev)) report(`prev_kv of ${e.type} ${e.kv.key}@${rev} is ${kvText(e.prevKv ?? null)}, but the pair before was ${kvText(h.prev)}`);
        } else if (e.prevKv !== undefined) {
          report(`prev_kv sent though not asked for: ${eventText(e)}`);
        }
        const idx = expectedPos.get(h.pos);
        if (idx === undefined) continue;
        if (h.pos === lastPos || idx < next) {
          report(`event delivered twice or out of order: ${eventText(e)} (at ${t(r.time)})`);
          continue;
        }
        if (idx > next) {
          const missed = expected.slice(next, idx);
          report(`reliable: ${missed.length} event(s) skipped before revision ${rev}, first ${eventText(missed[0]!.event)} at revision ${missed[0]!.revision}`);
        }
        next = idx + 1;
        lastPos = h.pos;
        lastRev = Math.max(lastRev, rev);
      }
      if (r.revision < maxRev) report(`response header revision ${r.revision} is below its events' revision ${maxRev}`);
      for (const [rev, n] of counts) {
        const want = perRevision.get(rev) ?? 0;
        if (want > 0 && n < want) report(`atomic: revision ${rev} has ${want} matching events but this response carries ${n}`);
      }
    }
    // Reliable up to the last revision received.
    const due = expected[next];
    if (due !== undefined && due.revision <= lastRev) {
      const missing = expected.slice(next).filter((e) => e.revision <= lastRev);
      report(`reliable: ${missing.length} event(s) up to revision ${lastRev} never delivered, first ${eventText(due.event)} at revision ${due.revision}`);
    }

    // Resumable: the next session of this client starts right after this one's last revision.
    const mine = byWatcher.get(s.watcher)!;
    const following = mine[mine.indexOf(s) + 1];
    const resumeAt = lastRev > 0 ? lastRev + 1 : start;
    if (following !== undefined && following.startRevision > 0 && following.startRevision !== resumeAt) {
      report(`resumed at revision ${following.startRevision}, but the last revision received was ${lastRev} (start ${start})`);
    }

    for (const msg of found.slice(0, maxPer)) anomalies.push({ kind: 'watch', message: msg, watch: { watcher: s.watcher, session: s.session } });
    if (found.length > maxPer) anomalies.push({ kind: 'watch', message: `${found.length - maxPer} more problems in this session`, watch: { watcher: s.watcher, session: s.session } });
  }
  return { anomalies, sessions: sessions.length, eventsDelivered: delivered, progressNotifications: progress };
}
