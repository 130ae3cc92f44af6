/**
 * What the checkers report: an anomaly, with the smallest window of operations (or watch
 * responses) that shows it.
 */
import type { KvOp } from './history';
import { describeOp } from './history';

/** The kinds of anomaly the checkers report. */
export type AnomalyKind =
  /** No linearization of one key's operations exists (window: the minimal failing set). */
  | 'nonlinearizable'
  /** Two acknowledged writes report the same revision. */
  | 'duplicate-revision'
  /** A revision disagrees with real time: an operation saw or made a revision older than one already returned. */
  | 'revision-order'
  /** An acknowledged write is missing from the final history or state. */
  | 'lost-write'
  /** One value was written at two revisions. */
  | 'duplicate-write'
  /** The final history holds a write no operation made. */
  | 'phantom-write'
  /** A read differs from the final history's state at its revision. */
  | 'read-mismatch'
  /** A serializable read is not the state of any prefix of the final history at its revision. */
  | 'serializable-read'
  /** The final history itself is malformed (gaps, empty revisions). */
  | 'event-history'
  /** Members disagree on the data at one revision. */
  | 'divergence'
  /** A watch broke a guarantee (ordered, unique, atomic, reliable, resumable, prev_kv, create, progress). */
  | 'watch';

/** One operation of a window, for reports. */
export interface WindowOp {
  readonly id: number;
  readonly process: number;
  /** Invocation time, ms. */
  readonly call: number;
  /** Completion time, ms; null for an operation whose outcome is unknown. */
  readonly ret: number | null;
  readonly text: string;
}

/** One anomaly. */
export interface Anomaly {
  readonly kind: AnomalyKind;
  readonly message: string;
  readonly key?: string;
  /** The smallest set of operations that shows the anomaly, in call order. */
  readonly window?: readonly WindowOp[];
  /** For watch anomalies: which watcher and session. */
  readonly watch?: { readonly watcher: number; readonly session: number };
}

/** The window entries for `ops` (sorted by call time). */
export function opWindow(ops: readonly KvOp[], origin = 0): WindowOp[] {
  return [...ops]
    .sort((a, b) => a.call - b.call || a.id - b.id)
    .map((op) => ({ id: op.id, process: op.process, call: op.call, ret: op.status === 'unknown' ? null : op.ret, text: describeOp(op, origin) }));
}

/** A multi-line text form of an anomaly. */
export function formatAnomaly(a: Anomaly): string {
  const lines = [`[${a.kind}]${a.key !== undefined ? ` key ${a.key}` : ''}${a.watch !== undefined ? ` watcher ${a.watch.watcher} session ${a.watch.session}` : ''}: ${a.message}`];
  for (const w of a.window ?? []) lines.push(`    ${w.text}`);
  return lines.join('\n');
}
