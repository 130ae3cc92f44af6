/** Snapshots, ReadIndex, leadership transfer and membership changes on a small cluster. */
import { ConfChangeError, ProposalDroppedError } from '../../../src/raft/errors';
import { MessageType } from '../../../src/raft/types';
import type { Message } from '../../../src/raft/types';
import { Cluster, bytes, id, str } from './harness';

function elect(c: Cluster, n: number): void {
  c.node(n).campaign();
  c.stabilize();
  expect(c.node(n).status().role).toBe('leader');
}

function values(c: Cluster, n: number): string[] {
  return Array.from(c.member(n).applied.values());
}

function record(c: Cluster): Message[] {
  const seen: Message[] = [];
  c.filter = (m) => {
    seen.push(m);
    return true;
  };
  return seen;
}

describe('snapshots', () => {
  test('a lagging follower whose entries were compacted catches up from a snapshot', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('before'));
    c.stabilize();
    c.crash(3);
    for (let i = 0; i < 20; i++) c.node(1).propose(bytes(`v${i}`));
    c.stabilize();
    c.member(1).snapshotAndCompact();
    expect(c.member(1).storage.firstIndex()).toBeGreaterThan(c.member(3).storage.lastIndex() + 1);
    c.restart(3);
    const seen = record(c);
    c.tickAll(3);
    expect(seen.some((m) => m.type === MessageType.MsgSnap && Number(m.to) === 3)).toBe(true);
    expect(values(c, 3)).toEqual(values(c, 1));
    expect(c.member(3).storage.snapshot().meta.index).toBe(c.member(1).storage.snapshot().meta.index);
    c.node(1).propose(bytes('after'));
    c.stabilize();
    expect(values(c, 3)).toEqual(values(c, 1));
    expect(values(c, 3).slice(-1)).toEqual(['after']);
    expect(c.node(1).status().progress?.get(id(3))?.state).toBe('replicate');
  });

  test('snapshot progress waits for delivery; a failed send falls back to probing and retries', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.crash(3);
    for (let i = 0; i < 5; i++) c.node(1).propose(bytes(`v${i}`));
    c.stabilize();
    c.member(1).snapshotAndCompact();
    c.restart(3);
    c.filter = (m) => m.type !== MessageType.MsgSnap;
    c.tickAll(2);
    expect(c.node(1).status().progress?.get(id(3))?.state).toBe('snapshot');
    c.node(1).reportSnapshot(id(3), false);
    expect(c.node(1).status().progress?.get(id(3))?.state).toBe('probe');
    c.filter = undefined;
    c.tickAll(3);
    expect(values(c, 3)).toEqual(values(c, 1));
  });

  test('a follower ignores a snapshot older than its commit index', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('x'));
    c.stabilize();
    c.member(1).snapshotAndCompact();
    const snap = c.member(1).storage.snapshot();
    for (let i = 0; i < 3; i++) c.node(1).propose(bytes(`y${i}`));
    c.stabilize();
    const before = c.node(2).status().commit;
    c.node(2).step({
      type: MessageType.MsgSnap,
      from: id(1),
      to: id(2),
      term: c.node(1).status().term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: snap,
    });
    expect(c.node(2).hasReady()).toBe(true);
    const rd = c.node(2).ready();
    expect(rd.snapshot).toBeUndefined();
    expect(rd.messages[0]).toMatchObject({ type: MessageType.MsgAppResp, index: before });
    c.node(2).advance();
  });
});

