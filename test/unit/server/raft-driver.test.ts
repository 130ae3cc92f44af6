/**
 * The driver's handling of a leader's commit announcements (appends without entries): held
 * briefly, dropped when the next append carries the commit index, sent when the hold ends, and
 * never held for a member that forwards proposals.
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { MemoryStorage } from '../../../src/raft/memory-storage';
import { newMessage } from '../../../src/raft/message';
import { RawNode } from '../../../src/raft/raw-node';
import { SeededRng } from '../../../src/raft/rng';
import { Message, MessageType, NodeId } from '../../../src/raft/types';
import { RaftDriver } from '../../../src/server/raft-driver';
import { nullLogger } from '../../../src/server/logger';
import { Wal } from '../../../src/storage/wal';

const ME = 1n as NodeId;
const A = 2n as NodeId;
const B = 3n as NodeId;

interface Rig {
  driver: RaftDriver;
  node: RawNode;
  sent: Message[];
  dir: string;
}

const rigs: Rig[] = [];

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.driver.stop();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

/** The hold used here: long enough that no hold ends while a test step settles. */
const HOLD_MS = 300;

/** Waits `ms` (0: no timer), then until the driver loop and the turns it schedules have run. */
async function settle(ms = 0): Promise<void> {
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

function reply(type: MessageType, from: NodeId, term: number, fields: Partial<Message> = {}): Message {
  return { ...newMessage(type, ME), from, term, ...fields };
}

/** A 3-voter member made leader of term 1..2 by hand; returns once its first entry is committed. */
async function leaderRig(): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'driver-'));
  const { wal } = await Wal.open(dir, { preallocate: false });
  const storage = new MemoryStorage();
  const node = new RawNode({ id: ME, electionTick: 10, heartbeatTick: 1, storage, rng: new SeededRng(7) });
  node.bootstrap([{ id: ME }, { id: A }, { id: B }]);
  const sent: Message[] = [];
  const driver = new RaftDriver(
    node,
    storage,
    wal,
    {
      send: (msgs) => sent.push(...msgs),
      apply: async () => undefined,
      readStates: () => undefined,
      softState: () => undefined,
      installSnapshot: async () => undefined,
      fatal: (err) => {
        throw err;
      },
    },
    nullLogger,
    HOLD_MS,
  );
  const rig = { driver, node, sent, dir };
  rigs.push(rig);
  driver.schedule();
  await settle();
  driver.campaign();
  await settle();
  const preVote = sent.find((m) => m.type === MessageType.MsgPreVote);
  expect(preVote).toBeDefined();
  driver.step(reply(MessageType.MsgPreVoteResp, A, preVote!.term));
  await settle();
  const vote = sent.find((m) => m.type === MessageType.MsgVote);
  expect(vote).toBeDefined();
  driver.step(reply(MessageType.MsgVoteResp, A, vote!.term));
  await settle();
  expect(node.status().role).toBe('leader');
  // The new leader's empty entry: both members acknowledge it, so it commits.
  const last = node.status().progress!.get(ME)!.match;
  for (const id of [A, B]) driver.step(reply(MessageType.MsgAppResp, id, vote!.term, { index: last }));
  await settle(HOLD_MS + 50);
  sent.length = 0;
  return rig;
}

const bareAppends = (sent: Message[], to: NodeId): Message[] =>
  sent.filter((m) => m.type === MessageType.MsgApp && m.to === to && m.entries.length === 0);
const fullAppends = (sent: Message[], to: NodeId): Message[] =>
  sent.filter((m) => m.type === MessageType.MsgApp && m.to === to && m.entries.length > 0);

/** Proposes one entry and acknowledges it from A; returns the entry's index and the term. */
async function proposeAndAck(rig: Rig): Promise<{ index: number; term: number }> {
  rig.driver.propose(new Uint8Array([1, 2, 3]), (err) => {
    throw err;
  });
  await settle();
  const app = fullAppends(rig.sent, A).at(-1)!;
  const index = app.entries.at(-1)!.index;
  rig.driver.step(reply(MessageType.MsgAppResp, A, app.term, { index }));
  await settle();
  return { index, term: app.term };
}

describe('RaftDriver commit announcements', () => {
  test('a bare commit announcement is dropped when the next append carries the commit', async () => {
    const rig = await leaderRig();
    const first = await proposeAndAck(rig);
    expect(rig.node.status().commit).toBe(first.index);
    // Within the hold, nothing bare has gone out yet.
    expect(bareAppends(rig.sent, A)).toHaveLength(0);
    expect(bareAppends(rig.sent, B)).toHaveLength(0);
    await proposeAndAck(rig);
    const carried = fullAppends(rig.sent, B).at(-1)!;
    expect(carried.commit).toBe(first.index);
    await settle(HOLD_MS + 50);
    // The held announcement for `first` was covered by the second append; only the second
    // commit's announcement went out, once, after its hold.
    const bare = bareAppends(rig.sent, B);
    expect(bare.map((m) => m.commit)).toEqual([first.index + 1]);
  });

  test('without a next append the announcement leaves when the hold ends', async () => {
    const rig = await leaderRig();
    const { index } = await proposeAndAck(rig);
    await settle(HOLD_MS + 50);
    for (const id of [A, B]) {
      const bare = bareAppends(rig.sent, id);
      expect(bare).toHaveLength(1);
      expect(bare[0]!.commit).toBe(index);
    }
  });

  test('a member that forwarded a proposal gets the announcement at once', async () => {
    const rig = await leaderRig();
    const term = rig.node.status().term;
    rig.driver.step(reply(MessageType.MsgProp, B, 0, { entries: [{ term: 0, index: 0, type: 0, data: new Uint8Array([9]) }] }));
    await settle();
    const app = fullAppends(rig.sent, A).at(-1)!;
    const index = app.entries.at(-1)!.index;
    rig.driver.step(reply(MessageType.MsgAppResp, A, term, { index }));
    await settle();
    // No timer has run yet: B's announcement left with the replies, A's is held.
    expect(bareAppends(rig.sent, B).map((m) => m.commit)).toEqual([index]);
    expect(bareAppends(rig.sent, A)).toHaveLength(0);
    await settle(HOLD_MS + 50);
    expect(bareAppends(rig.sent, A).map((m) => m.commit)).toEqual([index]);
  });
});
