import * as fc from 'fast-check';
import { decodeConfChange, encodeConfChange } from '../../../src/raft/confchange/codec';
import { CompactedError, DecodeError, InvariantError, SnapshotOutOfDateError, UnavailableError } from '../../../src/raft/errors';
import { MemoryStorage } from '../../../src/raft/memory-storage';
import { decodeMessage, encodeMessage } from '../../../src/raft/message-codec';
import { committedIndex, voteResult } from '../../../src/raft/quorum/majority';
import { RaftLog } from '../../../src/raft/raft-log';
import { SeededRng } from '../../../src/raft/rng';
import { Inflights } from '../../../src/raft/tracker/inflights';
import { Progress } from '../../../src/raft/tracker/progress';
import { EntryType, MessageType, NONE } from '../../../src/raft/types';
import type { Entry, Message, NodeId } from '../../../src/raft/types';
import { bytes, id } from './harness';

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: bytes(data) };
}

function ents(...pairs: [number, number][]): Entry[] {
  return pairs.map(([i, t]) => ent(i, t));
}

describe('MemoryStorage', () => {
  function filled(): MemoryStorage {
    const s = new MemoryStorage();
    s.applySnapshot({ meta: { index: 3, term: 3, confState: { voters: [id(1)], learners: [] } }, data: bytes('') });
    s.append(ents([4, 4], [5, 5], [6, 6]));
    return s;
  }

  test('term, firstIndex, lastIndex around the snapshot', () => {
    const s = filled();
    expect(s.firstIndex()).toBe(4);
    expect(s.lastIndex()).toBe(6);
    expect(s.term(3)).toBe(3);
    expect(s.term(5)).toBe(5);
    expect(() => s.term(2)).toThrow(CompactedError);
    expect(() => s.term(7)).toThrow(UnavailableError);
  });

  test('entries respects bounds and size limits (at least one entry)', () => {
    const s = filled();
    expect(() => s.entries(3, 5)).toThrow(CompactedError);
    expect(() => s.entries(4, 8)).toThrow(InvariantError);
    expect(s.entries(4, 7).map((e) => e.index)).toEqual([4, 5, 6]);
    expect(s.entries(4, 7, 0).map((e) => e.index)).toEqual([4]);
    expect(s.entries(4, 7, 33).map((e) => e.index)).toEqual([4, 5]);
  });

  test('append overwrites a conflicting tail and refuses gaps', () => {
    const s = filled();
    s.append(ents([5, 7], [6, 7], [7, 7]));
    expect([s.term(4), s.term(5), s.term(7)]).toEqual([4, 7, 7]);
    expect(() => s.append(ents([9, 7]))).toThrow(InvariantError);
    // entries below the snapshot are skipped
    s.append(ents([2, 1], [3, 3], [4, 4]));
    expect(s.lastIndex()).toBe(4);
  });

  test('compact keeps the compacted position as the placeholder', () => {
    const s = filled();
    s.compact(5);
    expect(s.firstIndex()).toBe(6);
    expect(s.term(5)).toBe(5);
    expect(() => s.compact(5)).toThrow(CompactedError);
    expect(() => s.compact(9)).toThrow(InvariantError);
  });

  test('createSnapshot and applySnapshot refuse stale snapshots', () => {
    const s = filled();
    const snap = s.createSnapshot(5, { voters: [id(1), id(2)], learners: [] }, bytes('d'));
    expect(snap.meta).toEqual({ index: 5, term: 5, confState: { voters: [id(1), id(2)], learners: [] } });
    expect(() => s.createSnapshot(4, { voters: [], learners: [] }, bytes(''))).toThrow(SnapshotOutOfDateError);
    expect(() => s.applySnapshot(snap)).toThrow(SnapshotOutOfDateError);
    expect(s.initialState().confState.voters).toEqual([id(1), id(2)]);
  });
});

