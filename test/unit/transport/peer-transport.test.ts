import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { nodeId } from '../../../src/raft/types';
import { decodeHello, encodeFrame, FrameReader, FrameType } from '../../../src/transport/frame';
import { PeerTransport } from '../../../src/transport/peer-transport';
import {
  closeServer,
  freePort,
  listenRaw,
  mesh,
  msg,
  nextTurn,
  sleep,
  startMember,
  stopAll,
  waitFor,
} from './helpers';
import type { Member } from './helpers';

afterEach(async () => {
  await stopAll();
});

const A = 0xa1n;
const B = 0xb2n;
const C = 0xc3n;

async function connected(...ms: Member[]): Promise<void> {
  await waitFor('all streams active', () => ms.every((a) => ms.every((b) => a === b || a.t.isActive(b.id))));
}

function indexesFrom(m: Member, from: bigint): number[] {
  return m.messages.filter((x) => x.from === from).map((x) => x.index);
}

describe('delivery', () => {
  test('two members exchange messages in order, with their content intact', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    mesh(a, b);
    await connected(a, b);
    const sent = [];
    for (let turn = 0; turn < 20; turn++) {
      const batch = [];
      for (let k = 0; k < 50; k++) {
        const i = turn * 50 + k;
        batch.push(msg(A, B, i, new Uint8Array([i & 0xff, (i >> 8) & 0xff, 7])));
      }
      sent.push(...batch);
      a.t.send(batch);
      b.t.send([msg(B, A, turn)]);
      if (turn % 3 === 0) await nextTurn();
    }
    await waitFor('b receives 1000', () => b.messages.length === 1000);
    await waitFor('a receives 20', () => a.messages.length === 20);
    expect(b.messages).toEqual(sent);
    expect(indexesFrom(a, B)).toEqual([...Array(20).keys()]);
    const sa = a.t.stats().peers[B.toString(16)]!;
    const sb = b.t.stats().peers[A.toString(16)]!;
    expect(sa.sentMessages).toBe(1000);
    expect(sb.receivedMessages).toBe(1000);
    expect(sb.receivedBytes).toBe(sa.sentBytes);
    expect(sa.dropped).toBe(0);
    expect(a.unreachable).toEqual([]);
  });

  test('three members: every pair delivers in order', async () => {
    const ms = [await startMember(A), await startMember(B), await startMember(C)];
    mesh(...ms);
    await connected(...ms);
    const ids = [A, B, C];
    for (let i = 0; i < 300; i++) {
      for (const [k, m] of ms.entries()) {
        m.t.send(ids.filter((id) => id !== ids[k]).map((to) => msg(ids[k]!, to, i)));
      }
      if (i % 17 === 0) await nextTurn();
    }
    await waitFor('all delivered', () => ms.every((m) => m.messages.length === 600));
    for (const [k, m] of ms.entries()) {
      for (const from of ids) {
        if (from === ids[k]) continue;
        expect(indexesFrom(m, from)).toEqual([...Array(300).keys()]);
      }
      expect(m.messages.every((x) => x.to === ids[k])).toBe(true);
    }
  });

  test('messages sent in one turn leave in one socket write; separate turns use separate writes', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    mesh(a, b);
    await connected(a, b);
    const key = B.toString(16);
    const before = a.t.stats().peers[key]!;
    for (let i = 0; i < 200; i++) a.t.send([msg(A, B, i)]);
    expect(a.t.stats().peers[key]!.queuedMessages).toBe(200);
    await waitFor('200 delivered', () => b.messages.length === 200);
    const after = a.t.stats().peers[key]!;
    expect(after.writes - before.writes).toBe(1);
    expect(after.sentMessages - before.sentMessages).toBe(200);
    expect(after.queuedMessages).toBe(0);

    for (let i = 0; i < 3; i++) {
      a.t.send([msg(A, B, 200 + i)]);
      await nextTurn();
      await nextTurn();
    }
    await waitFor('203 delivered', () => b.messages.length === 203);
    expect(a.t.stats().peers[key]!.writes - after.writes).toBe(3);
  });

  test('flush() writes what was queued at once, in one write per peer, and never calls back synchronously', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    mesh(a, b);
    await connected(a, b);
    a.t.addPeer(nodeId(C), ['http://127.0.0.1:1']);
    const key = B.toString(16);
    const before = a.t.stats().peers[key]!;
    for (let i = 0; i < 5; i++) a.t.send([msg(A, B, i), msg(A, C, i)]);
    a.t.flush();
    const after = a.t.stats().peers[key]!;
    expect(after.writes - before.writes).toBe(1);
    expect(after.sentMessages - before.sentMessages).toBe(5);
    expect(after.queuedMessages).toBe(0);
    expect(a.unreachable).toEqual([]);
    await waitFor('5 delivered', () => b.messages.length === 5);
    expect(indexesFrom(b, A)).toEqual([0, 1, 2, 3, 4]);
    await waitFor('unreachable reported', () => a.unreachable.length === 1);
    expect(a.unreachable).toEqual([C]);
    // Nothing is left for the scheduled turn to write.
    await nextTurn();
    expect(a.t.stats().peers[key]!.writes).toBe(after.writes);
  });

  test('messages to unknown peers are dropped and counted; send never calls back synchronously', async () => {
    const a = await startMember(A);
    a.t.addPeer(nodeId(B), ['http://127.0.0.1:1']);
    a.t.send([msg(A, 0xdeadn, 1), msg(A, B, 2)]);
    expect(a.unreachable).toEqual([]);
    expect(a.t.stats().droppedUnknownPeer).toBe(1);
    await waitFor('unreachable reported', () => a.unreachable.length === 1);
    expect(a.unreachable).toEqual([B]);
  });
});

