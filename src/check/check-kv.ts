/**
 * The whole KV check of a history: revision-coupled properties, per-key linearizability (with the
 * smallest failing window for every key that fails), and, when the final event history is known,
 * the resolution of indeterminate operations and the checks against that history.
 */
import type { Anomaly } from './anomaly';
import { opWindow } from './anomaly';
import { checkAgainstEvents, checkEventHistory, resolveIndeterminate } from './events';
import type { KvOp, RevisionEvents } from './history';
import type { KeyOp } from './kv-model';
import { isPureKeyOp, keyModel, unknownKeyState } from './kv-model';
import { minimalWindow } from './minimize';
import type { Resolution } from './partition';
import { partitionByKey } from './partition';
import { checkRevisions } from './revisions';
import type { SearchOp } from './search';
import { checkLinearizable } from './search';

/** Options of the KV check. */
export interface KvCheckOptions {
  /** The final event history; enables resolution of indeterminate operations and the event checks. */
  readonly events?: readonly RevisionEvents[];
  /**
   * The leases that exist at the end of the history; with the event history, resolves
   * indeterminate grants and revokes. Only valid when lease ids are never reused and no lease
   * expires within the history.
   */
  readonly finalLeases?: ReadonlySet<string>;
  /** Keys under check in the event history (default: every key the history's operations name). */
  readonly isChecked?: (key: string) => boolean;
  /** Time origin for reports, ms. */
  readonly origin?: number;
  /** Step budget of each per-key search (default 20,000,000). */
  readonly maxSteps?: number;
  /** Find the smallest failing window of failing keys (default true). */
  readonly minimize?: boolean;
}

/** The outcome for one key. */
export interface KeyResult {
  readonly key: string;
  readonly ops: number;
  readonly result: 'ok' | 'fail' | 'timeout';
  readonly steps: number;
}

/** The outcome of the KV check. */
export interface KvCheckResult {
  readonly anomalies: Anomaly[];
  readonly keys: readonly KeyResult[];
  /** Operations in the history, and how they ended. */
  readonly ops: { readonly total: number; readonly ok: number; readonly fail: number; readonly unknown: number };
  /** Indeterminate operations resolved from the final history. */
  readonly resolved: { readonly at: number; readonly happened: number; readonly never: number; readonly candidates: number; readonly open: number };
  /** Keys whose search ran out of budget (neither proven nor refuted). */
  readonly inconclusive: readonly string[];
}

/**
 * A key operation as it appears in a prefix that ends while it runs: optional, with its output
 * forgotten. An indeterminate put without a lease that the final history places at revision r
 * stays required at r: a put depends only on the revision floor, which fewer operations can only
 * lower, so the prefix stays linearizable whenever the whole history is.
 */
function forgetKeyOp(s: SearchOp<KeyOp>): SearchOp<KeyOp> {
  const op = s.op;
  if (!s.optional && !op.known && op.kind === 'put' && op.revision !== undefined && (op.lease ?? '0') === '0') return s;
  const { source, kind, value, lease, compare } = op;
  const forgotten: KeyOp = {
    source,
    kind,
    known: false,
    ...(value !== undefined ? { value } : {}),
    ...(lease !== undefined ? { lease } : {}),
    ...(compare !== undefined ? { compare } : {}),
  };
  return { op: forgotten, call: s.call, ret: Infinity, optional: true };
}

/** Runs every KV check on `ops`. */
export function checkKvHistory(ops: readonly KvOp[], options: KvCheckOptions = {}): KvCheckResult {
  const origin = options.origin ?? 0;
  const anomalies: Anomaly[] = [];
  const byId = new Map<number, KvOp>();
  for (const op of ops) byId.set(op.id, op);

  let resolutions: Map<number, Resolution> = new Map();
  if (options.events !== undefined) {
    resolutions = resolveIndeterminate(ops, options.events, options.finalLeases);
    for (const a of checkEventHistory(options.events)) anomalies.push(a);
  }
  const resolved = { at: 0, happened: 0, never: 0, candidates: 0, open: 0 };
  for (const op of ops) {
    if (op.status !== 'unknown') continue;
    const r = resolutions.get(op.id);
    if (r === undefined) resolved.open++;
    else resolved[r.kind]++;
  }

  for (const a of checkRevisions(ops, resolutions, { origin })) anomalies.push(a);

  const keys: KeyResult[] = [];
  const inconclusive: string[] = [];
  const model = keyModel();
  for (const [key, h] of [...partitionByKey(ops, resolutions)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let r = checkLinearizable(model, h.ops, { maxSteps: options.maxSteps ?? 20_000_000 });
    // A failure in hashed mode is confirmed with other hashes (rules out a collision).
    if (r.kind === 'fail') r = checkLinearizable(model, h.ops, { maxSteps: options.maxSteps ?? 20_000_000, salt: 1 });
    keys.push({ key, ops: h.ops.length, result: r.kind, steps: r.steps });
    if (r.kind === 'timeout') {
      inconclusive.push(key);
      continue;
    }
    if (r.kind === 'ok') continue;
    let windowOps: KvOp[] = [];
    let note = '';
    if (options.minimize !== false) {
      const w = minimalWindow(model, h.ops, { forget: forgetKeyOp, unconstrained: keyModel(unknownKeyState()), isPure: isPureKeyOp });
      if (w !== undefined) {
        windowOps = [...new Set(w.core.map((i) => h.ops[i]!.op.source))].map((id) => byId.get(id)!);
        const from = w.cut === -Infinity ? 'from the initial state' : `from any state at ${((w.cut - origin) / 1000).toFixed(3)}s`;
        const by = w.prefixEnd === Infinity ? 'the failure needs an operation that never completed' : `the history already fails by ${((w.prefixEnd - origin) / 1000).toFixed(3)}s`;
        note = ` (${by}; these ${w.core.length} of its ${w.prefixSize} operations cannot be linearized ${from}, even if every other operation may or may not have taken effect)`;
      } else {
        note = ' (the minimizer ran out of budget; showing the operation the search got stuck at)';
      }
    }
    if (windowOps.length === 0) {
      const stuck = h.ops[r.stuck];
      if (stuck !== undefined) windowOps = [byId.get(stuck.op.source)!];
    }
    anomalies.push({ kind: 'nonlinearizable', key, message: `no linearization of the ${h.ops.length} operations on ${key}${note}`, window: opWindow(windowOps, origin) });
  }

  if (options.events !== undefined) {
    const names = new Set<string>();
    for (const op of ops) if ('key' in op.input) names.add(op.input.key);
    const isChecked = options.isChecked ?? ((k: string): boolean => names.has(k));
    // A loop, not a spread: a broken run can yield more anomalies than a call has argument slots.
    for (const a of checkAgainstEvents(ops, options.events, { isChecked, origin })) anomalies.push(a);
  }

  let ok = 0;
  let fail = 0;
  let unknown = 0;
  for (const op of ops) {
    if (op.status === 'ok') ok++;
    else if (op.status === 'fail') fail++;
    else unknown++;
  }
  return { anomalies, keys, ops: { total: ops.length, ok, fail, unknown }, resolved, inconclusive };
}
