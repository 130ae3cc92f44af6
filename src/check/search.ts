/**
 * A linearizability search over any sequential model: the Wing–Gong algorithm with Lowe's
 * memoization, as Knossos and Porcupine implement it.
 *
 * The history becomes a doubly linked list of call and return entries in time order (a call
 * before a return at the same time, so touching operations count as concurrent). The search walks
 * the list from its head: at a call entry it tries to linearize that operation now (the model's
 * step must accept it); on success the operation's two entries are lifted out of the list and the
 * walk restarts at the head. Reaching a return entry means an operation that must have taken
 * effect by then has not: the search backtracks to the last choice. A cache of (set of linearized
 * operations, model state) pairs already explored prunes repeated work.
 *
 * Extensions over the textbook algorithm:
 * - the model's step may return several successor states (an operation whose output is unknown
 *   has several possible effects); each is a separate choice;
 * - an optional operation (an indeterminate one, or one relaxed by the minimizer) may also never
 *   take effect: when the walk reaches its return entry it is removed as a no-op. Placing the
 *   no-op that late loses nothing, since a no-op commutes with everything;
 * - an operation may have no return (`ret` = Infinity): its return entry sits after every other
 *   entry, so it may take effect at any point after its call.
 *
 * Pure and synchronous; the caller bounds the work with `maxSteps`.
 */

/** A sequential specification: the states, and which states may follow an operation. */
export interface Model<S, O> {
  /** The state before any operation. */
  readonly init: S;
  /**
   * The states that may follow applying `op` (with its recorded output) in `state`; empty when
   * the operation cannot take effect there. Must not mutate `state`.
   */
  step(state: S, op: O): readonly S[];
  /** A string equal for two states exactly when they are equal (the memoization key). */
  stateKey(state: S): string;
  /**
   * Optional pruning by a monotone progress measure. `of(state)` never decreases along a step,
   * and an operation with `limit(op)` = L can only be linearized in a state whose measure is ≤ L
   * (undefined: no limit). A step whose successor's measure exceeds the limit of some required
   * operation not yet linearized is then a dead end, and the search skips it at once. For etcd's
   * KV the measure is the revision floor and the limit comes from each operation's revision.
   */
  readonly progress?: {
    of(state: S): number;
    limit(op: O): number | undefined;
  };
}

/** Minimum over a fixed array of slots with point updates (a segment tree). */
class MinTree {
  private readonly size: number;
  private readonly t: Float64Array;

  constructor(n: number) {
    let size = 1;
    while (size < Math.max(1, n)) size *= 2;
    this.size = size;
    this.t = new Float64Array(2 * size).fill(Infinity);
  }

  set(i: number, v: number): void {
    let p = i + this.size;
    this.t[p] = v;
    for (p >>= 1; p >= 1; p >>= 1) this.t[p] = Math.min(this.t[2 * p]!, this.t[2 * p + 1]!);
  }

  min(): number {
    return this.t[1]!;
  }
}

/** One operation of a history to search, with its real-time interval. */
export interface SearchOp<O> {
  readonly op: O;
  /** Invocation time. */
  readonly call: number;
  /** Completion time, ≥ call; Infinity for "took effect at some point after its call". */
  readonly ret: number;
  /** True when the operation may never have taken effect. */
  readonly optional: boolean;
}

/** Limits of one search. */
export interface SearchOptions {
  /** Give up after this many steps (default 5,000,000). */
  readonly maxSteps?: number;
  /**
   * Keep exact sets of linearized operations in the cache instead of a 64-bit hash of them.
   * Exact mode costs memory proportional to history length per cached configuration; hashed
   * mode could in principle prune a branch on a collision (probability about n²/2⁶⁴).
   */
  readonly exact?: boolean;
  /** Varies the hashes of hashed mode (a failure can be confirmed with another salt). */
  readonly salt?: number;
}

/** The outcome of a search. */
export type SearchResult =
  /** `order`: indexes of the operations that took effect, in linearization order. */
  | { readonly kind: 'ok'; readonly order: readonly number[]; readonly steps: number }
  /**
   * No linearization exists. `deepest` is the largest number of operations linearized on any
   * branch and `stuck` the operation whose completion could not be reached at that depth.
   */
  | { readonly kind: 'fail'; readonly deepest: number; readonly stuck: number; readonly steps: number }
  /** The step budget ran out. */
  | { readonly kind: 'timeout'; readonly steps: number };

interface Entry {
  readonly id: number;
  readonly isCall: boolean;
  readonly time: number;
  /** For a call entry, its return entry; for a return entry, its call entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface Frame<S> {
  /** The call entry of the operation linearized by this choice. */
  readonly entry: Entry;
  /** The state before the choice. */
  readonly before: S;
  /** Successor states offered by the step; the next one to try is alts[nextAlt]. */
  readonly alts: readonly S[];
  nextAlt: number;
  /** True when the choice was "never took effect" (taken at the return entry; no alternative). */
  readonly noop: boolean;
}

