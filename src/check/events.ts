/**
 * The final event history (every revision's events, as a watch from revision 1 with prev_kv
 * delivers them at the end of a run) and the checks made against it:
 *
 * - the history itself: revisions contiguous from its first, each revision non-empty, one put
 *   event per written value (values are unique per operation, so a value written twice is a
 *   duplicated write), every put of a checked key written by some operation;
 * - every acknowledged write appears at the revision it reported (durability, and the revision
 *   the client was told is the one the write got);
 * - every read (linearizable or serializable, including a failed txn's range and the prev_kv of a
 *   put or delete) equals the state the history gives at its revision;
 * - indeterminate writes are resolved: took effect at revision r, or never.
 */
import type { Anomaly } from './anomaly';
import { opWindow } from './anomaly';
import type { KvOp, KvRecord, RevisionEvents } from './history';
import { inRange, kvText } from './history';
import type { Resolution } from './partition';

/** Replays an event history forward; queries must come in non-decreasing revision order. */
export class Replayer {
  private readonly state = new Map<string, KvRecord>();
  private index = 0;
  private rev = 0;

  constructor(private readonly history: readonly RevisionEvents[]) {}

  /** The key-value state after every revision ≤ rev (the returned map is live; do not keep it). */
  at(rev: number): ReadonlyMap<string, KvRecord> {
    if (rev < this.rev) throw new Error(`replay went backwards (${rev} < ${this.rev})`);
    while (this.index < this.history.length && this.history[this.index]!.revision <= rev) {
      for (const e of this.history[this.index]!.events) {
        if (e.type === 'put') this.state.set(e.kv.key, e.kv);
        else this.state.delete(e.kv.key);
      }
      this.index++;
    }
    this.rev = rev;
    return this.state;
  }
}

/** The pairs of `state` inside [key, rangeEnd), in key order. */
export function rangeOf(state: ReadonlyMap<string, KvRecord>, key: string, rangeEnd: string): KvRecord[] {
  const out: KvRecord[] = [];
  for (const kv of state.values()) if (inRange(kv.key, key, rangeEnd)) out.push(kv);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** True when two pairs are equal in every field. */
export function sameKv(a: KvRecord | null | undefined, b: KvRecord | null | undefined): boolean {
  if (a === undefined || a === null || b === undefined || b === null) return (a ?? null) === (b ?? null);
  return a.key === b.key && a.value === b.value && a.createRevision === b.createRevision && a.modRevision === b.modRevision && a.version === b.version && a.lease === b.lease;
}

function sameList(a: readonly KvRecord[], b: readonly KvRecord[]): boolean {
  return a.length === b.length && a.every((kv, i) => sameKv(kv, b[i]));
}

/** Options of the event-history checks. */
export interface EventCheckOptions {
  /** Keys under check (writes of other keys, e.g. filler traffic, are not attributed). */
  readonly isChecked: (key: string) => boolean;
  /** Time origin for reports, ms. */
  readonly origin?: number;
}

function putKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

/** Sanity of the history itself: contiguous, non-empty revisions, ordered. */
export function checkEventHistory(history: readonly RevisionEvents[]): Anomaly[] {
  const out: Anomaly[] = [];
  for (let i = 0; i < history.length; i++) {
    const r = history[i]!;
    if (r.events.length === 0) out.push({ kind: 'event-history', message: `revision ${r.revision} has no events` });
    for (const e of r.events) {
      if (e.kv.modRevision !== r.revision) out.push({ kind: 'event-history', message: `event ${e.type} ${e.kv.key} at revision ${r.revision} carries mod revision ${e.kv.modRevision}` });
    }
    if (i > 0 && r.revision !== history[i - 1]!.revision + 1) {
      out.push({ kind: 'event-history', message: `revisions jump from ${history[i - 1]!.revision} to ${r.revision}: ${r.revision - history[i - 1]!.revision - 1} revision(s) have no events` });
    }
  }
  return out;
}

/**
 * Resolves indeterminate puts, txns and deletes from the final history. A put or txn whose (key,
 * value) appears once took effect at that revision; not at all: it never took effect. An unknown
 * delete can only account for a delete event of its key that no acknowledged operation claims.
 */
export function resolveIndeterminate(ops: readonly KvOp[], history: readonly RevisionEvents[], finalLeases?: ReadonlySet<string>): Map<number, Resolution> {
  const puts = new Map<string, number[]>();
  const deletes = new Map<string, number[]>();
  for (const r of history) {
    for (const e of r.events) {
      if (e.type === 'put') {
        const k = putKey(e.kv.key, e.kv.value);
        const l = puts.get(k);
        if (l === undefined) puts.set(k, [r.revision]);
        else l.push(r.revision);
      } else {
        const l = deletes.get(e.kv.key);
        if (l === undefined) deletes.set(e.kv.key, [r.revision]);
        else l.push(r.revision);
      }
    }
  }
  // Delete events (key, revision) that acknowledged operations account for.
  const byRev = new Map<number, RevisionEvents>();
  for (const r of history) byRev.set(r.revision, r);
  const claimed = new Set<string>();
  for (const op of ops) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const o = op.output;
    const i = op.input;
    if (o.type === 'delete' && o.deleted > 0 && i.type === 'delete') claimed.add(putKey(i.key, String(o.revision)));
    if (o.type === 'leaseRevoke' && i.type === 'leaseRevoke') {
      for (const e of byRev.get(o.revision)?.events ?? []) {
        if (e.type === 'delete' && e.prevKv?.lease === i.lease) claimed.add(putKey(e.kv.key, String(o.revision)));
      }
    }
  }
  const out = new Map<number, Resolution>();
  for (const op of ops) {
    if (op.status !== 'unknown') continue;
    const i = op.input;
    if (i.type === 'put' || i.type === 'txn') {
      const revs = puts.get(putKey(i.key, i.value));
      if (revs === undefined) out.set(op.id, { kind: 'never' });
      else if (revs.length === 1) out.set(op.id, { kind: 'at', revision: revs[0]! });
    } else if (i.type === 'delete') {
      const revs = (deletes.get(i.key) ?? []).filter((r) => !claimed.has(putKey(i.key, String(r))));
      out.set(op.id, revs.length === 0 ? { kind: 'never' } : { kind: 'candidates', revisions: revs });
    } else if (i.type === 'range') {
      out.set(op.id, { kind: 'never' });
    }
  }
  if (finalLeases !== undefined) resolveLeases(ops, finalLeases, out);
  return out;
}

