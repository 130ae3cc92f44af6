/**
 * Sending one snapshot over a dedicated connection: handshake, the MsgSnap, the data in bounded
 * chunks (waiting for 'drain' when the socket buffer is full), an end frame with the sha256 of
 * the data, then the receiver's result.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { encodeMessage } from '../raft/message-codec';
import type { Message, NodeId } from '../raft/types';
import type { TransportContext } from './context';
import { dialPeer } from './dial';
import {
  ConnectionKind,
  decodeSnapshotResult,
  encodeFrame,
  encodeSnapshotEnd,
  FrameType,
  PROTOCOL_VERSION,
  RefusalCode,
} from './frame';
import type { Frame, FrameReader, SnapshotResult } from './frame';
import { readFrames } from './framed-socket';
import type { PeerCounters } from './options';
import { hexId } from './options';
import type { PeerAddress } from './peer-url';

/** Inputs of one snapshot send. */
export interface SnapshotSendJob {
  to: NodeId;
  addresses: readonly PeerAddress[];
  msg: Message;
  data: () => AsyncIterable<Uint8Array>;
  /** Largest chunk payload written, in bytes (≥ 1). */
  chunkBytes: number;
  counters: PeerCounters;
  /** Aborting fails the send promptly (the transport stops or the peer is removed). */
  signal: AbortSignal;
}

/** The outcome of a send: `ok` only when the receiver confirmed it took the snapshot. */
export interface SnapshotSendResult {
  ok: boolean;
  reason: string;
}

const noop = (): void => undefined;

/**
 * One open snapshot connection: watches for the receiver's result and for the connection's end,
 * and lets the sending loop wait on anything while failing fast when either happens.
 */
class SnapshotConnection {
  private result: SnapshotResult | undefined;
  private failure: Error | undefined;
  private failWaiter: ((e: Error) => void) | undefined;
  private resultWaiter: ((r: SnapshotResult) => void) | undefined;

  constructor(
    readonly socket: Socket,
    reader: FrameReader,
  ) {
    socket.once('close', () => this.fail(new Error(this.result?.reason || 'connection closed')));
    readFrames(socket, reader, (f) => this.onFrame(f), (err) => this.fail(err));
  }

  /** Resolves like `p`, unless the connection fails first (then rejects with that failure). */
  guard<T>(p: Promise<T>): Promise<T> {
    p.catch(noop);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.failWaiter = reject;
      p.then(
        (v) => {
          this.failWaiter = undefined;
          resolve(v);
        },
        (e: unknown) => {
          this.failWaiter = undefined;
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Writes one frame, waiting for 'drain' when the socket's buffer is full. */
  async write(frame: Buffer): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.socket.write(frame)) return;
    await this.guard(new Promise<void>((resolve) => this.socket.once('drain', resolve)));
  }

  /** Waits for the receiver's result frame. */
  awaitResult(): Promise<SnapshotResult> {
    if (this.result !== undefined) return Promise.resolve(this.result);
    return this.guard(new Promise<SnapshotResult>((resolve) => (this.resultWaiter = resolve)));
  }

  private onFrame(f: Frame): void {
    if (f.type !== FrameType.SnapshotResult || this.result !== undefined) {
      this.fail(new Error(`unexpected frame type ${f.type} on a snapshot connection`));
      this.socket.destroy();
      return;
    }
    const r = decodeSnapshotResult(f.payload);
    this.result = r;
    if (this.resultWaiter !== undefined) {
      const w = this.resultWaiter;
      this.resultWaiter = undefined;
      w(r);
    } else if (!r.ok) {
      // The receiver gave up while data was still being sent.
      this.fail(new Error(r.reason || 'snapshot refused by the receiver'));
    }
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    const w = this.failWaiter;
    this.failWaiter = undefined;
    w?.(err);
  }
}

/**
 * Sends one snapshot and returns the outcome; never rejects. Counts bytes and the outcome in
 * `job.counters` and logs it; reporting through callbacks is the caller's job. When a peer
 * refuses this member as removed, `ctx.removed` is called.
 */
export async function sendSnapshot(ctx: TransportContext, job: SnapshotSendJob): Promise<SnapshotSendResult> {
  const fields = {
    'local-member-id': hexId(ctx.memberId),
    'remote-peer-id': hexId(job.to),
    'snapshot-index': job.msg.snapshot?.meta.index ?? 0,
  };
  ctx.log('info', 'sending database snapshot', fields);
  const result = await trySend(ctx, job).catch((err: unknown) => ({
    ok: false,
    reason: err instanceof Error ? err.message : String(err),
  }));
  if (result.ok) {
    job.counters.snapshotsSent++;
    ctx.log('info', 'sent database snapshot', fields);
  } else {
    job.counters.snapshotsFailed++;
    ctx.log('warn', 'failed to send database snapshot', { ...fields, error: result.reason });
  }
  return result;
}

async function trySend(ctx: TransportContext, job: SnapshotSendJob): Promise<SnapshotSendResult> {
  const hello = {
    version: PROTOCOL_VERSION,
    kind: ConnectionKind.Snapshot,
    clusterId: ctx.clusterId,
    from: ctx.memberId,
    to: job.to,
  };
  const dialed = await dialPeer(job.addresses, hello, {
    timeoutMs: ctx.dialTimeoutMs,
    track: (s) => ctx.track(s),
    signal: job.signal,
  });
  if (dialed.kind === 'failed') return { ok: false, reason: dialed.error.message };
  if (dialed.kind === 'refused') {
    if (dialed.refusal.code === RefusalCode.MemberRemoved) ctx.removed(job.to);
    return { ok: false, reason: dialed.refusal.reason };
  }
  const socket = dialed.socket;
  if (job.signal.aborted) {
    socket.destroy();
    return { ok: false, reason: 'snapshot send aborted' };
  }
  const onAbort = (): void => {
    socket.destroy();
  };
  let idle = false;
  socket.setTimeout(ctx.snapshotIdleTimeoutMs, () => {
    idle = true;
    socket.destroy();
  });
  job.signal.addEventListener('abort', onAbort);
  const conn = new SnapshotConnection(socket, dialed.reader);
  let it: AsyncIterator<Uint8Array> | undefined;
  let finished = false;
  try {
    await conn.write(encodeFrame(FrameType.Message, encodeMessage(job.msg)));
    const hash = createHash('sha256');
    let total = 0;
    it = job.data()[Symbol.asyncIterator]();
    for (;;) {
      const r = await conn.guard(it.next());
      if (r.done === true) break;
      const chunk = r.value;
      for (let off = 0; off < chunk.length; off += job.chunkBytes) {
        const piece = chunk.subarray(off, Math.min(chunk.length, off + job.chunkBytes));
        hash.update(piece);
        total += piece.length;
        job.counters.snapshotSentBytes += piece.length;
        await conn.write(encodeFrame(FrameType.SnapshotChunk, piece));
      }
    }
    finished = true;
    await conn.write(encodeSnapshotEnd({ sha256: hash.digest(), bytes: total }));
    const result = await conn.awaitResult();
    return { ok: result.ok, reason: result.reason };
  } catch (err) {
    if (idle) return { ok: false, reason: `snapshot stream idle for ${ctx.snapshotIdleTimeoutMs} ms` };
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    job.signal.removeEventListener('abort', onAbort);
    if (!finished && it?.return !== undefined) {
      it.return().catch(noop);
    }
    socket.destroy();
  }
}
