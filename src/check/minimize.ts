/**
 * The smallest failing window of a non-linearizable history.
 *
 * 1. Prefix: the history up to time t keeps every operation invoked by t; those still running at t
 *    become indeterminate (output unknown, may take effect later or never; see `forget`). A
 *    prefix of a linearizable history is linearizable, so failure is monotone in t and a binary
 *    search over completion times finds the earliest t at which the history already fails.
 * 2. Cut: with a model that can start from an unconstrained state, the history from time c keeps
 *    the operations that completed at or after c, drops those that completed before (their effect
 *    is absorbed by the unconstrained start, since they precede every operation invoked after c),
 *    and relaxes those invoked before c. If the history is linearizable, every cut is (from the
 *    state its dropped operations left), so failure is monotone and a binary search finds the
 *    latest cut that still fails.
 * 3. Relaxation: an operation is relaxed by making it optional (it keeps its interval and output
 *    but may also never have taken effect; an operation without effect is simply dropped).
 *    Relaxing only adds behaviours, so if the history still fails, the operations left strict are
 *    a genuine witness: they cannot be linearized even if every other operation may or may not
 *    have happened. The remaining strict operations are tried one at a time.
 *
 * The result is the set of strict operations: typically two to four for a stale read, a lost or
 * duplicated write, or a reordered pair. Every search is exact (no hashing) and bounded; a search
 * that runs out of budget counts as "not failing", which keeps the window sound but maybe larger.
 */
import type { Model, SearchOp } from './search';
import { checkLinearizable } from './search';

/** Options of the minimizer. */
export interface MinimizeOptions<S, O> {
  /**
   * The operation as it appears in a prefix that ends while it runs: normally optional, with no
   * completion and its output forgotten. What is known independently of time (say, from the final
   * history) may be kept, if the prefix stays linearizable whenever the whole history is.
   */
  readonly forget: (op: SearchOp<O>) => SearchOp<O>;
  /** The same model starting from a state that binds to anything (enables step 2). */
  readonly unconstrained?: Model<S, O>;
  /** True for operations without effect on the state (relaxing them drops them). */
  readonly isPure?: (op: O) => boolean;
  /** Step budget of each search (default 300,000). */
  readonly maxStepsPerSearch?: number;
  /** Total step budget (default 30,000,000). */
  readonly maxStepsTotal?: number;
}

/** The minimal window: indexes into the input operations. */
export interface MinimalWindow {
  /** The operations left strict, in call order. */
  readonly core: readonly number[];
  /** The prefix end: the history up to this time already fails. */
  readonly prefixEnd: number;
  /** The cut: the failure needs no operation that completed before this time (-Infinity: none dropped). */
  readonly cut: number;
  /** Operations in the failing prefix. */
  readonly prefixSize: number;
  /** Total search steps spent. */
  readonly steps: number;
}

interface Item<O> {
  readonly sop: SearchOp<O>;
  /** Index into the caller's operations. */
  readonly index: number;
}

/** Finds a minimal failing window of `ops`; undefined when the history is not shown to fail. */
export function minimalWindow<S, O>(model: Model<S, O>, ops: readonly SearchOp<O>[], options: MinimizeOptions<S, O>): MinimalWindow | undefined {
  const per = options.maxStepsPerSearch ?? 300_000;
  let budget = options.maxStepsTotal ?? 30_000_000;
  let spent = 0;
  const fails = (m: Model<S, O>, items: readonly Item<O>[]): boolean => {
    if (budget <= 0) return false;
    const r = checkLinearizable(
      m,
      items.map((it) => it.sop),
      { maxSteps: Math.min(per, budget), exact: true },
    );
    budget -= r.steps;
    spent += r.steps;
    return r.kind === 'fail';
  };
  const isPure = options.isPure ?? ((): boolean => false);
  const relax = (it: Item<O>): Item<O> | undefined => (isPure(it.sop.op) ? undefined : { sop: { ...it.sop, optional: true }, index: it.index });

  // 1. The earliest failing prefix.
  const all: Item<O>[] = ops.map((sop, index) => ({ sop, index }));
  const times = [...new Set(ops.map((o) => o.ret).filter((t) => t !== Infinity))].sort((a, b) => a - b);
  const prefix = (t: number): Item<O>[] => {
    const out: Item<O>[] = [];
    for (const it of all) {
      if (it.sop.call > t) continue;
      out.push(it.sop.ret <= t ? it : { sop: options.forget(it.sop), index: it.index });
    }
    return out;
  };
  let base: Item<O>[];
  let prefixEnd: number;
  if (times.length > 0 && fails(model, prefix(times[times.length - 1]!))) {
    let lo = 0;
    let hi = times.length - 1; // fails at hi
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (fails(model, prefix(times[mid]!))) hi = mid;
      else lo = mid + 1;
    }
    prefixEnd = times[hi]!;
    base = prefix(prefixEnd);
  } else if (fails(model, all)) {
    // Only the operations without a completion time make it fail: keep the whole history.
    prefixEnd = Infinity;
    base = all;
  } else {
    return undefined;
  }

  // 2. The latest cut that still fails from an unconstrained start.
  let current = base;
  let m = model;
  let cut = -Infinity;
  const u = options.unconstrained;
  if (u !== undefined) {
    const cutAt = (c: number): Item<O>[] => {
      const out: Item<O>[] = [];
      for (const it of base) {
        if (it.sop.ret < c) continue;
        if (it.sop.call < c) {
          const r = it.sop.optional ? it : relax(it);
          if (r !== undefined) out.push(r);
        } else {
          out.push(it);
        }
      }
      return out;
    };
    const cuts = [...new Set(base.filter((it) => !it.sop.optional).map((it) => it.sop.call))].sort((a, b) => a - b);
    if (cuts.length > 0 && fails(u, cutAt(cuts[0]!))) {
      let lo = 0; // fails at lo
      let hi = cuts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (fails(u, cutAt(cuts[mid]!))) lo = mid;
        else hi = mid - 1;
      }
      cut = cuts[lo]!;
      current = cutAt(cut);
      m = u;
    }
  }

  // 3. Relax the remaining strict operations one at a time, oldest completion first.
  const order = current
    .filter((it) => !it.sop.optional)
    .sort((a, b) => a.sop.ret - b.sop.ret || a.sop.call - b.sop.call)
    .map((it) => it.index);
  for (const index of order) {
    const trial: Item<O>[] = [];
    for (const it of current) {
      if (it.index !== index) trial.push(it);
      else {
        const r = relax(it);
        if (r !== undefined) trial.push(r);
      }
    }
    if (fails(m, trial)) current = trial;
  }
  const core = current
    .filter((it) => !it.sop.optional)
    .map((it) => it.index)
    .sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
  return { core, prefixEnd, cut, prefixSize: base.length, steps: spent };
}