describe('RaftLog', () => {
  function log(): RaftLog {
    const s = new MemoryStorage();
    s.append(ents([1, 1], [2, 2], [3, 2]));
    const l = new RaftLog(s, Number.POSITIVE_INFINITY);
    l.append(ents([4, 3], [5, 3]));
    return l;
  }

  test('reads across stable and unstable parts', () => {
    const l = log();
    expect(l.lastIndex()).toBe(5);
    expect(l.slice(2, 6, Number.POSITIVE_INFINITY).map((e) => e.index)).toEqual([2, 3, 4, 5]);
    expect(l.term(4)).toBe(3);
    expect(l.term(9)).toBe(0);
  });

  test('maybeAppend: mismatch, duplicate, conflict', () => {
    const l = log();
    expect(l.maybeAppend(5, 2, 5, [])).toBe(-1);
    expect(l.maybeAppend(3, 2, 3, ents([4, 3]))).toBe(4);
    expect(l.lastIndex()).toBe(5); // nothing truncated by a duplicate
    expect(l.committed).toBe(3);
    expect(l.maybeAppend(3, 2, 10, ents([4, 4]))).toBe(4);
    expect(l.lastIndex()).toBe(4);
    expect(l.committed).toBe(4);
    expect(() => l.maybeAppend(1, 1, 4, ents([2, 9]))).toThrow(InvariantError);
  });

  test('findConflictByTerm walks back over higher terms', () => {
    const l = log();
    expect(l.findConflictByTerm(5, 2)).toBe(3);
    expect(l.findConflictByTerm(5, 3)).toBe(5);
    expect(l.findConflictByTerm(5, 0)).toBe(0);
  });

  test('isUpToDate compares last term, then length', () => {
    const l = log();
    expect(l.isUpToDate(5, 3)).toBe(true);
    expect(l.isUpToDate(4, 3)).toBe(false);
    expect(l.isUpToDate(1, 4)).toBe(true);
  });

  test('maybeCommit only commits entries of the given term', () => {
    const l = log();
    expect(l.maybeCommit(3, 3)).toBe(false);
    expect(l.maybeCommit(5, 3)).toBe(true);
    expect(l.committed).toBe(5);
  });

  test('stableTo ignores an entry replaced since', () => {
    const l = log();
    l.append(ents([5, 4]));
    l.stableTo(5, 3);
    expect(l.unstable.entries.map((e) => e.index)).toEqual([4, 5]);
    l.stableTo(5, 4);
    expect(l.unstable.entries).toHaveLength(0);
  });
});

describe('quorum math', () => {
  const ids = (n: number): Set<NodeId> => new Set(Array.from({ length: n }, (_, i) => id(i + 1)));

  test('committedIndex is the largest index held by a majority (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(1000), { minLength: 1, maxLength: 9 }), (matches) => {
        const voters = ids(matches.length);
        const got = committedIndex(voters, (v) => matches[Number(v) - 1]);
        const q = Math.floor(matches.length / 2) + 1;
        const atLeast = (x: number): number => matches.filter((m) => m >= x).length;
        expect(atLeast(got)).toBeGreaterThanOrEqual(q);
        expect(atLeast(got + 1)).toBeLessThan(q);
      }),
    );
  });

  test('voteResult: won, lost, pending (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(true, false, undefined), { minLength: 1, maxLength: 9 }), (votes) => {
        const voters = ids(votes.length);
        const r = voteResult(voters, (v) => votes[Number(v) - 1]);
        const q = Math.floor(votes.length / 2) + 1;
        const yes = votes.filter((v) => v === true).length;
        const no = votes.filter((v) => v === false).length;
        expect(r).toBe(yes >= q ? 'won' : votes.length - no >= q ? 'pending' : 'lost');
      }),
    );
  });

  test('empty voter set', () => {
    expect(committedIndex(new Set(), () => 0)).toBe(Number.MAX_SAFE_INTEGER);
    expect(voteResult(new Set(), () => undefined)).toBe('won');
  });
});

describe('tracker', () => {
  test('inflights are bounded by count and bytes, freed in order', () => {
    const inf = new Inflights(3, 100);
    inf.add(1, 10);
    inf.add(2, 10);
    expect(inf.full()).toBe(false);
    inf.add(3, 10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(4, 1)).toThrow(InvariantError);
    inf.freeLE(2);
    expect(inf.count).toBe(1);
    inf.add(4, 95);
    expect(inf.full()).toBe(true); // 105 bytes ≥ 100
    inf.freeFirstOne();
    expect(inf.count).toBe(1);
    expect(inf.bytes).toBe(95);
    // wrap around the ring many times
    const ring = new Inflights(5, 0);
    for (let i = 1; i <= 100; i++) {
      ring.add(i, 1);
      if (i % 2 === 0) ring.freeLE(i - 1);
    }
    expect(ring.count).toBeLessThanOrEqual(5);
  });

  test('progress: probe pauses, replicate pipelines, stale rejections are ignored', () => {
    const pr = new Progress({ match: 0, next: 5, maxInflight: 2, maxInflightBytes: 0, isLearner: false, recentActive: true });
    expect(pr.isPaused()).toBe(false);
    pr.updateOnEntriesSend(1, 1, 5);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeDecrTo(3, 3)).toBe(false); // stale: we probed at 4
    expect(pr.maybeDecrTo(4, 1)).toBe(true);
    expect(pr.next).toBe(2);
    expect(pr.maybeUpdate(3)).toBe(true);
    pr.becomeReplicate();
    expect(pr.next).toBe(4);
    pr.updateOnEntriesSend(2, 2, 4);
    pr.updateOnEntriesSend(2, 2, 6);
    expect(pr.next).toBe(8);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeDecrTo(2, 2)).toBe(false); // ≤ match: stale
    expect(pr.maybeDecrTo(6, 5)).toBe(true);
    expect(pr.next).toBe(4);
  });
});