describe('unreachable and reconnecting peers', () => {
  test('a down peer drops its messages, the others still receive, and it is redialed with backoff', async () => {
    const cPort = await freePort();
    const a = await startMember(A);
    const b = await startMember(B);
    mesh(a, b);
    a.t.addPeer(nodeId(C), [`http://127.0.0.1:${cPort}`]);
    await connected(a, b);
    const t0 = Date.now();
    a.t.send([msg(A, C, 1), msg(A, B, 1), msg(A, C, 2)]);
    a.t.send([msg(A, C, 3)]);
    await waitFor('b receives', () => b.messages.length === 1);
    expect(Date.now() - t0).toBeLessThan(1000);
    await waitFor('c reported unreachable', () => a.unreachable.length > 0);
    expect(a.unreachable).toEqual([C]); // once for the three drops of this attempt
    expect(a.t.isActive(nodeId(C))).toBe(false);
    expect(a.t.activeSince(nodeId(C))).toBeUndefined();
    expect(a.t.stats().peers[C.toString(16)]!.dropped).toBe(3);

    // Keep sending to C while it is down: one report per dial attempt at most.
    const dialsAt = a.t.stats().peers[C.toString(16)]!.dials;
    for (let i = 0; i < 40; i++) {
      a.t.send([msg(A, C, 10 + i)]);
      await sleep(25);
    }
    const s = a.t.stats().peers[C.toString(16)]!;
    // 50, 100, 200, 400, 800 ms (each halved at worst by jitter): a fixed 50 ms retry would dial ~20 times.
    expect(s.dials - dialsAt).toBeGreaterThanOrEqual(2);
    expect(s.dials - dialsAt).toBeLessThanOrEqual(8);
    expect(s.unreachableReports).toBeLessThanOrEqual(s.dials);
    expect(a.unreachable.length).toBe(s.unreachableReports);

    // C comes up on its advertised port: A reconnects on its own.
    const c = await startMember(C, { port: cPort });
    c.t.addPeer(nodeId(A), [a.url]);
    await waitFor('a reconnects to c', () => a.t.isActive(nodeId(C)), 5000);
    expect(a.t.activeSince(nodeId(C))).toBeGreaterThanOrEqual(t0);
    a.t.send([msg(A, C, 100)]);
    await waitFor('c receives', () => c.messages.length === 1);
    expect(c.messages[0]!.index).toBe(100);
  });

  test('a stalled peer does not hold up the others and its queue stays bounded', async () => {
    // A peer that completes the handshake and then never reads.
    const stalled: Socket[] = [];
    const raw = createServer((s) => {
      stalled.push(s);
      const reader = new FrameReader();
      const onData = (chunk: Buffer): void => {
        reader.push(chunk);
        const f = reader.next();
        if (f === undefined) return;
        expect(decodeHello(f.payload).to).toBe(C);
        s.off('data', onData);
        s.pause();
        s.write(encodeFrame(FrameType.Accept, new Uint8Array(0)));
      };
      s.on('data', onData);
    });
    const rawPort = await listenRaw(raw);
    try {
      const a = await startMember(A, { maxQueue: 64 });
      const b = await startMember(B);
      mesh(a, b);
      a.t.addPeer(nodeId(C), [`http://127.0.0.1:${rawPort}`]);
      await connected(a, b);
      await waitFor('stalled peer active', () => a.t.isActive(nodeId(C)));
      const big = new Uint8Array(64 * 1024).fill(9);
      const cKey = C.toString(16);
      let maxQueued = 0;
      for (let turn = 0; turn < 25; turn++) {
        const t0 = Date.now();
        const batch = [msg(A, B, turn)];
        for (let k = 0; k < 40; k++) batch.push(msg(A, C, turn * 40 + k, big));
        a.t.send(batch);
        await waitFor(`b receives turn ${turn}`, () => b.messages.length === turn + 1, 2000);
        expect(Date.now() - t0).toBeLessThan(1000);
        maxQueued = Math.max(maxQueued, a.t.stats().peers[cKey]!.queuedMessages);
      }
      const s = a.t.stats().peers[cKey]!;
      expect(maxQueued).toBeLessThanOrEqual(64);
      expect(s.queuedMessages).toBeLessThanOrEqual(64);
      expect(s.dropped).toBeGreaterThan(0);
      expect(s.sentMessages + s.dropped + s.queuedMessages).toBe(1000);
      await waitFor('stalled peer reported', () => a.unreachable.length > 0);
      // Still connected (no reconnect attempt), so reported exactly once.
      expect(a.unreachable).toEqual([C]);
      expect(a.t.isActive(nodeId(C))).toBe(true);
      expect(indexesFrom(b, A)).toEqual([...Array(25).keys()]);
      expect(a.logs.some((l) => l.msg.includes('sending buffer is full'))).toBe(true);
    } finally {
      await stopAll();
      for (const s of stalled) s.destroy();
      await closeServer(raw);
    }
  });

  test('a peer whose connection drops is redialed and delivery resumes', async () => {
    const a = await startMember(A);
    let b = await startMember(B);
    mesh(a, b);
    await connected(a, b);
    const port = b.port;
    await b.t.stop();
    await waitFor('a sees b inactive', () => !a.t.isActive(nodeId(B)));
    // Losing the connection alone is reported (messages may have been in flight).
    await waitFor('unreachable on disconnect', () => a.unreachable.length === 1);
    // Drops are reported again once a new dial attempt has started.
    for (let i = 0; a.unreachable.length < 2 && i < 100; i++) {
      a.t.send([msg(A, B, 1)]);
      await sleep(20);
    }
    expect(a.unreachable).toEqual([B, B]);
    expect(a.t.stats().peers[B.toString(16)]!.dropped).toBeGreaterThan(0);
    b = await startMember(B, { port });
    b.t.addPeer(nodeId(A), [a.url]);
    await waitFor('a reconnects', () => a.t.isActive(nodeId(B)), 5000);
    a.t.send([msg(A, B, 2)]);
    await waitFor('b receives', () => b.messages.length === 1);
    expect(b.messages[0]!.index).toBe(2);
    expect(a.logs.some((l) => l.msg === 'peer became inactive (message send to peer failed)')).toBe(true);
  });

  test('updatePeer moves the stream to the new URL', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    const c = await startMember(C);
    // A believes B lives at C's address first: C refuses (wrong receiver), nothing is delivered.
    a.t.addPeer(nodeId(B), [c.url]);
    c.t.addPeer(nodeId(A), [a.url]);
    b.t.addPeer(nodeId(A), [a.url]);
    await waitFor('c refuses', () => c.logs.some((l) => l.fields['reason'] === 'to field mismatch'));
    expect(a.t.isActive(nodeId(B))).toBe(false);
    a.t.updatePeer(nodeId(B), ['http://127.0.0.1:1', b.url]);
    await waitFor('a connects to b', () => a.t.isActive(nodeId(B)));
    a.t.send([msg(A, B, 5)]);
    await waitFor('b receives', () => b.messages.length === 1);
    expect(c.messages).toEqual([]);
  });
});

