/**
 * Tests named after the rules of the Raft paper (§5) and thesis, run on a small in-memory
 * cluster.
 */
import { ProposalDroppedError } from '../../../src/raft/errors';
import { SeededRng } from '../../../src/raft/rng';
import { MessageType } from '../../../src/raft/types';
import type { Message } from '../../../src/raft/types';
import { Cluster, bytes, id } from './harness';

/** Elects member `n` by an explicit campaign and lets the cluster settle. */
function elect(c: Cluster, n: number): void {
  c.node(n).campaign();
  c.stabilize();
  expect(c.node(n).status().role).toBe('leader');
}

/** Campaigns (at most three times: a term may be taken) until `n` leads. */
function campaignUntilLeader(c: Cluster, n: number): void {
  for (let i = 0; i < 3 && c.node(n).status().role !== 'leader'; i++) {
    c.node(n).campaign();
    c.stabilize();
  }
  expect(c.node(n).status().role).toBe('leader');
}

function logTerms(c: Cluster, n: number): number[] {
  const node = c.node(n);
  const { firstIndex, lastIndex } = node.logBounds();
  const out: number[] = [];
  for (let i = firstIndex; i <= lastIndex; i++) out.push(node.termAt(i) ?? -1);
  return out;
}

describe('Raft §5.2 leader election', () => {
  test('election safety: at most one leader per term when several members campaign at once', () => {
    let elected = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const rng = new SeededRng(seed);
      const c = new Cluster(5, { seed, preVote: false, checkQuorum: false });
      const seen = new Map<number, number>();
      for (let round = 0; round < 8; round++) {
        for (let n = 1; n <= 5; n++) if (rng.intn(2) === 0) c.node(n).campaign();
        for (let step = 0; step < 30; step++) {
          c.processReadies();
          // deliver in a scrambled order, losing some messages
          const batch = c.queue;
          c.queue = [];
          for (let i = batch.length - 1; i > 0; i--) {
            const j = rng.intn(i + 1);
            [batch[i], batch[j]] = [batch[j]!, batch[i]!];
          }
          for (const m of batch) if (rng.intn(10) > 0) c.deliver(m);
          for (const l of c.leaders()) {
            const prev = seen.get(l.term);
            if (prev !== undefined) expect(prev).toBe(l.id);
            seen.set(l.term, l.id);
          }
        }
      }
      elected += seen.size;
    }
    expect(elected).toBeGreaterThan(30);
  });

  test('a follower that hears nothing campaigns within [electionTick, 2*electionTick) ticks', () => {
    const c = new Cluster(3, { electionTick: 10 });
    c.stabilize();
    let ticks = 0;
    while (c.node(1).status().role === 'follower' && ticks < 100) {
      c.node(1).tick();
      ticks++;
    }
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(ticks).toBeLessThan(20);
    expect(c.node(1).status().role).toBe('pre-candidate');
  });

  test('a candidate steps down when it sees a leader of its term', () => {
    const c = new Cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    const term = c.node(1).status().term;
    c.isolate(2);
    c.node(2).campaign();
    c.stabilize();
    expect(c.node(2).status()).toMatchObject({ role: 'candidate', term: term + 1 });
    // 3 wins the same term while 2 is cut off
    c.node(3).campaign();
    c.stabilize();
    expect(c.node(3).status()).toMatchObject({ role: 'leader', term: term + 1 });
    c.heal();
    c.tick(3, 2); // heartbeats of the same term reach the candidate
    expect(c.node(2).status()).toMatchObject({ role: 'follower', lead: id(3), term: term + 1 });
  });
});