/**
 * Resolves indeterminate lease grants and revokes from the leases that exist at the end. Sound
 * only when lease ids are never reused and no lease expires within the history (so a lease is gone
 * exactly when a revoke took effect): then the only grant of a lease that exists, or that some
 * acknowledged revoke found, took effect; the only revoke of a lease that is gone took effect (at a
 * revision not known); a revoke of a lease that still exists never did.
 */
function resolveLeases(ops: readonly KvOp[], finalLeases: ReadonlySet<string>, out: Map<number, Resolution>): void {
  const grants = new Map<string, KvOp[]>();
  const revokes = new Map<string, KvOp[]>();
  for (const op of ops) {
    const i = op.input;
    if (op.status === 'fail') continue;
    const m = i.type === 'leaseGrant' ? grants : i.type === 'leaseRevoke' ? revokes : undefined;
    if (m === undefined || !('lease' in i)) continue;
    const l = m.get(i.lease);
    if (l === undefined) m.set(i.lease, [op]);
    else l.push(op);
  }
  for (const [lease, gs] of grants) {
    if (gs.length !== 1 || gs[0]!.status !== 'unknown') continue;
    const rs = revokes.get(lease) ?? [];
    if (finalLeases.has(lease) || rs.some((r) => r.status === 'ok')) out.set(gs[0]!.id, { kind: 'happened' });
    else if (rs.length === 0) out.set(gs[0]!.id, { kind: 'never' });
  }
  for (const [lease, rs] of revokes) {
    if (rs.length !== 1 || rs[0]!.status !== 'unknown') continue;
    const granted = (grants.get(lease) ?? []).some((g) => g.status === 'ok' || out.get(g.id)?.kind === 'happened');
    // Its revision stays unknown: a delete event of a key holding the lease may as well come from
    // a DeleteRange of that key.
    if (finalLeases.has(lease)) out.set(rs[0]!.id, { kind: 'never' });
    else if (granted) out.set(rs[0]!.id, { kind: 'happened' });
  }
}

interface ReadQuery {
  readonly rev: number;
  readonly op: KvOp;
  readonly key: string;
  readonly rangeEnd: string;
  readonly got: readonly KvRecord[];
  readonly what: string;
  /** Lease revokes: no key may hold this lease at `rev`. */
  readonly revokedLease?: string;
}

/**
 * Checks the operations against the final history (see the module comment). Reads above the
 * history's last revision are reported too: the history must cover everything acknowledged.
 */