describe('ReadIndex', () => {
  test('on the leader: answered after a heartbeat quorum, at the commit index of the request', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('w'));
    c.stabilize();
    const commit = c.node(1).status().commit;
    c.node(1).readIndex(bytes('read-1'));
    c.processReadies();
    expect(c.member(1).readStates).toEqual([]);
    const hb = c.queue.filter((m) => m.type === MessageType.MsgHeartbeat);
    expect(hb).toHaveLength(2);
    expect(str(hb[0]!.context!)).toBe('read-1');
    c.stabilize();
    expect(c.member(1).readStates).toEqual([{ index: commit, ctx: bytes('read-1') }]);
  });

  test('on a follower: forwarded to the leader, answered to the follower', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('w'));
    c.stabilize();
    c.node(3).readIndex(bytes('read-f'));
    c.stabilize();
    expect(c.member(3).readStates).toEqual([{ index: c.node(1).status().commit, ctx: bytes('read-f') }]);
    expect(c.member(1).readStates).toEqual([]);
  });

  test('a leader defers reads until it has committed an entry of its term', () => {
    const c = new Cluster(3, { checkQuorum: false });
    elect(c, 1);
    c.isolate(1);
    c.node(2).campaign();
    for (let i = 0; i < 6 && c.node(2).status().role !== 'leader'; i++) {
      c.processReadies();
      c.deliverAll();
    }
    expect(c.node(2).status().role).toBe('leader');
    // its empty entry is not committed yet: the read waits (no heartbeat round for it)
    c.node(2).readIndex(bytes('early'));
    c.processReadies();
    expect(c.queue.filter((m) => m.type === MessageType.MsgHeartbeat)).toHaveLength(0);
    expect(c.member(2).readStates).toEqual([]);
    c.stabilize();
    const commit = c.node(2).status().commit;
    expect(c.node(2).termAt(commit)).toBe(c.node(2).status().term);
    expect(c.member(2).readStates).toEqual([{ index: commit, ctx: bytes('early') }]);
  });

  test('a partitioned leader cannot answer reads', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.isolate(1);
    c.node(1).readIndex(bytes('stale'));
    c.tick(1, 5);
    expect(c.member(1).readStates).toEqual([]);
  });

  test('several pending reads are answered together, in order', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).readIndex(bytes('a'));
    c.node(1).propose(bytes('w'));
    c.node(1).readIndex(bytes('b'));
    c.stabilize();
    expect(c.member(1).readStates.map((r) => str(r.ctx))).toEqual(['a', 'b']);
    // both asked before 'w' committed: the commit index at request time
    const before = c.member(1).readStates[0]!.index;
    expect(c.member(1).readStates[1]!.index).toBe(before);
    c.node(1).readIndex(bytes('c'));
    c.stabilize();
    expect(c.member(1).readStates[2]).toEqual({ index: before + 1, ctx: bytes('c') });
  });
});

describe('leader transfer', () => {
  test('to an up-to-date follower: it campaigns at once and wins the next term', () => {
    const c = new Cluster(3);
    elect(c, 1);
    const term = c.node(1).status().term;
    c.node(1).transferLeader(id(2));
    c.stabilize();
    expect(c.node(2).status()).toMatchObject({ role: 'leader', term: term + 1 });
    expect(c.node(1).status()).toMatchObject({ role: 'follower', lead: id(2) });
  });

  test('to a lagging follower: it is caught up first; requests arrive through a follower too', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) c.node(1).propose(bytes(`v${i}`));
    c.stabilize();
    c.heal();
    const seen = record(c);
    c.node(2).transferLeader(id(3)); // forwarded to the leader
    c.stabilize();
    expect(c.node(3).status().role).toBe('leader');
    const timeoutNow = seen.findIndex((m) => m.type === MessageType.MsgTimeoutNow);
    const lastApp = seen.map((m) => m.type === MessageType.MsgApp && Number(m.to) === 3).lastIndexOf(true);
    expect(timeoutNow).toBeGreaterThan(0);
    expect(lastApp).toBeLessThan(timeoutNow);
    expect(values(c, 3)).toHaveLength(10);
  });

  test('proposals are dropped while transferring; the transfer is abandoned after an election timeout', () => {
    const c = new Cluster(3, { electionTick: 10 });
    elect(c, 1);
    c.isolate(3);
    c.node(1).transferLeader(id(3));
    expect(c.node(1).status().leadTransferee).toBe(id(3));
    expect(() => c.node(1).propose(bytes('x'))).toThrow(ProposalDroppedError);
    c.tick(1, 10);
    expect(c.node(1).status().leadTransferee).toBe(id(0));
    expect(c.node(1).status().role).toBe('leader');
    c.node(1).propose(bytes('x'));
    c.stabilize();
    expect(values(c, 2)).toEqual(['x']);
  });

  test('a transfer overrides the leader lease of the other voters', () => {
    const c = new Cluster(3, { preVote: true, checkQuorum: true });
    elect(c, 1);
    c.tickAll(2); // everyone has heard from the leader recently
    c.node(1).transferLeader(id(3));
    c.stabilize();
    expect(c.node(3).status().role).toBe('leader');
  });

  test('to a learner or without a leader: refused', () => {
    const c = new Cluster(3, {}, [4]);
    expect(() => c.node(2).transferLeader(id(3))).toThrow(ProposalDroppedError);
    elect(c, 1);
    expect(() => c.node(1).transferLeader(id(4))).toThrow(ProposalDroppedError);
  });
});