describe('handshake refusals', () => {
  test('cluster ID mismatch is refused, logged on both sides, and nothing is delivered', async () => {
    const a = await startMember(A, { clusterId: 0x1111n });
    const b = await startMember(B, { clusterId: 0x2222n });
    mesh(a, b);
    await waitFor('a refuses b', () => a.logs.some((l) => l.fields['reason'] === 'cluster ID mismatch'));
    await waitFor('b hears the refusal', () =>
      b.logs.some((l) => l.msg === 'request sent was ignored by remote peer due to cluster ID mismatch'),
    );
    const refusal = a.logs.find((l) => l.fields['reason'] === 'cluster ID mismatch')!;
    expect(refusal.level).toBe('warn');
    expect(refusal.fields['remote-peer-id']).toBe('b2');
    expect(refusal.fields['remote-peer-cluster-id']).toBe('2222');
    expect(refusal.fields['local-member-cluster-id']).toBe('1111');
    b.t.send([msg(B, A, 1)]);
    a.t.send([msg(A, B, 1)]);
    await waitFor('both report unreachable', () => a.unreachable.length > 0 && b.unreachable.length > 0);
    await sleep(100);
    expect(a.messages).toEqual([]);
    expect(b.messages).toEqual([]);
    expect(a.t.isActive(nodeId(B))).toBe(false);
    expect(a.t.stats().refusedConnections).toBeGreaterThan(0);
    expect(a.removed + b.removed).toBe(0);
  });

  test('a removed member is refused with a distinct reason and onRemoved fires on its side', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    const c = await startMember(C);
    mesh(a, b, c);
    await connected(a, b, c);
    a.t.removePeer(nodeId(B));
    c.t.removePeer(nodeId(B));
    await waitFor('b learns it was removed', () => b.removed > 0);
    await waitFor('a refuses b as removed', () =>
      a.logs.some(
        (l) => l.msg === 'rejected connection from remote peer' && l.fields['reason'] === 'the member has been permanently removed from the cluster',
      ),
    );
    expect(b.removed).toBe(1);
    expect(a.removed).toBe(0);
    expect(c.removed).toBe(0);
    b.t.send([msg(B, A, 1), msg(B, C, 1)]);
    a.t.send([msg(A, C, 9)]);
    await waitFor('c receives from a', () => c.messages.some((x) => x.from === A && x.index === 9));
    await sleep(100);
    expect(a.messages.filter((x) => x.from === B)).toEqual([]);
    expect(c.messages.filter((x) => x.from === B)).toEqual([]);
    expect(a.t.stats().peers[B.toString(16)]).toBeUndefined();
  });

  test('a sender the receiver does not know is refused, but not as removed', async () => {
    const a = await startMember(A);
    const b = await startMember(B);
    b.t.addPeer(nodeId(A), [a.url]);
    await waitFor('a refuses the unknown sender', () => a.logs.some((l) => l.fields['reason'] === 'error sender not found'));
    expect(b.removed).toBe(0);
    // Once A learns about B, B's redial succeeds.
    a.t.addPeer(nodeId(B), [b.url]);
    await waitFor('b connects', () => b.t.isActive(nodeId(A)), 5000);
    b.t.send([msg(B, A, 3)]);
    await waitFor('a receives', () => a.messages.length === 1);
  });
});

