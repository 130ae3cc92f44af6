/**
 * A fault-injecting TCP proxy for the peer links of a cluster.
 *
 * Every member advertises a proxy port as its peer URL; the proxy forwards to the member's real
 * --listen-peer-urls. The proxy learns which member dialed a connection from the connection's
 * first bytes: our transport's Hello frame carries the sender's member id, and etcd's rafthttp
 * requests carry it in the X-Server-From header. A connection whose sender cannot be told (a
 * joining member's membership query, etcd's probes) is forwarded untouched.
 *
 * A connection from A to B carries bytes in both directions: A→B bytes belong to the link A→B,
 * B→A bytes (responses, or the stream of messages B sends on a connection A dialed) to the link
 * B→A. Per directed link the proxy can:
 * - blackhole: read and discard (a one-way partition). A connection that lost bytes is reset when
 *   the link heals, so no peer ever sees a stream with a hole in it;
 * - delay: hold each chunk for delay ± jitter ms, keeping order;
 * - drop: reset the connection with some probability per chunk (message loss at the transport).
 */
import * as net from 'node:net';

/** The faults on one directed link. */
export interface LinkFault {
  blackhole: boolean;
  delayMs: number;
  jitterMs: number;
  /** Probability in [0, 1] that a chunk resets its connection. */
  dropRate: number;
}

const CLEAN: LinkFault = { blackhole: false, delayMs: 0, jitterMs: 0, dropRate: 0 };

interface Conn {
  readonly dst: number;
  src: number | undefined;
  readonly client: net.Socket;
  readonly server: net.Socket;
  tainted: boolean;
  /** Delayed chunks per direction, in arrival order, each with its delivery time. */
  readonly up: Delayed;
  readonly down: Delayed;
}

/**
 * The delayed bytes of one direction of a connection. Chunks leave strictly in arrival order
 * (TCP never reorders), each no earlier than its own delivery time; while any are held, later
 * chunks queue behind them even when the link is no longer delayed.
 */
interface Delayed {
  readonly chunks: { at: number; chunk: Buffer }[];
  timer: NodeJS.Timeout | undefined;
}

/** Statistics of a proxy. */
export interface ProxyStats {
  connections: number;
  identified: number;
  bytesForwarded: number;
  bytesDropped: number;
  resets: number;
}

/** The proxies of one cluster: one listener per member, faults per directed link. */
export class FaultProxy {
  private readonly servers = new Map<number, net.Server>();
  private readonly targets = new Map<number, number>();
  private readonly conns = new Set<Conn>();
  private readonly faults = new Map<string, LinkFault>();
  /** Member id (decimal) → member index. */
  private readonly ids = new Map<string, number>();
  readonly stats: ProxyStats = { connections: 0, identified: 0, bytesForwarded: 0, bytesDropped: 0, resets: 0 };

  constructor(private readonly random: () => number) {}

