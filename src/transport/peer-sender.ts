/**
 * The outgoing message stream to one peer: a persistent connection, a bounded queue flushed in
 * batches, and reconnection with backoff. See README.md for the states.
 */
import type { Socket } from 'node:net';
import { encodeMessage } from '../raft/message-codec';
import type { Message, NodeId } from '../raft/types';
import { Backoff } from './backoff';
import type { BackoffOptions } from './backoff';
import type { TransportContext } from './context';
import { dialPeer } from './dial';
import type { DialOutcome } from './dial';
import {
  ConnectionKind,
  decodeRefusal,
  FRAME_HEADER_BYTES,
  FrameType,
  PROTOCOL_VERSION,
  RefusalCode,
  writeFrameHeader,
} from './frame';
import type { Frame, FrameReader, Refusal } from './frame';
import { readFrames } from './framed-socket';
import type { PeerCounters } from './options';
import { hexId } from './options';
import type { PeerAddress } from './peer-url';

/** Settings of a peer sender. Invariant: maxQueue ≥ 1, maxQueueBytes ≥ 1. */
export interface PeerSenderOptions {
  maxQueue: number;
  maxQueueBytes: number;
  backoff: BackoffOptions;
  random: () => number;
  /** Asks the transport to call `flush()` on the next turn of the event loop. */
  scheduleFlush(p: PeerSender): void;
}

/**
 * Sends messages to one peer over its own outgoing connection.
 *
 * States: idle (no usable URL) → dialing → active ⇄ (connection lost) → waiting (backoff timer)
 * → dialing …; `close()` ends in closed from any state. Messages are accepted only while active;
 * otherwise they are dropped and the peer is reported unreachable (once per dial attempt).
 */
export class PeerSender {
  private addresses: PeerAddress[];
  private readonly backoff: Backoff;
  /** Encoded messages waiting for the next flush, oldest first; length ≤ maxQueue. */
  private queue: Uint8Array[] = [];
  /** Σ (FRAME_HEADER_BYTES + length) over `queue`; ≤ maxQueueBytes. */
  private queueBytes = 0;
  /** The outgoing stream; set only while active (past the handshake, not yet closed). */
  private socket: Socket | undefined;
  private connectedUrl: string | undefined;
  private since: number | undefined;
  private dialing: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Dial again without backoff after the current attempt or connection ends. */
  private redialNow = false;
  private closed = false;
  /** Drops happened that `flush()` has not reported yet. */
  private unreachablePending = false;
  /** `onUnreachable` was called during the current dial attempt or connection. */
  private unreachableReported = false;
  /** A message was dropped for a full queue; the report flag resets when the queue empties. */
  private overflowed = false;

  constructor(
    readonly id: NodeId,
    addresses: PeerAddress[],
    private readonly ctx: TransportContext,
    private readonly counters: PeerCounters,
    private readonly opts: PeerSenderOptions,
  ) {
    this.addresses = addresses;
    this.backoff = new Backoff(opts.backoff, opts.random);
  }

  /** True while the outgoing stream is connected and past its handshake. */
  get active(): boolean {
    return this.socket !== undefined;
  }

  /** When the stream became active (ms), or undefined while inactive. */
  get activeSince(): number | undefined {
    return this.since;
  }

  /** Messages waiting in the queue. */
  get queuedMessages(): number {
    return this.queue.length;
  }

  /** Encoded bytes waiting in the queue. */
  get queuedBytes(): number {
    return this.queueBytes;
  }

  /** The peer's current addresses (owned by the sender; do not mutate). */
  get urls(): readonly PeerAddress[] {
    return this.addresses;
  }

  /** Starts connecting, unless already connecting, connected, waiting, closed or without URLs. */
  start(): void {
    if (this.closed || this.addresses.length === 0) return;
    if (this.socket !== undefined || this.dialing !== undefined || this.timer !== undefined) return;
    this.dial();
  }