describe('membership changes', () => {
  test('add a voter: it joins with an empty log, catches up, and counts toward quorum', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('a'));
    c.stabilize();
    c.addMember(4);
    c.node(1).proposeConfChange({ type: 'add-node', nodeId: id(4) });
    c.stabilize();
    c.tickAll(2);
    for (const n of [1, 2, 3, 4]) expect(c.node(n).status().config.voters).toEqual([id(1), id(2), id(3), id(4)]);
    expect(values(c, 4)).toEqual(['a']);
    // quorum is now 3 of 4: with two voters cut off nothing commits
    c.partition([1, 2], [3, 4]);
    const commit = c.node(1).status().commit;
    c.node(1).propose(bytes('b'));
    c.stabilize();
    expect(c.node(1).status().commit).toBe(commit);
    c.heal();
    c.tickAll(2);
    expect(values(c, 4)).toEqual(['a', 'b']);
  });

  test('remove a voter: the rest commit on their own', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).proposeConfChange({ type: 'remove-node', nodeId: id(3) });
    c.stabilize();
    expect(c.node(1).status().config.voters).toEqual([id(1), id(2)]);
    c.crash(3);
    c.node(1).propose(bytes('two'));
    c.stabilize();
    expect(values(c, 2)).toEqual(['two']);
  });

  test('removing the leader: it steps down and hands over without waiting for a timeout', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).proposeConfChange({ type: 'remove-node', nodeId: id(1) });
    c.stabilize();
    expect(c.node(1).status().role).toBe('follower');
    const leaders = c.leaders();
    expect(leaders).toHaveLength(1);
    expect([2, 3]).toContain(leaders[0]!.id);
    c.node(leaders[0]!.id).propose(bytes('next'));
    c.stabilize();
    expect(values(c, 2)).toEqual(['next']);
    expect(c.node(leaders[0]!.id).status().config.voters).toEqual([id(2), id(3)]);
  });

  test('one change at a time: a second change is refused until the first is applied', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.addMember(4);
    c.node(1).proposeConfChange({ type: 'add-learner', nodeId: id(4) });
    expect(() => c.node(1).proposeConfChange({ type: 'add-node', nodeId: id(4) })).toThrow(ProposalDroppedError);
    c.stabilize();
    c.node(1).proposeConfChange({ type: 'add-node', nodeId: id(4) });
    c.stabilize();
    expect(c.node(1).status().config).toEqual({ voters: [id(1), id(2), id(3), id(4)], learners: [] });
  });

  test('a new leader may not change the configuration before it applied an entry of its term', () => {
    const c = new Cluster(3, { checkQuorum: false });
    elect(c, 1);
    c.isolate(1);
    c.node(2).campaign();
    for (let i = 0; i < 6 && c.node(2).status().role !== 'leader'; i++) {
      c.processReadies();
      c.deliverAll();
    }
    expect(c.node(2).status().role).toBe('leader');
    expect(() => c.node(2).proposeConfChange({ type: 'remove-node', nodeId: id(1) })).toThrow(ProposalDroppedError);
    c.stabilize();
    c.node(2).proposeConfChange({ type: 'remove-node', nodeId: id(1) });
    c.stabilize();
    expect(c.node(3).status().config.voters).toEqual([id(2), id(3)]);
  });

  test('removing the last voter is refused', () => {
    const c = new Cluster(1);
    elect(c, 1);
    expect(() => c.node(1).proposeConfChange({ type: 'remove-node', nodeId: id(1) })).toThrow(ConfChangeError);
  });

  test('a learner receives the log but never votes or counts toward quorum; add-node promotes it', () => {
    const c = new Cluster(3, {}, [4]);
    elect(c, 1);
    c.node(1).propose(bytes('l1'));
    c.stabilize();
    expect(values(c, 4)).toEqual(['l1']);
    expect(c.node(1).status().progress?.get(id(4))?.isLearner).toBe(true);
    // a learner does not campaign, even on timeout
    c.isolate(4);
    c.tick(4, 50);
    expect(c.node(4).status()).toMatchObject({ role: 'follower', term: c.node(1).status().term });
    c.heal();
    // with voters 2 and 3 cut off, the leader and the learner cannot commit
    c.partition([1, 4], [2, 3]);
    const commit = c.node(1).status().commit;
    c.node(1).propose(bytes('l2'));
    c.stabilize();
    expect(c.node(1).status().commit).toBe(commit);
    c.heal();
    c.tickAll(2);
    expect(values(c, 4)).toEqual(['l1', 'l2']);
    // promote
    c.node(1).proposeConfChange({ type: 'add-node', nodeId: id(4) });
    c.stabilize();
    for (const n of [1, 2, 3, 4]) expect(c.node(n).status().config).toEqual({ voters: [id(1), id(2), id(3), id(4)], learners: [] });
    c.node(1).transferLeader(id(4));
    c.stabilize();
    expect(c.node(4).status().role).toBe('leader');
  });
});