describe('stop', () => {
  test('stop closes listeners, connections and timers', async () => {
    const resources = (): string[] => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');
    const before = resources();
    const count = (list: string[], kind: string): number => list.filter((r) => r === kind).length;
    const downPort = await freePort();
    const t1 = new PeerTransport({
      memberId: A,
      clusterId: 1n,
      listen: [{ host: '127.0.0.1', port: 0 }],
      logger: () => undefined,
      onMessage: () => undefined,
      onSnapshot: () => Promise.resolve(),
      onUnreachable: () => undefined,
      onSnapshotStatus: () => undefined,
    });
    const t2 = new PeerTransport({
      memberId: B,
      clusterId: 1n,
      listen: [{ host: '127.0.0.1', port: 0 }],
      logger: () => undefined,
      onMessage: () => undefined,
      onSnapshot: () => Promise.resolve(),
      onUnreachable: () => undefined,
      onSnapshotStatus: () => undefined,
    });
    const [a1] = await t1.start();
    const [a2] = await t2.start();
    t1.addPeer(nodeId(B), [`http://127.0.0.1:${a2!.port}`]);
    t2.addPeer(nodeId(A), [`http://127.0.0.1:${a1!.port}`]);
    t1.addPeer(nodeId(C), [`http://127.0.0.1:${downPort}`]); // keeps a backoff timer running
    await waitFor('connected', () => t1.isActive(nodeId(B)) && t2.isActive(nodeId(A)));
    t1.send([msg(A, B, 1)]);
    const during = resources();
    expect(count(during, 'TCPSocketWrap')).toBeGreaterThan(count(before, 'TCPSocketWrap'));
    expect(count(during, 'TCPServerWrap')).toBeGreaterThan(count(before, 'TCPServerWrap'));
    await Promise.all([t1.stop(), t2.stop()]);
    const after = resources();
    for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate']) {
      expect(`${kind}:${count(after, kind)}`).toBe(`${kind}:${count(before, kind)}`);
    }
    expect(t1.isActive(nodeId(B))).toBe(false);
    // The port no longer accepts connections.
    await expect(
      new Promise<void>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: a1!.port });
        s.once('connect', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
    // Stopping twice is harmless; a stopped transport cannot start again.
    await t1.stop();
    await expect(t1.start()).rejects.toThrow(/cannot start/);
  });
});