  /**
   * Encodes `m` and queues it for the next flush. Drops it (counted, and reported unreachable on
   * the next flush) when the stream is not active or the queue is at its bound. Never blocks and
   * never calls back synchronously.
   */
  enqueue(m: Message): void {
    if (this.closed) {
      this.counters.dropped++;
      return;
    }
    if (this.socket === undefined) {
      this.counters.dropped++;
      this.markUnreachable();
      return;
    }
    const full = this.queue.length >= this.opts.maxQueue;
    const body = full ? undefined : encodeMessage(m);
    const size = FRAME_HEADER_BYTES + (body?.length ?? 0);
    if (body === undefined || this.queueBytes + size > this.opts.maxQueueBytes) {
      this.counters.dropped++;
      if (!this.overflowed) {
        this.ctx.log('warn', 'dropped internal Raft message since sending buffer is full (overloaded network)', {
          'local-member-id': hexId(this.ctx.memberId),
          'remote-peer-id': hexId(this.id),
          'remote-peer-active': true,
        });
      }
      this.overflowed = true;
      this.markUnreachable();
      return;
    }
    this.queue.push(body);
    this.queueBytes += size;
    this.opts.scheduleFlush(this);
  }

  /**
   * Writes every queued message in one socket write, unless the socket still holds a full
   * buffer (then the 'drain' event flushes later), and reports pending drops. Called by the
   * transport on the turn after messages were queued.
   */
  flush(): void {
    const s = this.socket;
    if (s !== undefined && this.queue.length > 0 && !s.writableNeedDrain) this.writeBatch(s);
    if (this.queue.length === 0 && this.overflowed) {
      this.overflowed = false;
      this.unreachableReported = false;
    }
    if (this.unreachablePending) {
      this.unreachablePending = false;
      if (!this.unreachableReported && !this.closed) {
        this.unreachableReported = true;
        this.counters.unreachableReports++;
        this.ctx.unreachable(this.id);
      }
    }
  }

  /**
   * Writes the queued messages now (one socket write) unless the socket still holds a full
   * buffer. Reports nothing: drops are reported by the scheduled `flush()`.
   */
  writeQueued(): void {
    const s = this.socket;
    if (s !== undefined && this.queue.length > 0 && !s.writableNeedDrain) this.writeBatch(s);
  }