describe('commit announcements and durability', () => {
  test('a single voter never announces a commit index covering entries it has not persisted', () => {
    const c = new Cluster(1, {}, [2]);
    elect(c, 1);
    c.node(1).propose(bytes('x'));
    const node = c.node(1);
    const rd = node.ready();
    const idx = rd.entries[0]!.index;
    expect(rd.committedEntries.map((e) => e.index)).toContain(idx); // commits at once
    const app = rd.messages.find((m) => m.type === MessageType.MsgApp && Number(m.to) === 2);
    expect(app?.entries.map((e) => e.index)).toEqual([idx]);
    expect(app!.commit).toBeLessThan(idx); // but does not tell the learner yet
    c.member(1).storage.append(rd.entries);
    if (rd.hardState) c.member(1).storage.setHardState(rd.hardState);
    node.advance();
    c.queue.push(...rd.messages);
    c.stabilize();
    c.tick(1, 1); // the next heartbeat carries the durable commit
    expect(values(c, 2)).toEqual(['x']);
  });

  test('a commit held by a quorum of followers is announced even before the leader persisted', () => {
    const c = new Cluster(3);
    elect(c, 1);
    const leader = c.member(1);
    leader.node.propose(bytes('y'));
    const rd = leader.node.ready();
    const idx = rd.entries[0]!.index;
    // the leader sends first; followers persist and acknowledge while the leader's disk is busy
    for (const m of rd.messages) c.deliver(m);
    c.member(2).handleReady()!.messages.forEach((m) => c.deliver(m));
    c.member(3).handleReady()!.messages.forEach((m) => c.deliver(m));
    expect(leader.node.status().commit).toBe(idx);
    leader.storage.append(rd.entries);
    if (rd.hardState) leader.storage.setHardState(rd.hardState);
    leader.node.advance();
    const next = leader.node.ready();
    const apps = next.messages.filter((m) => m.type === MessageType.MsgApp);
    for (const to of [2, 3]) {
      const last = apps.filter((m) => Number(m.to) === to).pop();
      expect(last?.commit).toBe(idx);
    }
    leader.node.advance();
  });
});

describe('network input', () => {
  test('local message kinds, empty proposals and answers from non-members are ignored', () => {
    const c = new Cluster(3);
    elect(c, 1);
    const term = c.node(2).status().term;
    const base = {
      from: id(1),
      to: id(2),
      term: 0,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    };
    c.node(2).step({ ...base, type: MessageType.MsgHup });
    c.node(2).step({ ...base, type: MessageType.MsgCheckQuorum });
    expect(c.node(2).status()).toMatchObject({ role: 'follower', term });
    c.node(1).step({ ...base, from: id(2), to: id(1), type: MessageType.MsgProp });
    c.node(1).step({ ...base, from: id(9), to: id(1), type: MessageType.MsgAppResp, term, index: 100 });
    expect(c.node(1).status().progress?.has(id(9))).toBe(false);
    expect(c.node(1).status().role).toBe('leader');
  });
});
