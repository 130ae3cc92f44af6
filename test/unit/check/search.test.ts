import { checkLinearizable } from '../../../src/check/search';
import type { Model, SearchOp } from '../../../src/check/search';
import { minimalWindow } from '../../../src/check/minimize';

/** A read/write register of numbers; a write may also report nothing. */
type RegOp = { kind: 'w'; v: number } | { kind: 'r'; v: number } | { kind: 'r?' } | { kind: 'cas'; from: number; to: number; ok: boolean };

const register: Model<number, RegOp> = {
  init: 0,
  step(s, op) {
    switch (op.kind) {
      case 'w':
        return [op.v];
      case 'r':
        return s === op.v ? [s] : [];
      case 'r?':
        return [s];
      case 'cas':
        if (op.ok) return s === op.from ? [op.to] : [];
        return s !== op.from ? [s] : [];
    }
  },
  stateKey: (s) => String(s),
};

const op = (o: RegOp, call: number, ret: number, optional = false): SearchOp<RegOp> => ({ op: o, call, ret, optional });

describe('Wing–Gong/Lowe search on a register', () => {
  test('a sequential history is linearizable in its own order', () => {
    const h = [op({ kind: 'w', v: 1 }, 0, 1), op({ kind: 'r', v: 1 }, 2, 3), op({ kind: 'w', v: 2 }, 4, 5), op({ kind: 'r', v: 2 }, 6, 7)];
    const r = checkLinearizable(register, h);
    expect(r.kind).toBe('ok');
    if (r.kind === 'ok') expect(r.order).toEqual([0, 1, 2, 3]);
  });

  test('a read concurrent with a write may see either value', () => {
    for (const seen of [0, 1]) {
      const h = [op({ kind: 'w', v: 1 }, 0, 10), op({ kind: 'r', v: seen }, 2, 5)];
      expect(checkLinearizable(register, h).kind).toBe('ok');
    }
  });

  test('a stale read after a completed write is not linearizable', () => {
    const h = [op({ kind: 'w', v: 1 }, 0, 1), op({ kind: 'r', v: 0 }, 2, 3)];
    const r = checkLinearizable(register, h);
    expect(r.kind).toBe('fail');
    if (r.kind === 'fail') expect(r.stuck).toBe(1);
  });

  test('reads must agree on one order of concurrent writes', () => {
    // w1 and w2 concurrent; one reader sees 1 then 2, another sees 2 then 1, all after both writes.
    const h = [
      op({ kind: 'w', v: 1 }, 0, 10),
      op({ kind: 'w', v: 2 }, 0, 10),
      op({ kind: 'r', v: 1 }, 1, 9),
      op({ kind: 'r', v: 2 }, 11, 12),
      op({ kind: 'r', v: 1 }, 13, 14),
    ];
    expect(checkLinearizable(register, h).kind).toBe('fail');
    // Without the last read it is fine.
    expect(checkLinearizable(register, h.slice(0, 4)).kind).toBe('ok');
  });

  test('an optional operation may take effect late or never', () => {
    const late = [op({ kind: 'w', v: 7 }, 0, Infinity, true), op({ kind: 'r', v: 0 }, 5, 6), op({ kind: 'r', v: 7 }, 10, 11)];
    expect(checkLinearizable(register, late).kind).toBe('ok');
    const never = [op({ kind: 'w', v: 7 }, 0, Infinity, true), op({ kind: 'r', v: 0 }, 5, 6), op({ kind: 'r', v: 0 }, 10, 11)];
    expect(checkLinearizable(register, never).kind).toBe('ok');
    // But once seen, it cannot be undone.
    const flicker = [op({ kind: 'w', v: 7 }, 0, Infinity, true), op({ kind: 'r', v: 7 }, 5, 6), op({ kind: 'r', v: 0 }, 10, 11)];
    expect(checkLinearizable(register, flicker).kind).toBe('fail');
    // A required operation without a completion must take effect at some point after its call.
    const cas = (optional: boolean): SearchOp<RegOp>[] => [op({ kind: 'w', v: 1 }, 0, 1), op({ kind: 'cas', from: 0, to: 5, ok: true }, 10, Infinity, optional), op({ kind: 'r', v: 1 }, 20, 21)];
    expect(checkLinearizable(register, cas(true)).kind).toBe('ok');
    expect(checkLinearizable(register, cas(false)).kind).toBe('fail');
  });

  test('an optional operation with a completion time must take effect by then or never', () => {
    const h = [op({ kind: 'w', v: 3 }, 0, 2, true), op({ kind: 'r', v: 0 }, 5, 6), op({ kind: 'r', v: 3 }, 7, 8)];
    expect(checkLinearizable(register, h).kind).toBe('fail');
  });

  test('a model with several successors is searched over all of them', () => {
    // "w?" may write 1 or 2.
    type Op2 = { kind: 'w?' } | { kind: 'r'; v: number };
    const m: Model<number, Op2> = {
      init: 0,
      step: (s, o) => (o.kind === 'w?' ? [1, 2] : s === o.v ? [s] : []),
      stateKey: String,
    };
    const h: SearchOp<Op2>[] = [
      { op: { kind: 'w?' }, call: 0, ret: 1, optional: false },
      { op: { kind: 'r', v: 2 }, call: 2, ret: 3, optional: false },
    ];
    expect(checkLinearizable(m, h).kind).toBe('ok');
    const bad: SearchOp<Op2>[] = [h[0]!, { op: { kind: 'r', v: 3 }, call: 2, ret: 3, optional: false }];
    expect(checkLinearizable(m, bad).kind).toBe('fail');
  });

  test('exact and hashed caches agree, and the step budget is honoured', () => {
    const h: SearchOp<RegOp>[] = [];
    for (let i = 0; i < 12; i++) h.push(op({ kind: 'w', v: i + 1 }, 0, 100));
    h.push(op({ kind: 'r', v: 99 }, 101, 102));
    expect(checkLinearizable(register, h).kind).toBe('fail');
    expect(checkLinearizable(register, h, { exact: true }).kind).toBe('fail');
    expect(checkLinearizable(register, h, { maxSteps: 50 }).kind).toBe('timeout');
  });

  test('the minimizer finds the stale read and the write it missed', () => {
    const h: SearchOp<RegOp>[] = [];
    let t = 0;
    for (let i = 1; i <= 30; i++) {
      h.push(op({ kind: 'w', v: i }, t, t + 3));
      h.push(op({ kind: 'r', v: i }, t + 4, t + 6));
      t += 10;
      if (i === 17) {
        h.push(op({ kind: 'r', v: 16 }, t, t + 2)); // stale
        t += 10;
      }
    }
    expect(checkLinearizable(register, h).kind).toBe('fail');
    const w = minimalWindow(register, h, { forget: (o) => ({ op: o.op.kind === 'r' ? ({ kind: 'r?' } as RegOp) : o.op, call: o.call, ret: Infinity, optional: true }) });
    expect(w).toBeDefined();
    const core = w!.core.map((i) => h[i]!.op);
    expect(core).toContainEqual({ kind: 'r', v: 16 });
    expect(core.length).toBeLessThanOrEqual(3);
    // The prefix ends at the stale read's completion.
    expect(w!.prefixEnd).toBe(h.find((o) => o.op.kind === 'r' && o.op.v === 16 && o.call > 160)!.ret);
  });
});