describe('codecs', () => {
  test('conf change round trip', () => {
    const cc = { type: 'add-learner' as const, nodeId: id(0xfedcba9876543210), context: bytes('peer urls') };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(decodeConfChange(encodeConfChange({ type: 'remove-node', nodeId: id(7) }))).toEqual({
      type: 'remove-node',
      nodeId: id(7),
    });
    expect(() => decodeConfChange(new Uint8Array([1, 9, 0, 0, 0, 0, 0, 0, 0, 1]))).toThrow(DecodeError);
  });

  const arbId = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((b) => b as NodeId);
  const arbNum = fc.oneof(fc.nat(1000), fc.maxSafeNat());
  const arbBytes = fc.uint8Array({ maxLength: 40 });
  const arbEntry = fc.record({
    term: arbNum,
    index: arbNum,
    type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
    data: arbBytes,
  });
  const arbMsg: fc.Arbitrary<Message> = fc
    .record({
      type: fc.integer({ min: 0, max: 18 }).map((t) => t as MessageType),
      from: arbId,
      to: arbId,
      term: arbNum,
      logTerm: arbNum,
      index: arbNum,
      entries: fc.array(arbEntry, { maxLength: 4 }),
      commit: arbNum,
      reject: fc.boolean(),
      rejectHint: arbNum,
      snapshot: fc.option(
        fc.record({
          meta: fc.record({
            index: arbNum,
            term: arbNum,
            confState: fc.record({ voters: fc.array(arbId, { maxLength: 3 }), learners: fc.array(arbId, { maxLength: 3 }) }),
          }),
          data: arbBytes,
        }),
        { nil: undefined },
      ),
      context: fc.option(arbBytes, { nil: undefined }),
    })
    .map((m) => {
      const out: Message = { ...m };
      if (out.snapshot === undefined) delete out.snapshot;
      if (out.context === undefined) delete out.context;
      return out;
    });

  test('message round trip (property)', () => {
    fc.assert(
      fc.property(arbMsg, (m) => {
        // Decoded byte fields are views of the input, so decode a plain Uint8Array copy to compare
        // them with the Uint8Arrays of `m`.
        const back = decodeMessage(new Uint8Array(encodeMessage(m)));
        expect(back).toEqual(m);
      }),
    );
  });

  test('each encoding is its own copy: a later encoding does not change an earlier one', () => {
    const a: Message = { type: MessageType.MsgApp, from: id(1), to: id(2), term: 3, logTerm: 2, index: 10, entries: [ent(11, 3, 'first')], commit: 9, reject: false, rejectHint: 0 };
    const b: Message = { ...a, from: id(7), entries: [ent(11, 3, 'second, longer')] };
    const ea = encodeMessage(a);
    const copy = Uint8Array.from(ea);
    encodeMessage(b);
    expect(Uint8Array.from(ea)).toEqual(copy);
    expect(decodeMessage(new Uint8Array(ea))).toEqual(a);
  });

  test('truncated or corrupted messages are rejected with DecodeError', () => {
    const m: Message = {
      type: MessageType.MsgApp,
      from: id(1),
      to: id(2),
      term: 3,
      logTerm: 2,
      index: 10,
      entries: [ent(11, 3, 'abc')],
      commit: 9,
      reject: false,
      rejectHint: 0,
    };
    const buf = encodeMessage(m);
    for (let cut = 0; cut < buf.length; cut++) {
      expect(() => decodeMessage(buf.subarray(0, cut))).toThrow(DecodeError);
    }
    const bad = buf.slice();
    bad[0] = 9;
    expect(() => decodeMessage(bad)).toThrow(DecodeError);
    const trailing = new Uint8Array(buf.length + 1);
    trailing.set(buf);
    expect(() => decodeMessage(trailing)).toThrow(DecodeError);
    expect(NONE).toBe(0n);
  });
});

describe('SeededRng', () => {
  test('same seed, same sequence; values in range', () => {
    const a = new SeededRng(42);
    const b = new SeededRng(42);
    const c = new SeededRng(43);
    const sa = Array.from({ length: 50 }, () => a.intn(1000));
    const sb = Array.from({ length: 50 }, () => b.intn(1000));
    const sc = Array.from({ length: 50 }, () => c.intn(1000));
    expect(sa).toEqual(sb);
    expect(sa).not.toEqual(sc);
    expect(sa.every((v) => v >= 0 && v < 1000)).toBe(true);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) counts[a.intn(10)]!++;
    for (const n of counts) expect(n).toBeGreaterThan(800);
  });
});