export function checkAgainstEvents(ops: readonly KvOp[], history: readonly RevisionEvents[], opts: EventCheckOptions): Anomaly[] {
  const origin = opts.origin ?? 0;
  const out: Anomaly[] = [];
  const byRev = new Map<number, RevisionEvents>();
  for (const r of history) byRev.set(r.revision, r);
  const last = history.length === 0 ? 1 : history[history.length - 1]!.revision;

  // Writers of each (key, value): values are unique per operation.
  const writers = new Map<string, KvOp[]>();
  for (const op of ops) {
    const i = op.input;
    if (i.type === 'put' || i.type === 'txn') {
      const k = putKey(i.key, i.value);
      const l = writers.get(k);
      if (l === undefined) writers.set(k, [op]);
      else l.push(op);
    }
  }
  const seenPut = new Map<string, number>();
  for (const r of history) {
    for (const e of r.events) {
      if (e.type !== 'put' || !opts.isChecked(e.kv.key)) continue;
      const k = putKey(e.kv.key, e.kv.value);
      const first = seenPut.get(k);
      const w = writers.get(k);
      if (first !== undefined) {
        out.push({
          kind: 'duplicate-write',
          key: e.kv.key,
          message: `${e.kv.key}=${e.kv.value} was written at revision ${first} and again at revision ${r.revision}`,
          window: opWindow(w ?? [], origin),
        });
      } else {
        seenPut.set(k, r.revision);
      }
      if (w === undefined || w.every((op) => op.status === 'fail')) {
        out.push({
          kind: 'phantom-write',
          key: e.kv.key,
          message: `revision ${r.revision} puts ${e.kv.key}=${e.kv.value}, which no operation ${w === undefined ? 'wrote' : 'wrote successfully (every attempt failed definitely)'}`,
          window: opWindow(w ?? [], origin),
        });
      }
    }
  }

  // Acknowledged writes at their revisions.
  for (const op of ops) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const i = op.input;
    const o = op.output;
    const evs = byRev.get(o.revision)?.events ?? [];
    let problem: string | undefined;
    if (i.type === 'put' && o.type === 'put') {
      if (!evs.some((e) => e.type === 'put' && e.kv.key === i.key && e.kv.value === i.value && e.kv.lease === i.lease)) problem = `acknowledged put ${i.key}=${i.value} is not at its revision ${o.revision}`;
    } else if (i.type === 'txn' && o.type === 'txn' && o.succeeded) {
      if (!evs.some((e) => e.type === 'put' && e.kv.key === i.key && e.kv.value === i.value)) problem = `acknowledged txn put ${i.key}=${i.value} is not at its revision ${o.revision}`;
    } else if (i.type === 'delete' && o.type === 'delete' && o.deleted > 0) {
      if (!evs.some((e) => e.type === 'delete' && e.kv.key === i.key)) problem = `acknowledged delete of ${i.key} is not at its revision ${o.revision}`;
    }
    if (problem !== undefined) {
      const now = byRev.get(o.revision);
      out.push({
        kind: 'lost-write',
        key: 'key' in i ? i.key : undefined,
        message: `${problem} (revision ${o.revision} holds ${now === undefined ? 'nothing' : now.events.map((e) => `${e.type} ${kvText(e.kv)}`).join('; ')})`,
        window: opWindow([op], origin),
      });
    }
  }

  // Reads against the state at their revision.
  const queries: ReadQuery[] = [];
  for (const op of ops) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const i = op.input;
    const o = op.output;
    if (i.type === 'range' && o.type === 'range') {
      queries.push({ rev: o.revision, op, key: i.key, rangeEnd: i.rangeEnd, got: o.kvs, what: i.serializable ? 'serializable read' : 'read' });
    } else if (i.type === 'txn' && o.type === 'txn' && !o.succeeded && o.kvs !== undefined) {
      queries.push({ rev: o.revision, op, key: i.key, rangeEnd: '', got: o.kvs, what: 'failed txn read' });
    } else if (i.type === 'put' && o.type === 'put' && o.prevKv !== undefined) {
      queries.push({ rev: o.revision - 1, op, key: i.key, rangeEnd: '', got: o.prevKv === null ? [] : [o.prevKv], what: 'put prev_kv' });
    } else if (i.type === 'delete' && o.type === 'delete' && o.prevKvs !== undefined) {
      queries.push({ rev: o.deleted > 0 ? o.revision - 1 : o.revision, op, key: i.key, rangeEnd: '', got: o.prevKvs, what: 'delete prev_kv' });
    } else if (i.type === 'leaseRevoke' && o.type === 'leaseRevoke') {
      queries.push({ rev: o.revision, op, key: '', rangeEnd: '', got: [], what: 'lease revoke', revokedLease: i.lease });
    }
  }
  queries.sort((a, b) => a.rev - b.rev);
  const replay = new Replayer(history);
  for (const q of queries) {
    if (q.rev > last) {
      out.push({
        kind: q.what === 'serializable read' ? 'serializable-read' : 'read-mismatch',
        key: q.rangeEnd === '' ? q.key : undefined,
        message: `${q.what} at revision ${q.rev} is beyond the final history's last revision ${last}`,
        window: opWindow([q.op], origin),
      });
      continue;
    }
    if (q.revokedLease !== undefined) {
      const left = [...replay.at(q.rev).values()].filter((kv) => kv.lease === q.revokedLease);
      if (left.length > 0) {
        out.push({
          kind: 'lost-write',
          message: `lease ${q.revokedLease} was revoked at revision ${q.rev}, but at that revision [${left.map(kvText).join(', ')}] still hold it`,
          window: opWindow([q.op], origin),
        });
      }
      continue;
    }
    const want = rangeOf(replay.at(q.rev), q.key, q.rangeEnd);
    if (!sameList(want, q.got)) {
      out.push({
        kind: q.what === 'serializable read' ? 'serializable-read' : 'read-mismatch',
        key: q.rangeEnd === '' ? q.key : undefined,
        message: `${q.what} at revision ${q.rev} returned [${q.got.map(kvText).join(', ')}] but the state at ${q.rev} is [${want.map(kvText).join(', ')}]`,
        window: opWindow([q.op], origin),
      });
    }
  }
  return out;
}

