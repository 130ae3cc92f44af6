import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { MessageType, nodeId } from '../../../src/raft/types';
import type { Message } from '../../../src/raft/types';
import { encodeMessage } from '../../../src/raft/message-codec';
import {
  ConnectionKind,
  decodeSnapshotResult,
  encodeFrame,
  encodeHello,
  encodeSnapshotEnd,
  FrameReader,
  FrameType,
  PROTOCOL_VERSION,
} from '../../../src/transport/frame';
import { createHash } from 'node:crypto';
import {
  closeServer,
  listenRaw,
  mesh,
  pseudoRandomBytes,
  sleep,
  snapMsg,
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
const MiB = 1024 * 1024;

async function* chunksOf(data: Uint8Array, size: number, failAfter?: number): AsyncGenerator<Uint8Array> {
  let n = 0;
  for (let off = 0; off < data.length; off += size) {
    if (failAfter !== undefined && n === failAfter) throw new Error('state dump failed');
    n++;
    await sleep(0);
    yield data.subarray(off, Math.min(data.length, off + size));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Resolves once `s` is connected; rejects on a connection error. */
function connected(s: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
}

/** A consumer that records what it read and what happened, reading slowly. */
function recordingConsumer(state: { received: Uint8Array[]; error?: Error; member?: Member }, delayMs = 0) {
  return async (_m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> => {
    try {
      for await (const c of chunks) {
        state.received.push(new Uint8Array(c));
        if (delayMs > 0) await sleep(delayMs);
      }
    } catch (err) {
      state.error = err as Error;
      throw err;
    }
    await sleep(20);
    state.member?.events.push('consumer-done');
  };
}

describe('snapshots', () => {
  test('several MiB stream in bounded chunks and the MsgSnap is delivered after the consumer finished', async () => {
    const data = pseudoRandomBytes(6 * MiB + 12345, 42);
    const state: { received: Uint8Array[]; error?: Error; member?: Member } = { received: [] };
    const a = await startMember(A);
    const b = await startMember(B, { onSnapshot: recordingConsumer(state, 3) });
    state.member = b;
    mesh(a, b);
    const m = snapMsg(A, B, 777);
    a.t.sendSnapshot(m, () => chunksOf(data, MiB));
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1, 20000);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: true }]);
    expect(b.events).toEqual(['consumer-done', 'message:MsgSnap']);
    expect(b.messages).toHaveLength(1);
    expect(b.messages[0]).toEqual(m);
    expect(state.error).toBeUndefined();
    expect(state.received.every((c) => c.length <= 256 * 1024)).toBe(true);
    expect(state.received.length).toBeGreaterThanOrEqual(Math.ceil(data.length / (256 * 1024)));
    expect(Buffer.from(concat(state.received)).equals(Buffer.from(data))).toBe(true);
    const sa = a.t.stats().peers[B.toString(16)]!;
    const sb = b.t.stats().peers[A.toString(16)]!;
    expect(sa.snapshotsSent).toBe(1);
    expect(sa.snapshotSentBytes).toBe(data.length);
    expect(sb.snapshotsReceived).toBe(1);
    expect(sb.snapshotReceivedBytes).toBe(data.length);
    // The consumer was slower than the network: reading paused instead of buffering everything.
    expect(sb.snapshotReadPauses).toBeGreaterThan(0);
  });

  test('a snapshot stream cut by the sender is not delivered and reports failure', async () => {
    const data = pseudoRandomBytes(3 * MiB, 7);
    const state: { received: Uint8Array[]; error?: Error } = { received: [] };
    const a = await startMember(A);
    const b = await startMember(B, { onSnapshot: recordingConsumer(state) });
    mesh(a, b);
    a.t.sendSnapshot(snapMsg(A, B, 5), () => chunksOf(data, 512 * 1024, 2));
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: false }]);
    await waitFor('consumer saw the failure', () => state.error !== undefined);
    expect(state.error!.message).toMatch(/closed before its end/);
    await sleep(50);
    expect(b.messages).toEqual([]);
    expect(a.t.stats().peers[B.toString(16)]!.snapshotsFailed).toBe(1);
    expect(a.logs.some((l) => l.msg === 'failed to send database snapshot' && l.fields['error'] === 'state dump failed')).toBe(true);
  });

  test('a snapshot corrupted in transit fails its checksum: not delivered, sender told', async () => {
    const data = pseudoRandomBytes(2 * MiB, 9);
    const state: { received: Uint8Array[]; error?: Error } = { received: [] };
    const a = await startMember(A);
    const b = await startMember(B, { onSnapshot: recordingConsumer(state) });
    // A reaches B through a proxy that flips one byte of every connection at offset 1,000,000
    // (inside a chunk payload: headers sit every 256 KiB + 5 bytes).
    const flipAt = 1_000_000;
    const pairs: Socket[] = [];
    const proxy = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: b.port });
      pairs.push(client, upstream);
      let seen = 0;
      client.on('data', (chunk: Buffer) => {
        if (seen <= flipAt && flipAt < seen + chunk.length) {
          chunk = Buffer.from(chunk);
          chunk[flipAt - seen] = chunk[flipAt - seen]! ^ 0xff;
        }
        seen += chunk.length;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
    const proxyPort = await listenRaw(proxy);
    try {
      a.t.addPeer(nodeId(B), [`http://127.0.0.1:${proxyPort}`]);
      b.t.addPeer(nodeId(A), [a.url]);
      a.t.sendSnapshot(snapMsg(A, B, 6), () => chunksOf(data, 256 * 1024));
      await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
      expect(a.snapshotStatus).toEqual([{ id: B, ok: false }]);
      expect(state.error?.message).toBe('snapshot checksum mismatch');
      expect(b.messages).toEqual([]);
      expect(a.logs.some((l) => l.fields['error'] === 'snapshot checksum mismatch')).toBe(true);
    } finally {
      await stopAll();
      for (const s of pairs) s.destroy();
      await closeServer(proxy);
    }
  });

  test('a sender whose peer goes silent gives up after the idle timeout and reports failure', async () => {
    const a = await startMember(A, { snapshotIdleTimeoutMs: 300 });
    // A peer that accepts the connection, then reads and drops everything and never answers.
    const sockets: Socket[] = [];
    const silent = createServer((s) => {
      sockets.push(s);
      let accepted = false;
      s.on('data', () => {
        if (!accepted) s.write(encodeFrame(FrameType.Accept, new Uint8Array(0)));
        accepted = true;
      });
      s.on('error', () => s.destroy());
    });
    const port = await listenRaw(silent);
    try {
      a.t.addPeer(nodeId(B), [`http://127.0.0.1:${port}`]);
      a.t.sendSnapshot(snapMsg(A, B, 7), () => chunksOf(pseudoRandomBytes(MiB, 11), 256 * 1024));
      await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
      expect(a.snapshotStatus).toEqual([{ id: B, ok: false }]);
      expect(a.logs.some((l) => l.msg === 'failed to send database snapshot' && l.fields['error'] === 'snapshot stream idle for 300 ms')).toBe(true);
    } finally {
      await stopAll();
      for (const s of sockets) s.destroy();
      await closeServer(silent);
    }
  });

  test('a receiver whose sender goes silent mid-stream gives up after the idle timeout', async () => {
    const state: { received: Uint8Array[]; error?: Error } = { received: [] };
    const b = await startMember(B, { onSnapshot: recordingConsumer(state), snapshotIdleTimeoutMs: 300 });
    b.t.addPeer(nodeId(A), ['http://127.0.0.1:1']);
    const s = connect({ host: '127.0.0.1', port: b.port });
    try {
      await connected(s);
      s.on('data', () => undefined);
      s.write(encodeHello({ version: PROTOCOL_VERSION, kind: ConnectionKind.Snapshot, clusterId: 0x1000n, from: A, to: B }));
      s.write(encodeFrame(FrameType.Message, encodeMessage(snapMsg(A, B, 4))));
      s.write(encodeFrame(FrameType.SnapshotChunk, pseudoRandomBytes(1000, 1)));
      // ... and nothing more, without closing.
      await waitFor('receiver gave up', () => state.error !== undefined);
      expect(state.error!.message).toBe('snapshot stream idle for 300 ms');
      await waitFor('closed', () => s.destroyed || s.readableEnded);
      expect(b.messages).toEqual([]);
    } finally {
      s.destroy();
    }
  });

  test('a consumer that rejects: not delivered, sender told, even with an intact stream', async () => {
    const a = await startMember(A);
    const b = await startMember(B, {
      onSnapshot: async (_m, chunks) => {
        for await (const c of chunks) void c;
        throw new Error('cannot apply snapshot');
      },
    });
    mesh(a, b);
    a.t.sendSnapshot(snapMsg(A, B, 8), () => chunksOf(pseudoRandomBytes(MiB, 3), 64 * 1024));
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: false }]);
    expect(b.messages).toEqual([]);
    expect(a.logs.some((l) => l.fields['error'] === 'cannot apply snapshot')).toBe(true);
  });

  test('a consumer that stops reading early still waits for the checksum before delivery', async () => {
    const a = await startMember(A);
    const b = await startMember(B, {
      onSnapshot: async (_m, chunks) => {
        for await (const c of chunks) {
          void c;
          break;
        }
      },
    });
    mesh(a, b);
    a.t.sendSnapshot(snapMsg(A, B, 9), () => chunksOf(pseudoRandomBytes(4 * MiB, 5), MiB));
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: true }]);
    expect(b.messages.map((m) => m.type)).toEqual([MessageType.MsgSnap]);
  });

  test('a MsgSnap passed to send() goes over a snapshot connection with empty data', async () => {
    const sizes: number[] = [];
    const a = await startMember(A);
    const b = await startMember(B, {
      onSnapshot: async (_m, chunks) => {
        let n = 0;
        for await (const c of chunks) n += c.length;
        sizes.push(n);
      },
    });
    mesh(a, b);
    await waitFor('connected', () => a.t.isActive(nodeId(B)));
    a.t.send([snapMsg(A, B, 11)]);
    await waitFor('snapshot status', () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: true }]);
    expect(sizes).toEqual([0]);
    expect(b.messages.map((m) => m.snapshot?.meta.index)).toEqual([11]);
  });

  test('a snapshot to an unknown peer fails asynchronously; a non-MsgSnap is refused', async () => {
    const a = await startMember(A);
    a.t.sendSnapshot(snapMsg(A, B, 1), () => chunksOf(new Uint8Array(10), 10));
    expect(a.snapshotStatus).toEqual([]);
    await waitFor('status', () => a.snapshotStatus.length === 1);
    expect(a.snapshotStatus).toEqual([{ id: B, ok: false }]);
    const { snapshot: _drop, ...plain } = snapMsg(A, B, 1);
    expect(() => a.t.sendSnapshot({ ...plain, type: MessageType.MsgApp }, () => chunksOf(new Uint8Array(1), 1))).toThrow(TypeError);
  });

  test('a hand-made stream with a wrong checksum is answered with a failed result', async () => {
    const state: { received: Uint8Array[]; error?: Error } = { received: [] };
    const b = await startMember(B, { onSnapshot: recordingConsumer(state) });
    b.t.addPeer(nodeId(A), ['http://127.0.0.1:1']);
    const s = connect({ host: '127.0.0.1', port: b.port });
    try {
      await connected(s);
      const payload = pseudoRandomBytes(1000, 1);
      const wrong = createHash('sha256').update(payload).update('x').digest();
      s.write(encodeHello({ version: PROTOCOL_VERSION, kind: ConnectionKind.Snapshot, clusterId: 0x1000n, from: A, to: B }));
      s.write(encodeFrame(FrameType.Message, encodeMessage(snapMsg(A, B, 4))));
      s.write(encodeFrame(FrameType.SnapshotChunk, payload));
      s.write(encodeSnapshotEnd({ sha256: wrong, bytes: payload.length }));
      const reader = new FrameReader();
      const frames: number[] = [];
      let result: { ok: boolean; reason: string } | undefined;
      s.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        for (let f = reader.next(); f !== undefined; f = reader.next()) {
          frames.push(f.type);
          if (f.type === FrameType.SnapshotResult) result = decodeSnapshotResult(f.payload);
        }
      });
      await waitFor('result', () => result !== undefined);
      expect(frames).toEqual([FrameType.Accept, FrameType.SnapshotResult]);
      expect(result).toEqual({ ok: false, reason: 'snapshot checksum mismatch' });
      expect(state.error?.message).toBe('snapshot checksum mismatch');
      expect(b.messages).toEqual([]);
    } finally {
      s.destroy();
    }
  });
});