  /** Starts the listener for member `index` on `port`, forwarding to 127.0.0.1:`targetPort`. */
  listen(index: number, port: number, targetPort: number): Promise<void> {
    this.targets.set(index, targetPort);
    const srv = net.createServer((sock) => this.accept(index, sock));
    this.servers.set(index, srv);
    return new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        resolve();
      });
    });
  }

  /** Tells the proxy which member index a member id (decimal string) belongs to. */
  setMemberId(id: string, index: number): void {
    this.ids.set(id, index);
  }

  /** The faults of the link from → to (a copy). */
  link(from: number, to: number): LinkFault {
    return { ...(this.faults.get(`${from}>${to}`) ?? CLEAN) };
  }

  /** Sets the faults of the link from → to. Healing a blackholed link resets its tainted connections. */
  setLink(from: number, to: number, f: Partial<LinkFault>): void {
    const next = { ...this.link(from, to), ...f };
    this.faults.set(`${from}>${to}`, next);
    if (!next.blackhole) this.resetTainted();
  }

  /** Blackholes (or heals) both directions between every member of `a` and every member of `b`. */
  partition(a: readonly number[], b: readonly number[], oneWay = false): void {
    for (const x of a) {
      for (const y of b) {
        this.setLink(x, y, { blackhole: true });
        if (!oneWay) this.setLink(y, x, { blackhole: true });
      }
    }
  }

  /** Removes every fault and resets connections that lost bytes. */
  healAll(): void {
    this.faults.clear();
    this.resetTainted();
  }

  /** Closes every listener and connection. */
  async close(): Promise<void> {
    for (const c of this.conns) {
      c.client.destroy();
      c.server.destroy();
    }
    this.conns.clear();
    await Promise.all([...this.servers.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.clear();
  }

  private resetTainted(): void {
    for (const c of [...this.conns]) {
      if (!c.tainted) continue;
      if (c.src !== undefined && (this.link(c.src, c.dst).blackhole || this.link(c.dst, c.src).blackhole)) continue;
      this.reset(c);
    }
  }

  private reset(c: Conn): void {
    this.stats.resets++;
    c.client.destroy();
    c.server.destroy();
    this.conns.delete(c);
  }

  private accept(dst: number, client: net.Socket): void {
    const port = this.targets.get(dst)!;
    const server = net.connect(port, '127.0.0.1');
    const c: Conn = { dst, src: undefined, client, server, tainted: false, up: { chunks: [], timer: undefined }, down: { chunks: [], timer: undefined } };
    this.conns.add(c);
    this.stats.connections++;
    const end = (): void => {
      client.destroy();
      server.destroy();
      this.conns.delete(c);
    };
    client.on('error', end);
    server.on('error', end);
    client.on('close', end);
    server.on('close', end);
    client.setNoDelay(true);
    server.setNoDelay(true);

    let sniffed = Buffer.alloc(0);
    let identified = false;
    const sniffDeadline = Date.now() + 2000;
    client.on('data', (chunk: Buffer) => {
      if (!identified) {
        sniffed = Buffer.concat([sniffed, chunk]);
        const who = identify(sniffed);
        if (who === 'wait' && sniffed.length < 8192 && Date.now() < sniffDeadline) return;
        identified = true;
        if (who !== 'wait' && who !== undefined) {
          const idx = this.ids.get(who);
          if (idx !== undefined) {
            c.src = idx;
            this.stats.identified++;
          }
        }
        chunk = sniffed;
      }
      this.forward(c, chunk, true);
    });
    server.on('data', (chunk: Buffer) => this.forward(c, chunk, false));
  }

  private forward(c: Conn, chunk: Buffer, up: boolean): void {
    const from = up ? c.src : c.dst;
    const to = up ? c.dst : c.src;
    const out = up ? c.server : c.client;
    const f = from === undefined || to === undefined ? CLEAN : this.link(from, to);
    if (f.blackhole) {
      c.tainted = true;
      this.stats.bytesDropped += chunk.length;
      return;
    }
    if (f.dropRate > 0 && this.random() < f.dropRate) {
      this.stats.bytesDropped += chunk.length;
      this.reset(c);
      return;
    }
    this.stats.bytesForwarded += chunk.length;
    const q = up ? c.up : c.down;
    if (f.delayMs <= 0 && f.jitterMs <= 0 && q.chunks.length === 0) {
      out.write(chunk);
      return;
    }
    const now = Date.now();
    const want = now + Math.max(0, f.delayMs + (f.jitterMs > 0 ? (this.random() * 2 - 1) * f.jitterMs : 0));
    const last = q.chunks[q.chunks.length - 1];
    q.chunks.push({ at: Math.max(want, last?.at ?? 0), chunk });
    if (q.timer === undefined) this.release(q, out);
  }

  /** Writes the held chunks of `q` that are due, in order, and waits for the next one. */
  private release(q: Delayed, out: net.Socket): void {
    q.timer = undefined;
    const now = Date.now();
    while (q.chunks.length > 0 && (q.chunks[0] as { at: number }).at <= now) {
      const { chunk } = q.chunks.shift() as { chunk: Buffer };
      if (!out.destroyed) out.write(chunk);
    }
    const next = q.chunks[0];
    if (next !== undefined) q.timer = setTimeout(() => this.release(q, out), Math.max(1, next.at - now));
  }
}

/**
 * The sender's member id (decimal) from a connection's first bytes: our Hello frame or an HTTP
 * request with X-Server-From. 'wait' when more bytes are needed; undefined when unidentifiable.
 */
export function identify(b: Buffer): string | 'wait' | undefined {
  if (b.length === 0) return 'wait';
  // Our transport: len:u32 | type:u8 (1 = Hello) | version | kind | cluster:u64 | from:u64 | to:u64.
  if (b[0] === 0 && b.length >= 1) {
    if (b.length < 31) return 'wait';
    if (b[4] !== 1 || b.readUInt32BE(0) !== 26) return undefined;
    return b.readBigUInt64BE(15).toString();
  }
  // etcd's rafthttp: an HTTP request; the sender id is the X-Server-From header (hex).
  const headEnd = b.indexOf('\r\n\r\n');
  const head = b.toString('latin1', 0, headEnd < 0 ? b.length : headEnd);
  const m = /\r\nX-Server-From:\s*([0-9a-fA-F]+)/i.exec(head);
  if (m !== null) return BigInt('0x' + m[1]!).toString();
  return headEnd < 0 ? 'wait' : undefined;
}