describe('Raft §5.3 log replication', () => {
  test('leader append-only: a leader never overwrites or deletes its entries', () => {
    const c = new Cluster(3);
    elect(c, 1);
    c.node(1).propose(bytes('a'));
    c.stabilize();
    const before = logTerms(c, 1);
    // A stale append from an older term with conflicting entries is refused.
    const stale: Message = {
      type: MessageType.MsgApp,
      from: id(2),
      to: id(1),
      term: 1,
      logTerm: 1,
      index: 3,
      entries: [{ term: 1, index: 4, type: 0, data: bytes('x') }],
      commit: 3,
      reject: false,
      rejectHint: 0,
    };
    c.node(1).step(stale);
    c.stabilize();
    expect(logTerms(c, 1)).toEqual(before);
    expect(c.node(1).status().role).toBe('leader');
  });

  test('log matching: after repair, logs that share an (index, term) agree on the whole prefix', () => {
    const c = new Cluster(5, { preVote: false, checkQuorum: false });
    elect(c, 1);
    c.partition([1, 2], [3, 4, 5]);
    for (let i = 0; i < 5; i++) c.node(1).propose(bytes(`old${i}`));
    c.stabilize();
    elect(c, 3);
    for (let i = 0; i < 3; i++) c.node(3).propose(bytes(`new${i}`));
    c.stabilize();
    c.heal();
    c.tick(3, 3);
    const logs = [1, 2, 3, 4, 5].map((n) => logTerms(c, n));
    for (const l of logs) expect(l).toEqual(logs[2]);
    const applied = [1, 2, 3, 4, 5].map((n) => Array.from(c.member(n).applied.values()));
    for (const a of applied) expect(a).toEqual(['new0', 'new1', 'new2']);
  });

  test('a follower with a long divergent tail is repaired in a few round trips', () => {
    const c = new Cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    for (let i = 0; i < 100; i++) c.node(1).propose(bytes(`base${i}`));
    c.stabilize();
    c.isolate(1);
    // 1 keeps leading alone: 200 entries of term 2 that never commit
    for (let i = 0; i < 200; i++) c.node(1).propose(bytes(`stale${i}`));
    c.stabilize();
    elect(c, 2); // term 3
    for (let i = 0; i < 50; i++) c.node(2).propose(bytes(`fresh${i}`));
    c.stabilize();
    elect(c, 3); // term 4: its first probe to 1 lands inside 1's divergent tail
    c.heal();
    const rejects: Message[] = [];
    c.filter = (m) => {
      if (m.type === MessageType.MsgAppResp && m.reject) rejects.push(m);
      return true;
    };
    c.tick(3, 3);
    expect(logTerms(c, 1)).toEqual(logTerms(c, 3));
    expect(rejects.length).toBeGreaterThan(0);
    // one entry at a time would need about 50 rejections; one per term is enough
    expect(rejects.length).toBeLessThanOrEqual(3);
    const applied = Array.from(c.member(1).applied.values());
    expect(applied.slice(100)).toEqual(Array.from({ length: 50 }, (_, i) => `fresh${i}`));
  });

  test('replication pipelines in replicate state within the in-flight window', () => {
    const c = new Cluster(3, { maxInflightMsgs: 4 });
    elect(c, 1);
    c.isolate(2);
    for (let i = 0; i < 10; i++) {
      c.node(1).propose(bytes(`p${i}`));
      c.processReadies();
    }
    const toTwo = c.queue.filter((m) => Number(m.to) === 2 && m.type === MessageType.MsgApp);
    expect(toTwo.length).toBe(4); // window full, the rest wait
    const pr = c.node(1).status().progress?.get(id(2));
    expect(pr?.state).toBe('replicate');
    c.heal();
    c.queue = c.queue.filter((m) => Number(m.to) !== 2); // those four are lost
    c.stabilize();
    c.tick(1, 3); // heartbeat answers free the window and resume the flow
    expect(c.member(2).appliedIndex).toBe(c.member(1).appliedIndex);
  });
});