  /**
   * Replaces the peer's URLs. A connection over a URL that is no longer listed is closed and
   * redialed at once; a pending backoff wait is cut short.
   */
  setAddresses(addresses: PeerAddress[]): void {
    this.addresses = addresses;
    if (this.closed) return;
    if (this.socket !== undefined) {
      if (!addresses.some((a) => a.url === this.connectedUrl)) {
        this.redialNow = true;
        this.socket.destroy();
      }
    } else if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.backoff.reset();
      this.start();
    } else if (this.dialing !== undefined) {
      this.redialNow = true;
    } else {
      this.start();
    }
  }

  /** Stops for good: cancels timers and dials, destroys the socket, drops the queue (counted). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.dialing?.abort();
    this.dialing = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    this.since = undefined;
    this.dropQueue();
    this.unreachablePending = false;
  }

  private markUnreachable(): void {
    if (this.unreachableReported || this.unreachablePending) return;
    this.unreachablePending = true;
    this.opts.scheduleFlush(this);
  }

  private writeBatch(s: Socket): void {
    const n = this.queue.length;
    const total = this.queueBytes;
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (const body of this.queue) {
      writeFrameHeader(buf, off, FrameType.Message, body.length);
      buf.set(body, off + FRAME_HEADER_BYTES);
      off += FRAME_HEADER_BYTES + body.length;
    }
    this.queue = [];
    this.queueBytes = 0;
    s.write(buf);
    this.counters.writes++;
    this.counters.sentMessages += n;
    this.counters.sentBytes += total;
  }

  private dropQueue(): void {
    this.counters.dropped += this.queue.length;
    this.queue = [];
    this.queueBytes = 0;
  }

  private dial(): void {
    const ac = new AbortController();
    this.dialing = ac;
    this.counters.dials++;
    // A new attempt: drops from now on may be reported again.
    this.unreachableReported = false;
    const hello = {
      version: PROTOCOL_VERSION,
      kind: ConnectionKind.Stream,
      clusterId: this.ctx.clusterId,
      from: this.ctx.memberId,
      to: this.id,
    };
    dialPeer(this.addresses, hello, {
      timeoutMs: this.ctx.dialTimeoutMs,
      track: (s) => this.ctx.track(s),
      signal: ac.signal,
    }).then(
      (o) => this.onDialed(ac, o),
      (err: unknown) => this.onDialed(ac, { kind: 'failed', error: err instanceof Error ? err : new Error(String(err)) }),
    );
  }

  private onDialed(ac: AbortController, o: DialOutcome): void {
    if (this.dialing === ac) this.dialing = undefined;
    if (this.closed || ac.signal.aborted || this.ctx.stopped()) {
      if (o.kind === 'accepted') o.socket.destroy();
      return;
    }
    switch (o.kind) {
      case 'accepted':
        this.attach(o.socket, o.reader, o.address);
        return;
      case 'refused':
        this.onRefused(o.refusal);
        this.scheduleRedial();
        return;
      case 'failed':
        this.ctx.log('debug', 'failed to dial remote peer', {
          'local-member-id': hexId(this.ctx.memberId),
          'remote-peer-id': hexId(this.id),
          error: o.error.message,
        });
        this.scheduleRedial();
        return;
    }
  }

  private onRefused(r: Refusal): void {
    const fields = {
      'local-member-id': hexId(this.ctx.memberId),
      'local-member-cluster-id': hexId(this.ctx.clusterId),
      'remote-peer-id': hexId(this.id),
      reason: r.reason,
    };
    switch (r.code) {
      case RefusalCode.ClusterIdMismatch:
        this.ctx.log('warn', 'request sent was ignored by remote peer due to cluster ID mismatch', fields);
        break;
      case RefusalCode.IncompatibleVersion:
        this.ctx.log('warn', 'request sent was ignored by remote peer due to server version incompatibility', fields);
        break;
      case RefusalCode.MemberRemoved:
        this.ctx.log('warn', 'remote peer refused this member: it was removed from the cluster', fields);
        this.ctx.removed(this.id);
        break;
      case RefusalCode.SenderNotFound:
      case RefusalCode.ReceiverMismatch:
        this.ctx.log('warn', 'request sent was refused by remote peer', fields);
        break;
    }
  }

  private scheduleRedial(): void {
    if (this.closed || this.ctx.stopped()) return;
    const delay = this.redialNow ? 0 : this.backoff.next();
    this.redialNow = false;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed && !this.ctx.stopped()) this.dial();
    }, delay);
  }

  private attach(s: Socket, reader: FrameReader, address: PeerAddress): void {
    s.setKeepAlive(true, 5000);
    this.socket = s;
    this.connectedUrl = address.url;
    this.since = this.ctx.now();
    this.backoff.reset();
    this.unreachableReported = false;
    this.ctx.log('info', 'peer became active', { 'peer-id': hexId(this.id) });
    this.ctx.log('info', 'established TCP streaming connection with remote peer', {
      'local-member-id': hexId(this.ctx.memberId),
      'remote-peer-id': hexId(this.id),
      url: address.url,
    });
    s.on('drain', () => this.opts.scheduleFlush(this));
    s.once('close', () => this.onClosed(s));
    readFrames(
      s,
      reader,
      (f: Frame) => this.onStreamFrame(s, f),
      (err) => this.logProtocolError(err),
    );
  }

  private onStreamFrame(s: Socket, f: Frame): void {
    if (f.type === FrameType.Reject) {
      try {
        this.onRefused(decodeRefusal(f.payload));
      } catch (err) {
        this.logProtocolError(err instanceof Error ? err : new Error(String(err)));
      }
    } else {
      this.logProtocolError(new Error(`unexpected frame type ${f.type} on an outgoing stream`));
    }
    s.destroy();
  }

  private logProtocolError(err: Error): void {
    this.ctx.log('warn', 'protocol error on stream to remote peer', {
      'local-member-id': hexId(this.ctx.memberId),
      'remote-peer-id': hexId(this.id),
      error: err.message,
    });
  }

  private onClosed(s: Socket): void {
    if (this.socket !== s) return;
    this.socket = undefined;
    this.since = undefined;
    this.connectedUrl = undefined;
    if (this.closed) return;
    this.ctx.log('warn', 'peer became inactive (message send to peer failed)', {
      'peer-id': hexId(this.id),
      error: 'lost TCP streaming connection with remote peer',
    });
    // Whatever was still in flight may be lost: let Raft probe the peer again.
    this.dropQueue();
    this.overflowed = false;
    this.markUnreachable();
    this.scheduleRedial();
  }
}
