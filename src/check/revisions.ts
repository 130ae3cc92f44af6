/**
 * The revision-coupled properties of a KV history, which the per-key model cannot see:
 *
 * - unique: no two writes report the same revision (every write makes its own revision);
 * - real-time order: if A completed before B was invoked, B's revision is ≥ A's, and > A's when B
 *   is a write (a linearizable read reports the revision at its linearization point; a write makes
 *   a new, larger one).
 *
 * Serializable reads are exempt (they may be stale). An indeterminate write resolved to revision r
 * takes part as a write that completed at no known time (so it only constrains what follows its
 * call). Both properties follow from linearizability of the whole store, so checking them next
 * to the per-key search is sound.
 */
import type { Anomaly } from './anomaly';
import { opWindow } from './anomaly';
import type { KvOp } from './history';
import type { Resolution } from './partition';

/** An operation with a known revision. */
interface RevOp {
  readonly op: KvOp;
  readonly call: number;
  readonly ret: number;
  readonly revision: number;
  readonly write: boolean;
}

/** The operations with a known revision, as they take part in the checks. */
function revisionOps(ops: readonly KvOp[], resolutions: ReadonlyMap<number, Resolution>): RevOp[] {
  const out: RevOp[] = [];
  for (const op of ops) {
    if (op.status === 'unknown') {
      const r = resolutions.get(op.id);
      if (r?.kind === 'at') out.push({ op, call: op.call, ret: Infinity, revision: r.revision, write: true });
      continue;
    }
    if (op.status !== 'ok' || op.output === undefined) continue;
    const o = op.output;
    switch (o.type) {
      case 'put':
        out.push({ op, call: op.call, ret: op.ret, revision: o.revision, write: true });
        break;
      case 'delete':
        out.push({ op, call: op.call, ret: op.ret, revision: o.revision, write: o.deleted > 0 });
        break;
      case 'txn':
        out.push({ op, call: op.call, ret: op.ret, revision: o.revision, write: o.succeeded });
        break;
      case 'range':
        if (op.input.type === 'range' && !op.input.serializable) out.push({ op, call: op.call, ret: op.ret, revision: o.revision, write: false });
        break;
      case 'leaseGrant':
      case 'leaseRevoke':
        // A revoke may or may not make a revision (it does when keys were attached): read-like.
        out.push({ op, call: op.call, ret: op.ret, revision: o.revision, write: false });
        break;
    }
  }
  return out;
}

/** Options of the revision checks. */
export interface RevisionCheckOptions {
  /** Time origin for reports, ms. */
  readonly origin?: number;
  /** Report at most this many real-time violations (default 20); the rest are counted. */
  readonly maxReports?: number;
}

/** Runs both checks; each anomaly's window is the offending pair. */
export function checkRevisions(ops: readonly KvOp[], resolutions: ReadonlyMap<number, Resolution> = new Map(), options: RevisionCheckOptions = {}): Anomaly[] {
  const origin = options.origin ?? 0;
  const maxReports = options.maxReports ?? 20;
  const rops = revisionOps(ops, resolutions);
  const out: Anomaly[] = [];

  const writers = new Map<number, RevOp[]>();
  for (const r of rops) {
    if (!r.write) continue;
    const l = writers.get(r.revision);
    if (l === undefined) writers.set(r.revision, [r]);
    else l.push(r);
  }
  for (const [rev, l] of writers) {
    if (l.length > 1) {
      out.push({ kind: 'duplicate-revision', message: `${l.length} writes report revision ${rev}`, window: opWindow(l.map((r) => r.op), origin) });
    }
  }

  // Sweep in call order; `best` is the op with the largest revision among those completed before the call.
  const byCall = [...rops].sort((a, b) => a.call - b.call);
  const byRet = rops.filter((r) => r.ret !== Infinity).sort((a, b) => a.ret - b.ret);
  let j = 0;
  let best: RevOp | undefined;
  let violations = 0;
  for (const b of byCall) {
    while (j < byRet.length && byRet[j]!.ret < b.call) {
      const a = byRet[j]!;
      if (best === undefined || a.revision > best.revision) best = a;
      j++;
    }
    if (best === undefined) continue;
    const bad = b.write ? b.revision <= best.revision : b.revision < best.revision;
    if (!bad) continue;
    violations++;
    if (violations <= maxReports) {
      out.push({
        kind: 'revision-order',
        message: `${b.write ? 'a write' : 'a read'} invoked after an operation returned revision ${best.revision} reports revision ${b.revision}${b.write ? ' (a later write must make a larger revision)' : ' (revisions went back in time)'}`,
        window: opWindow([best.op, b.op], origin),
      });
    }
  }
  if (violations > maxReports) {
    out.push({ kind: 'revision-order', message: `${violations - maxReports} more real-time revision violations not listed` });
  }
  return out;
}