describe('Raft §5.4 safety', () => {
  test('leader completeness: a member missing committed entries cannot win', () => {
    const c = new Cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    c.isolate(3);
    c.node(1).propose(bytes('committed'));
    c.stabilize();
    expect(c.node(2).status().commit).toBe(c.node(1).status().commit);
    c.crash(1);
    c.heal();
    c.node(3).campaign();
    c.stabilize();
    expect(c.node(3).status().role).not.toBe('leader');
    c.node(2).campaign();
    c.stabilize();
    expect(c.node(2).status().role).toBe('leader');
    expect(Array.from(c.member(3).applied.values())).toEqual(['committed']);
  });

  test('figure 8: entries of earlier terms are not committed by counting replicas', () => {
    const c = new Cluster(5, { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
    elect(c, 1); // term 2, index 6 = empty entry (1..5 are the bootstrap entries)
    // S1 replicates (2,7) to S2 only.
    c.partition([1, 2], [3, 4, 5]);
    c.node(1).propose(bytes('figure8'));
    c.stabilize();
    expect(c.node(2).termAt(7)).toBe(2);
    expect(c.node(1).status().commit).toBe(6);
    // S5 wins term 3 with S3, S4 and appends (3,7) that reaches nobody.
    c.crash(1);
    c.filter = (m) => !(Number(m.from) === 5 && m.type === MessageType.MsgApp);
    c.node(5).campaign();
    c.stabilize();
    expect(c.node(5).status()).toMatchObject({ role: 'leader', term: 3 });
    expect(c.node(5).termAt(7)).toBe(3);
    c.crash(5);
    c.filter = undefined;
    c.heal();
    // S1 comes back and wins term 4 (S2, S3 vote: its log ends with (2,7)).
    c.restart(1);
    c.stabilize(); // a restarted member applies its committed entries before it may campaign
    c.partition([1, 2, 3], [4]);
    // Let the old entry (2,7) reach S3 but strip every term-4 entry on the way.
    c.rewrite = (m) => (m.type === MessageType.MsgApp ? { ...m, entries: m.entries.filter((e) => e.term !== 4) } : m);
    campaignUntilLeader(c, 1);
    expect(c.node(1).status()).toMatchObject({ role: 'leader', term: 4 });
    expect(c.node(3).termAt(7)).toBe(2);
    // (2,7) is acknowledged by S1, S2, S3: a majority...
    const pr = c.node(1).status().progress!;
    expect([pr.get(id(2))!.match, pr.get(id(3))!.match]).toEqual([7, 7]);
    // ...but it is not committed by counting: it is not of term 4
    expect(c.node(1).status().commit).toBe(6);
    c.rewrite = undefined;
    // S1 dies before replicating a term-4 entry; S5 can win and overwrite index 7 safely.
    c.crash(1);
    c.filter = undefined;
    c.heal();
    c.restart(5);
    c.stabilize();
    campaignUntilLeader(c, 5);
    for (const n of [2, 3, 4, 5]) expect(c.node(n).termAt(7)).toBe(3);
    for (const n of [2, 3, 4, 5]) expect(Array.from(c.member(n).applied.values())).toEqual([]);
  });

  test('figure 8, other ending: once a term-4 entry is on a majority, both commit', () => {
    const c = new Cluster(5, { preVote: false, checkQuorum: false, maxSizePerMsg: 1 });
    elect(c, 1);
    c.partition([1, 2], [3, 4, 5]);
    c.node(1).propose(bytes('figure8'));
    c.stabilize();
    c.crash(1);
    c.filter = (m) => !(Number(m.from) === 5 && m.type === MessageType.MsgApp);
    c.node(5).campaign();
    c.stabilize();
    c.crash(5);
    c.filter = undefined;
    c.heal();
    c.restart(1);
    c.stabilize();
    c.partition([1, 2, 3], [4]);
    campaignUntilLeader(c, 1);
    expect(c.node(1).status()).toMatchObject({ role: 'leader', term: 4 });
    expect(c.node(1).status().commit).toBe(8);
    for (const n of [1, 2, 3]) expect(Array.from(c.member(n).applied.values())).toEqual(['figure8']);
  });

  test('state-machine safety: every member applies the same entry at each index', () => {
    const c = new Cluster(5, { seed: 3 });
    elect(c, 1);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 5; i++) c.node(c.leader()).propose(bytes(`r${round}-${i}`));
      c.stabilize();
      const old = c.leader();
      c.isolate(old);
      c.tickAll(30);
      c.heal();
      c.tickAll(5);
    }
    c.tickAll(5);
    const ref = c.member(1).appliedLog.map((e) => `${e.index}/${e.term}`);
    expect(ref.length).toBeGreaterThan(25);
    for (let n = 2; n <= 5; n++) expect(c.member(n).appliedLog.map((e) => `${e.index}/${e.term}`)).toEqual(ref);
  });
});

