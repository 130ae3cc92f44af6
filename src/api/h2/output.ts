/**
 * Outgoing frames of one connection, gathered during one event-loop turn and written with one
 * socket write (a writev when large payloads are referenced rather than copied).
 *
 * Small frames and payloads are copied into a slab; a payload of at least `COPY_LIMIT` octets is
 * referenced as its own chunk (the caller hands over its buffer and must not change it). After a
 * write the kernel took completely (nothing left queued in the socket), the slab is reused from
 * its start; otherwise writing continues behind the bytes still referenced by the socket, and a
 * full slab is replaced by a new one.
 */
import type { Socket } from 'node:net';

/** Size of a fresh slab (octets). */
const SLAB_SIZE = 32 * 1024;
/** Payloads at least this long are referenced instead of copied (octets). */
export const COPY_LIMIT = 1024;

/** Frame bytes waiting for the next flush. */
export class FrameOutput {
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** Start of the slab region not yet cut into `chunks`. */
  private start = 0;
  /** Write position in the slab. */
  private pos = 0;
  /** Cut regions and referenced payloads, in wire order, before the slab region [start, pos). */
  private chunks: Buffer[] = [];
  private queued = 0;

  /** Octets waiting to be written. */
  get length(): number {
    return this.queued;
  }

  /** Makes room for `n` contiguous octets in the slab. */
  private reserve(n: number): void {
    if (this.slab.length - this.pos >= n) return;
    this.cut();
    this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, n));
    this.start = 0;
    this.pos = 0;
  }

  /** Moves the slab region [start, pos) into `chunks`. */
  private cut(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }

  /** Appends a 9-octet frame header, reserving room for `extra` more octets behind it. */
  frameHeader(length: number, type: number, flags: number, streamId: number, extra = 0): void {
    this.reserve(9 + extra);
    const s = this.slab;
    let p = this.pos;
    s[p++] = (length >>> 16) & 0xff;
    s[p++] = (length >>> 8) & 0xff;
    s[p++] = length & 0xff;
    s[p++] = type;
    s[p++] = flags;
    s[p++] = (streamId >>> 24) & 0x7f;
    s[p++] = (streamId >>> 16) & 0xff;
    s[p++] = (streamId >>> 8) & 0xff;
    s[p++] = streamId & 0xff;
    this.pos = p;
    this.queued += 9;
  }

  /** Appends one octet. */
  u8(v: number): void {
    this.reserve(1);
    this.slab[this.pos++] = v;
    this.queued += 1;
  }

  /** Appends a 32-bit big-endian unsigned integer. */
  u32(v: number): void {
    this.reserve(4);
    this.slab.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    this.queued += 4;
  }

  /** Appends `src[from, to)`: copied when short, else referenced (the caller must not change it). */
  bytes(src: Buffer, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (n < COPY_LIMIT) {
      this.reserve(n);
      if (n <= 16) {
        // A loop beats Buffer#copy's call overhead for header blocks and PING payloads.
        const slab = this.slab;
        let p = this.pos;
        for (let i = from; i < to; i++) slab[p++] = src[i] as number;
      } else {
        src.copy(this.slab, this.pos, from, to);
      }
      this.pos += n;
    } else {
      this.cut();
      this.chunks.push(from === 0 && to === src.length ? src : src.subarray(from, to));
    }
    this.queued += n;
  }

  /**
   * Writes everything gathered to `socket` (one write, or one corked batch) and empties the
   * output. Returns the socket's answer (false: its buffer is over the high-water mark).
   */
  writeTo(socket: Socket): boolean {
    if (this.queued === 0) return true;
    let ok: boolean;
    if (this.chunks.length === 0) {
      ok = socket.write(this.slab.subarray(this.start, this.pos));
    } else {
      this.cut();
      const chunks = this.chunks;
      socket.cork();
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i] as Buffer);
      ok = socket.write(chunks[chunks.length - 1] as Buffer);
      socket.uncork();
      this.chunks = [];
    }
    this.queued = 0;
    if (socket.writableLength === 0) {
      // The kernel took every octet: no one refers to the slab any more.
      this.start = 0;
      this.pos = 0;
    } else {
      this.start = this.pos;
    }
    return ok;
  }

  /** Drops everything gathered (the connection is gone). */
  discard(): void {
    this.chunks = [];
    this.start = this.pos;
    this.queued = 0;
  }
}

/** Something with output to write once per event-loop turn. */
export interface Flushable {
  /** True while queued in a scheduler (owned by the scheduler). */
  flushQueued: boolean;
  /** Writes what was gathered. */
  flush(): void;
}

/**
 * Runs `flush()` of every connection that asked for it, once, in the check phase of the current
 * event-loop turn (setImmediate): all frames produced while handling the I/O of one turn (and
 * the promise jobs it started) leave in one write per connection.
 */
export class FlushScheduler {
  private queue: Flushable[] = [];
  private spare: Flushable[] = [];
  private scheduled = false;

  /** Queues `f` for this turn's flush (no-op when already queued). */
  request(f: Flushable): void {
    if (f.flushQueued) return;
    f.flushQueued = true;
    this.queue.push(f);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /**
   * Queues `f` for a flush one event-loop turn later, for frames that need not leave at once
   * (PING acknowledgements). A client sends a PING together with a request; answering it in
   * the same turn costs a socket write of its own before the request is served, while a turn
   * later it usually leaves in the same write as the response. Any earlier `request(f)` takes
   * it along.
   */
  requestSoon(f: Flushable): void {
    if (f.flushQueued) return;
    this.soon.push(f);
    if (!this.soonScheduled) {
      this.soonScheduled = true;
      setImmediate(this.deferSoon);
    }
  }

  private soon: Flushable[] = [];
  private soonScheduled = false;

  private readonly deferSoon = (): void => {
    const list = this.soon;
    this.soon = [];
    this.soonScheduled = false;
    setImmediate(() => {
      for (const f of list) this.request(f);
    });
  };

  private readonly run = (): void => {
    this.scheduled = false;
    const list = this.queue;
    this.queue = this.spare;
    for (let i = 0; i < list.length; i++) {
      const f = list[i] as Flushable;
      f.flushQueued = false;
      f.flush();
    }
    list.length = 0;
    this.spare = list;
  };
}