/**
 * Durability against a final (quorum) read at revision `finalRevision` of the range the history's
 * keys live in: every acknowledged write of a key is present in the final state or superseded by a
 * later write or delete of that key.
 */
export function checkDurability(ops: readonly KvOp[], finalKvs: readonly KvRecord[], finalRevision: number, opts: EventCheckOptions): Anomaly[] {
  const origin = opts.origin ?? 0;
  const out: Anomaly[] = [];
  const final = new Map<string, KvRecord>();
  for (const kv of finalKvs) final.set(kv.key, kv);
  // Possible later deleters per key: (revision or Infinity for unknown, op).
  const deleters = new Map<string, number[]>();
  const noteDelete = (key: string, rev: number): void => {
    const l = deleters.get(key);
    if (l === undefined) deleters.set(key, [rev]);
    else l.push(rev);
  };
  const leaseKeysOf = new Map<string, Set<string>>();
  for (const op of ops) {
    const i = op.input;
    if ((i.type === 'put' || i.type === 'txn') && i.lease !== '0') {
      let s = leaseKeysOf.get(i.lease);
      if (s === undefined) leaseKeysOf.set(i.lease, (s = new Set()));
      s.add(i.key);
    }
  }
  for (const op of ops) {
    if (op.status === 'fail') continue;
    const i = op.input;
    const rev = op.status === 'ok' && op.output !== undefined ? op.output.revision : Infinity;
    if (i.type === 'delete' && (op.output?.type !== 'delete' || op.output.deleted > 0)) noteDelete(i.key, rev);
    if (i.type === 'leaseRevoke') for (const k of leaseKeysOf.get(i.lease) ?? []) noteDelete(k, rev);
  }
  for (const op of ops) {
    if (op.status !== 'ok' || op.output === undefined) continue;
    const i = op.input;
    const o = op.output;
    const isWrite = (i.type === 'put' && o.type === 'put') || (i.type === 'txn' && o.type === 'txn' && o.succeeded);
    if (!isWrite || !('key' in i) || !opts.isChecked(i.key) || o.revision > finalRevision) continue;
    const value = i.type === 'put' || i.type === 'txn' ? i.value : '';
    const now = final.get(i.key);
    if (now !== undefined) {
      if (now.modRevision > o.revision) continue;
      if (now.modRevision === o.revision && now.value === value) continue;
    } else if ((deleters.get(i.key) ?? []).some((r) => r > o.revision)) {
      continue;
    }
    out.push({
      kind: 'lost-write',
      key: i.key,
      message: `acknowledged write ${i.key}=${value} at revision ${o.revision} is neither in the final state at revision ${finalRevision} (${now === undefined ? 'key absent' : kvText(now)}) nor superseded by a later write or delete`,
      window: opWindow([op], origin),
    });
  }
  return out;
}
