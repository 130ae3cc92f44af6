/**
 * Receiving one snapshot on an accepted snapshot connection: the MsgSnap, then chunks handed to
 * the consumer as they arrive (the socket pauses while the consumer is behind), then the end
 * frame whose checksum decides whether the stream was intact. The MsgSnap is delivered only when
 * both the consumer resolved and the checksum matched; the sender learns the outcome.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { Socket } from 'node:net';
import { decodeMessage } from '../raft/message-codec';
import { MessageType } from '../raft/types';
import type { Message, NodeId } from '../raft/types';
import { ChunkQueue } from './chunk-queue';
import type { TransportContext } from './context';
import { decodeSnapshotEnd, encodeSnapshotResult, FRAME_HEADER_BYTES, FrameType } from './frame';
import type { Frame, FrameReader } from './frame';
import { readFrames } from './framed-socket';
import { hexId } from './options';

/** Chunk bytes buffered for a slow consumer before the socket is paused. */
export const SNAPSHOT_HIGH_WATER = 1024 * 1024;
/** Buffered bytes at or below which a paused socket resumes. */
export const SNAPSHOT_LOW_WATER = 256 * 1024;

/** The consumer a received snapshot is handed to (the transport's `onSnapshot`). */
export type SnapshotConsumer = (m: Message, chunks: AsyncIterable<Uint8Array>) => Promise<void>;

type Phase = 'meta' | 'data' | 'ended';

/**
 * Drives one incoming snapshot connection from acceptance to the result frame. Create it right
 * after the Accept frame was written; it owns the socket from then on.
 */
export class SnapshotReceiver {
  private phase: Phase = 'meta';
  private msg: Message | undefined;
  private queue: ChunkQueue | undefined;
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;
  /** The stream ended with a matching checksum (undefined while still open). */
  private streamOk: boolean | undefined;
  /** The consumer's promise settled: true resolved, false rejected. */
  private consumerOk: boolean | undefined;
  private failure = '';
  private finished = false;

  constructor(
    private readonly socket: Socket,
    reader: FrameReader,
    private readonly from: NodeId,
    private readonly ctx: TransportContext,
    private readonly consumer: SnapshotConsumer,
  ) {
    socket.once('close', () => this.onClose());
    socket.setTimeout(ctx.snapshotIdleTimeoutMs, () => {
      this.failStream(`snapshot stream idle for ${ctx.snapshotIdleTimeoutMs} ms`);
      socket.destroy();
    });
    readFrames(socket, reader, (f) => this.onFrame(f), (err) => this.failStream(err.message));
  }

  private fields(): Record<string, unknown> {
    return {
      'local-member-id': hexId(this.ctx.memberId),
      'remote-peer-id': hexId(this.from),
      'snapshot-index': this.msg?.snapshot?.meta.index ?? 0,
      'snapshot-size': this.bytes,
    };
  }

  private onFrame(f: Frame): void {
    switch (this.phase) {
      case 'meta':
        this.onMeta(f);
        return;
      case 'data':
        this.onData(f);
        return;
      case 'ended':
        this.failStream(`unexpected frame type ${f.type} after the snapshot end`);
        this.socket.destroy();
        return;
    }
  }

  private onMeta(f: Frame): void {
    let m: Message;
    try {
      if (f.type !== FrameType.Message) throw new Error(`expected a MsgSnap frame, got frame type ${f.type}`);
      m = decodeMessage(new Uint8Array(f.payload));
      if (m.type !== MessageType.MsgSnap || m.snapshot === undefined) throw new Error('first message is not a MsgSnap');
      if (m.from !== this.from || m.to !== this.ctx.memberId) throw new Error('MsgSnap sender or receiver does not match the handshake');
    } catch (err) {
      this.failStream(err instanceof Error ? err.message : String(err));
      this.socket.destroy();
      return;
    }
    this.msg = m;
    this.phase = 'data';
    const counters = this.ctx.counters(this.from);
    if (counters !== undefined) counters.receivedBytes += FRAME_HEADER_BYTES + f.payload.length;
    this.ctx.log('info', 'receiving database snapshot', this.fields());
    const queue = new ChunkQueue({
      highWater: SNAPSHOT_HIGH_WATER,
      lowWater: SNAPSHOT_LOW_WATER,
      onFull: () => {
        const c = this.ctx.counters(this.from);
        if (c !== undefined) c.snapshotReadPauses++;
        this.socket.pause();
      },
      onDrained: () => {
        if (!this.socket.destroyed) this.socket.resume();
      },
    });
    this.queue = queue;
    let consumed: Promise<void>;
    try {
      consumed = Promise.resolve(this.consumer(m, queue));
    } catch (err) {
      consumed = Promise.reject(err);
    }
    consumed.then(
      () => this.onConsumerSettled(true, ''),
      (err: unknown) => this.onConsumerSettled(false, err instanceof Error ? err.message : String(err)),
    );
  }

  private onData(f: Frame): void {
    if (f.type === FrameType.SnapshotChunk) {
      this.hash.update(f.payload);
      this.bytes += f.payload.length;
      const c = this.ctx.counters(this.from);
      if (c !== undefined) c.snapshotReceivedBytes += f.payload.length;
      this.queue?.push(f.payload);
      return;
    }
    if (f.type === FrameType.SnapshotEnd) {
      this.phase = 'ended';
      let ok = false;
      try {
        const end = decodeSnapshotEnd(f.payload);
        ok = end.bytes === this.bytes && timingSafeEqual(end.sha256, this.hash.digest());
      } catch {
        ok = false;
      }
      if (ok) {
        this.streamOk = true;
        this.queue?.end();
        this.maybeFinish();
      } else {
        this.failStream('snapshot checksum mismatch');
      }
      return;
    }
    this.failStream(`unexpected frame type ${f.type} in a snapshot stream`);
    this.socket.destroy();
  }

  private onClose(): void {
    // A stream that ended intact is still delivered once the consumer finishes.
    if (this.streamOk === undefined) this.failStream('snapshot stream closed before its end');
  }

  private failStream(reason: string): void {
    if (this.streamOk !== undefined) return;
    this.streamOk = false;
    this.failure ||= reason;
    this.queue?.fail(new Error(reason));
    this.maybeFinish();
  }

  private onConsumerSettled(ok: boolean, reason: string): void {
    this.consumerOk = ok;
    if (!ok) this.failure ||= reason || 'snapshot consumer failed';
    // Whatever the consumer did not read is still hashed, but no longer buffered.
    this.queue?.discard();
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.finished) return;
    if (this.streamOk === false || this.consumerOk === false) {
      this.finish(false);
    } else if (this.streamOk === true && this.consumerOk === true) {
      this.finish(true);
    }
  }

  private finish(ok: boolean): void {
    this.finished = true;
    if (ok && this.msg !== undefined && !this.ctx.stopped()) {
      const c = this.ctx.counters(this.from);
      if (c !== undefined) {
        c.snapshotsReceived++;
        c.receivedMessages++;
      }
      this.ctx.log('info', 'received and saved database snapshot', this.fields());
      this.ctx.deliver(this.msg);
    } else {
      ok = false;
      this.ctx.log('warn', 'failed to receive database snapshot', { ...this.fields(), error: this.failure });
    }
    if (!this.socket.destroyed) {
      this.socket.end(encodeSnapshotResult({ ok, reason: ok ? '' : this.failure }));
      // Do not wait forever for the sender to close its side.
      this.socket.setTimeout(this.ctx.dialTimeoutMs, () => this.socket.destroy());
    }
  }
}