/** splitmix32: a well-mixed 32-bit value for `x`. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Searches for a linearization of `ops` under `model`. */
export function checkLinearizable<S, O>(model: Model<S, O>, ops: readonly SearchOp<O>[], options: SearchOptions = {}): SearchResult {
  const maxSteps = options.maxSteps ?? 5_000_000;
  const exact = options.exact === true;
  const n = ops.length;

  // Entries in time order; calls before returns at equal times; Infinity returns last.
  const entries: Entry[] = [];
  const calls: Entry[] = new Array<Entry>(n);
  for (let id = 0; id < n; id++) {
    const o = ops[id]!;
    if (!(o.ret >= o.call)) throw new Error(`operation ${id} returns before its call`);
    const c: Entry = { id, isCall: true, time: o.call, match: null, prev: null, next: null };
    const r: Entry = { id, isCall: false, time: o.ret, match: c, prev: null, next: null };
    c.match = r;
    calls[id] = c;
    entries.push(c, r);
  }
  entries.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.id - b.id;
  });
  const head: Entry = { id: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const e of entries) {
    e.prev = last;
    last.next = e;
    last = e;
  }

  const lift = (e: Entry): void => {
    e.prev!.next = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    const m = e.match!;
    m.prev!.next = m.next;
    if (m.next !== null) m.next.prev = m.prev;
  };
  const unlift = (e: Entry): void => {
    const m = e.match!;
    m.prev!.next = m;
    if (m.next !== null) m.next.prev = m;
    e.prev!.next = e;
    if (e.next !== null) e.next.prev = e;
  };

  // The set of linearized operations: a bitset (exact mode) or two Zobrist hashes plus a count.
  const words = new Uint32Array(Math.ceil(n / 32));
  let h1 = 0;
  let h2 = 0;
  let count = 0;
  const salt = mix32(options.salt ?? 0);
  const flip = (id: number): void => {
    words[id >>> 5]! ^= 1 << (id & 31);
    h1 ^= mix32((2 * id + 1) ^ salt);
    h2 ^= mix32((2 * id + 2 + 0x5bd1e995) ^ salt);
  };
  const set = (id: number): void => {
    flip(id);
    count++;
  };
  const clear = (id: number): void => {
    flip(id);
    count--;
  };
  const configKey = (state: S): string => {
    const sk = model.stateKey(state);
    if (!exact) return `${h1.toString(36)}.${h2.toString(36)}.${count}|${sk}`;
    let bits = '';
    for (let i = 0; i < words.length; i++) bits += words[i]!.toString(36) + ',';
    return `${bits}|${sk}`;
  };
  const cache = new Set<string>();

  // Limits of the required operations not yet linearized (pruning, when the model has a measure).
  const progress = model.progress;
  const limits = new Float64Array(n).fill(Infinity);
  const tree = new MinTree(progress === undefined ? 0 : n);
  if (progress !== undefined) {
    for (let id = 0; id < n; id++) {
      const o = ops[id]!;
      if (o.optional) continue;
      const l = progress.limit(o.op);
      if (l !== undefined) {
        limits[id] = l;
        tree.set(id, l);
      }
    }
  }
  /** Marks an operation linearized (true) or not (false) in the limit tree. */
  const mark = (id: number, done: boolean): void => {
    if (progress !== undefined && limits[id] !== Infinity) tree.set(id, done ? Infinity : limits[id]!);
  };

  const stack: Frame<S>[] = [];
  let state = model.init;
  let steps = 0;
  let deepest = 0;
  let stuck = -1;

  /** Tries alts[from..] for the call entry `e`; takes the first whose configuration is new. */
  const tryAlternatives = (e: Entry, before: S, alts: readonly S[], from: number): boolean => {
    mark(e.id, true);
    const bound = progress === undefined ? Infinity : tree.min();
    for (let i = from; i < alts.length; i++) {
      const next = alts[i]!;
      if (progress !== undefined && progress.of(next) > bound) continue;
      set(e.id);
      const key = configKey(next);
      if (!cache.has(key)) {
        cache.add(key);
        stack.push({ entry: e, before, alts, nextAlt: i + 1, noop: false });
        state = next;
        lift(e);
        return true;
      }
      clear(e.id);
    }
    mark(e.id, false);
    return false;
  };

  let entry: Entry | null = head.next;
  while (head.next !== null) {
    if (++steps > maxSteps) return { kind: 'timeout', steps };
    if (entry === null) throw new Error('linearizability search ran past the end of the history');
    if (entry.isCall) {
      const alts = model.step(state, ops[entry.id]!.op);
      if (alts.length > 0 && tryAlternatives(entry, state, alts, 0)) {
        entry = head.next;
      } else {
        entry = entry.next;
      }
      continue;
    }

    // A return entry: its operation has not been linearized yet.
    if (stack.length >= deepest) {
      deepest = stack.length;
      stuck = entry.id;
    }
    if (ops[entry.id]!.optional) {
      const c = entry.match!;
      set(c.id);
      const key = configKey(state);
      if (!cache.has(key)) {
        cache.add(key);
        stack.push({ entry: c, before: state, alts: [], nextAlt: 0, noop: true });
        lift(c);
        entry = head.next;
        continue;
      }
      clear(c.id);
    }

    // Backtrack to the most recent choice that has an untried alternative.
    let resumed = false;
    while (!resumed) {
      const f = stack.pop();
      if (f === undefined) return { kind: 'fail', deepest, stuck, steps };
      state = f.before;
      clear(f.entry.id);
      mark(f.entry.id, false);
      unlift(f.entry);
      if (f.noop) continue;
      if (tryAlternatives(f.entry, f.before, f.alts, f.nextAlt)) {
        entry = head.next;
      } else {
        entry = f.entry.next;
      }
      resumed = true;
    }
  }
  const order: number[] = [];
  for (const f of stack) if (!f.noop) order.push(f.entry.id);
  return { kind: 'ok', order, steps };
}
