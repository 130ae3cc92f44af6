import { decodeConfChange } from '../../../src/raft/confchange/codec';
import { InvariantError, ProposalDroppedError } from '../../../src/raft/errors';
import { MemoryStorage } from '../../../src/raft/memory-storage';
import { RawNode } from '../../../src/raft/raw-node';
import { SeededRng } from '../../../src/raft/rng';
import { EntryType } from '../../../src/raft/types';
import { bytes, id, str } from './harness';

function newNode(storage = new MemoryStorage(), applied = 0): RawNode {
  return new RawNode({ id: id(1), electionTick: 10, heartbeatTick: 1, storage, applied, rng: new SeededRng(7) });
}

/** Persist, apply, advance; returns the Ready. */
function drive(n: RawNode, storage: MemoryStorage, applied: string[]) {
  const rd = n.ready();
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  for (const e of rd.committedEntries) {
    if (e.type === EntryType.ConfChange) n.applyConfChange(decodeConfChange(e.data));
    else if (e.data.length > 0) applied.push(str(e.data));
  }
  n.advance();
  return rd;
}

describe('single-member cluster', () => {
  test('bootstrap seeds committed conf-change entries and the configuration', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    expect(n.status().config.voters).toEqual([id(1)]);
    const rd = n.ready();
    expect(rd.entries).toHaveLength(1);
    expect(rd.entries[0]!.type).toBe(EntryType.ConfChange);
    expect(rd.committedEntries).toEqual(rd.entries);
    expect(rd.hardState).toEqual({ term: 1, vote: id(0), commit: 1 });
    expect(rd.mustSync).toBe(true);
  });

  test('campaign right after bootstrap makes it leader at once, and a proposal commits in the same Ready', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    expect(n.status().role).toBe('leader');
    const applied: string[] = [];
    let rd = drive(n, storage, applied);
    expect(rd.softState).toEqual({ lead: id(1), role: 'leader' });
    // bootstrap entry + the leader's empty entry, both committed
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.hardState).toEqual({ term: 2, vote: id(1), commit: 2 });

    n.propose(bytes('hello'));
    expect(n.hasReady()).toBe(true);
    rd = drive(n, storage, applied);
    expect(rd.entries.map((e) => [e.index, str(e.data)])).toEqual([[3, 'hello']]);
    expect(rd.committedEntries).toEqual(rd.entries);
    expect(rd.hardState?.commit).toBe(3);
    expect(applied).toEqual(['hello']);
    expect(n.hasReady()).toBe(false);
    expect(storage.lastIndex()).toBe(3);
    expect(n.status()).toMatchObject({ commit: 3, applied: 3, term: 2 });
  });

  test('an election timeout also elects the single member', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    drive(n, storage, []);
    for (let i = 0; i < 20 && n.status().role !== 'leader'; i++) n.tick();
    expect(n.status().role).toBe('leader');
  });

  test('batched proposals land in one Ready', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    const applied: string[] = [];
    drive(n, storage, applied);
    n.proposeBatch([bytes('a'), bytes('b')]);
    n.propose(bytes('c'));
    const rd = drive(n, storage, applied);
    expect(rd.entries.map((e) => e.index)).toEqual([3, 4, 5]);
    expect(applied).toEqual(['a', 'b', 'c']);
  });

  test('ready() twice without advance() throws InvariantError; advance() without ready() too', () => {
    const n = newNode();
    n.bootstrap([{ id: id(1) }]);
    n.ready();
    expect(() => n.ready()).toThrow(InvariantError);
    expect(n.hasReady()).toBe(false);
    n.advance();
    expect(() => n.advance()).toThrow(InvariantError);
  });

  test('input between ready() and advance() shows in the next Ready', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    drive(n, storage, []);
    const rd1 = n.ready();
    expect(rd1.entries).toHaveLength(0);
    n.propose(bytes('late'));
    storage.append(rd1.entries);
    n.advance();
    const applied: string[] = [];
    const rd2 = drive(n, storage, applied);
    expect(rd2.entries.map((e) => str(e.data))).toEqual(['late']);
    expect(applied).toEqual(['late']);
  });

  test('a follower without leader drops proposals', () => {
    const n = newNode();
    n.bootstrap([{ id: id(1) }, { id: id(2) }]);
    expect(() => n.propose(bytes('x'))).toThrow(ProposalDroppedError);
    expect(() => n.readIndex(bytes('r'))).toThrow(ProposalDroppedError);
  });

  test('read index on a single member answers at once with the commit index', () => {
    const storage = new MemoryStorage();
    const n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    drive(n, storage, []);
    n.readIndex(bytes('ctx1'));
    const rd = drive(n, storage, []);
    expect(rd.readStates).toEqual([{ index: 2, ctx: bytes('ctx1') }]);
  });

  test('restart from storage keeps term, vote, commit and the log', () => {
    const storage = new MemoryStorage();
    let n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    const applied: string[] = [];
    drive(n, storage, applied);
    n.propose(bytes('p1'));
    drive(n, storage, applied);
    // restart: the configuration comes from the snapshot (none here), so the conf change is
    // delivered again above `applied`.
    n = newNode(storage, 0);
    expect(n.status()).toMatchObject({ term: 2, vote: id(1), commit: 3, role: 'follower' });
    const again: string[] = [];
    const rd = drive(n, storage, again);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(again).toEqual(['p1']);
    expect(n.status().config.voters).toEqual([id(1)]);
    for (let i = 0; i < 20 && n.status().role !== 'leader'; i++) n.tick();
    expect(n.status().role).toBe('leader');
    expect(n.status().term).toBe(3);
  });

  test('a leader of a snapshot-restored member commits after compaction', () => {
    const storage = new MemoryStorage();
    let n = newNode(storage);
    n.bootstrap([{ id: id(1) }]);
    n.campaign();
    const applied: string[] = [];
    drive(n, storage, applied);
    for (let i = 0; i < 5; i++) {
      n.propose(bytes(`v${i}`));
      drive(n, storage, applied);
    }
    storage.createSnapshot(5, n.status().config, bytes('state'));
    storage.compact(5);
    n = newNode(storage, 5);
    expect(n.status().config.voters).toEqual([id(1)]);
    const rest: string[] = [];
    drive(n, storage, rest);
    expect(rest).toEqual(['v3', 'v4']);
    n.campaign();
    drive(n, storage, rest);
    n.propose(bytes('after'));
    drive(n, storage, rest);
    expect(rest).toEqual(['v3', 'v4', 'after']);
  });

  test('a learner-only bootstrap is refused', () => {
    const n = newNode();
    expect(() => n.bootstrap([{ id: id(1), learner: true }])).toThrow(InvariantError);
  });
});