describe('PreVote and CheckQuorum', () => {
  test('PreVote: a partitioned member does not inflate its term or disrupt the leader when it returns', () => {
    const c = new Cluster(3);
    elect(c, 1);
    const term = c.node(1).status().term;
    c.isolate(3);
    c.tick(3, 100);
    expect(c.node(3).status().term).toBe(term);
    expect(c.node(3).status().role).toBe('pre-candidate');
    c.heal();
    c.tickAll(3);
    expect(c.node(1).status()).toMatchObject({ role: 'leader', term });
    expect(c.node(3).status()).toMatchObject({ role: 'follower', lead: id(1), term });
  });

  test('without PreVote and CheckQuorum a returning member disrupts the leader (contrast)', () => {
    const c = new Cluster(3, { preVote: false, checkQuorum: false });
    elect(c, 1);
    const term = c.node(1).status().term;
    c.isolate(3);
    c.tick(3, 100);
    expect(c.node(3).status().term).toBeGreaterThan(term + 3);
    c.heal();
    c.tickAll(30);
    expect(c.node(1).status().term).toBeGreaterThan(term);
  });

  test('leader lease: followers ignore vote requests while they hear from a leader', () => {
    const c = new Cluster(3, { preVote: false });
    elect(c, 1);
    const term = c.node(1).status().term;
    c.isolate(3);
    c.node(3).campaign(); // term+1 candidate
    c.stabilize();
    c.heal();
    // its vote requests arrive while 2 heard from leader 1 recently
    c.node(3).campaign();
    c.processReadies();
    c.deliverAll();
    c.stabilize();
    expect(c.node(2).status().term).toBe(term);
    expect(c.node(1).status().role).toBe('leader');
  });

  test('CheckQuorum: a leader that does not hear from a quorum within an election timeout steps down', () => {
    const c = new Cluster(3, { electionTick: 10 });
    elect(c, 1);
    c.isolate(1);
    c.tick(1, 9);
    expect(c.node(1).status().role).toBe('leader');
    c.tick(1, 11);
    expect(c.node(1).status().role).toBe('follower');
    expect(() => c.node(1).propose(bytes('x'))).toThrow(ProposalDroppedError);
  });

  test('partitioned leader: the majority elects a new leader; the old one steps down on return and its uncommitted entries vanish', () => {
    const c = new Cluster(5);
    elect(c, 1);
    c.partition([1, 2], [3, 4, 5]);
    c.node(1).propose(bytes('lost'));
    c.stabilize();
    c.tickAll(40);
    const newLeader = c.leaders().find((l) => l.id >= 3);
    expect(newLeader).toBeDefined();
    expect(c.node(1).status().role).not.toBe('leader'); // CheckQuorum stepped it down
    c.node(newLeader!.id).propose(bytes('kept'));
    c.stabilize();
    c.heal();
    c.tickAll(5);
    for (let n = 1; n <= 5; n++) {
      expect(Array.from(c.member(n).applied.values())).toEqual(['kept']);
      expect(c.node(n).status().lead).toBe(id(newLeader!.id));
    }
  });
});
