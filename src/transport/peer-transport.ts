/**
 * The peer transport: carries Raft messages and snapshots between the members of a cluster over
 * plain TCP. See README.md for the wire format, connection states and a worked example.
 */
import * as net from 'node:net';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { MessageType, nodeId } from '../raft/types';
import type { Message, NodeId } from '../raft/types';
import { DEFAULT_BACKOFF } from './backoff';
import type { TransportContext } from './context';
import { ConnectionKind, encodeFrame, encodeHello, encodeRefusal, FrameReader, FrameType, PROTOCOL_VERSION, RefusalCode } from './frame';
import { dialPeer } from './dial';
import { acceptConnection } from './inbound';
import type { InboundHost } from './inbound';
import { hexId, newPeerCounters } from './options';
import type { MembersInfo, PeerCounters, PeerStats, TransportOptions, TransportStats } from './options';
import { parsePeerUrl } from './peer-url';
import type { PeerAddress } from './peer-url';
import { PeerSender } from './peer-sender';
import { sendSnapshot } from './snapshot-sender';

/** The option, logger and statistics types, re-exported so users need only this module. */
export type { MemberInfo, MembersInfo, PeerStats, TransportLogger, TransportLogLevel, TransportOptions, TransportStats } from './options';

/** Default bound of a peer's outgoing queue, in messages. */
export const DEFAULT_MAX_QUEUE = 4096;
/** Default bound of a peer's outgoing queue, in encoded bytes (64 MiB). */
export const DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024;
/** Default time to connect and finish a handshake, in ms. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5000;
/** Default longest silence of a snapshot stream (see TransportOptions.snapshotIdleTimeoutMs). */
export const DEFAULT_SNAPSHOT_IDLE_TIMEOUT_MS = 30_000;
/** Default largest snapshot chunk, in bytes (256 KiB). */
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 256 * 1024;

type State = 'new' | 'starting' | 'started' | 'stopped';

interface SnapshotJob {
  to: bigint;
  abort: AbortController;
  done: Promise<void>;
}

async function* noData(): AsyncGenerator<Uint8Array> {
  // A snapshot message sent through send() carries no separate state data.
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < 1) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  return x;
}

/**
 * Carries Raft messages between this member and its peers.
 *
 * Each peer gets one outgoing connection (dialed to its URLs in order, redialed with backoff);
 * messages from a peer arrive on that peer's own outgoing connection. `send` never blocks:
 * messages are queued per peer and written in one batch per peer on the next turn of the event
 * loop; a peer that is disconnected or not reading gets its messages dropped (bounded queue) and
 * is reported through `onUnreachable`. Snapshots go over a dedicated connection per snapshot.
 *
 * Lifecycle: construct, `addPeer`… (before or after `start`), `start()`, …, `stop()`. A stopped
 * transport cannot be started again.
 */
export class PeerTransport {
  /**
   * Asks the members at `urls` (tried in order) who is in the cluster: used by a member joining an
   * existing cluster to learn its own id and the cluster id. Rejects when none answers in time.
   */
  static async queryMembers(urls: readonly string[], timeoutMs: number): Promise<MembersInfo> {
    const deadline = Date.now() + timeoutMs;
    let lastError = 'no peer URLs given';
    while (Date.now() < deadline) {
      for (const u of urls) {
        const addr = parsePeerUrl(u);
        if (addr === undefined) continue;
        try {
          return await queryOne(addr.host, addr.port, Math.max(500, deadline - Date.now()));
        } catch (err) {
          lastError = `${u}: ${err instanceof Error ? err.message : String(err)}`;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`could not get the member list from the cluster (${lastError})`);
  }

  private readonly memberId: bigint;
  private readonly clusterId: bigint;
  private readonly maxQueue: number;
  private readonly maxQueueBytes: number;
  private readonly chunkBytes: number;
  private readonly ctx: TransportContext;
  private readonly host: InboundHost;
  private state: State = 'new';
  private stopping: Promise<void> | undefined;
  private readonly peers = new Map<bigint, PeerSender>();
  /** Counters of current peers; same keys as `peers`. */
  private readonly counters = new Map<bigint, PeerCounters>();
  private readonly removedIds = new Set<bigint>();
  /** The live incoming stream of each peer (at most one per peer). */
  private readonly inbound = new Map<bigint, Socket>();
  /** Every socket not yet closed (dialed and accepted). */
  private readonly sockets = new Set<Socket>();
  private readonly servers: Server[] = [];
  private readonly jobs = new Set<SnapshotJob>();
  private readonly dirty = new Set<PeerSender>();
  private flushHandle: NodeJS.Immediate | undefined;
  private removedReported = false;
  private droppedUnknownPeer = 0;
  private refusedConnections = 0;

  /** Validates the options; throws RangeError on a zero member id or non-positive bounds. */
  constructor(private readonly o: TransportOptions) {
    this.memberId = BigInt.asUintN(64, o.memberId);
    this.clusterId = BigInt.asUintN(64, o.clusterId);
    if (this.memberId === 0n) throw new RangeError('memberId must not be 0');
    this.maxQueue = positiveInt('maxQueue', o.maxQueue, DEFAULT_MAX_QUEUE);
    this.maxQueueBytes = positiveInt('maxQueueBytes', o.maxQueueBytes, DEFAULT_MAX_QUEUE_BYTES);
    this.chunkBytes = positiveInt('snapshotChunkBytes', o.snapshotChunkBytes, DEFAULT_SNAPSHOT_CHUNK_BYTES);
    const dialTimeoutMs = positiveInt('dialTimeoutMs', o.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS);
    const snapshotIdleTimeoutMs = positiveInt('snapshotIdleTimeoutMs', o.snapshotIdleTimeoutMs, DEFAULT_SNAPSHOT_IDLE_TIMEOUT_MS);
    if (o.backoff !== undefined) {
      positiveInt('backoff.minMs', o.backoff.minMs, 1);
      if (positiveInt('backoff.maxMs', o.backoff.maxMs, 1) < o.backoff.minMs) {
        throw new RangeError('backoff.maxMs must be ≥ backoff.minMs');
      }
    }
    const now = o.now ?? Date.now;
    this.ctx = {
      memberId: this.memberId,
      clusterId: this.clusterId,
      log: (level, msg, fields) => {
        try {
          o.logger(level, msg, fields);
        } catch {
          // A failing logger must not break the transport.
        }
      },
      now: () => now(),
      dialTimeoutMs,
      snapshotIdleTimeoutMs,
      track: (s) => this.track(s),
      stopped: () => this.state === 'stopped',
      counters: (id) => this.counters.get(id),
      deliver: (m) => this.deliver(m),
      unreachable: (id) => this.call('onUnreachable', () => o.onUnreachable(id)),
      snapshotStatus: (id, ok) => this.call('onSnapshotStatus', () => o.onSnapshotStatus(id, ok)),
      removed: (by) => this.reportRemoved(by),
    };
    this.host = {
      isPeer: (id) => this.peers.has(id),
      isRemoved: (id) => this.removedIds.has(id),
      adoptStream: (id, s) => this.adoptStream(id, s),
      countRefusal: () => this.refusedConnections++,
      consumeSnapshot: (m, chunks) => o.onSnapshot(m, chunks),
      rpc: (from, req) => (o.onRpc === undefined ? Promise.reject(new Error('requests are not served here')) : o.onRpc(from, req)),
      membersInfo: () => {
        const info = o.membersQuery?.();
        if (info === undefined) return { clusterId: hexId(o.clusterId), members: [] };
        return {
          clusterId: hexId(info.clusterId),
          members: info.members.map((m) => ({ ...m, id: hexId(m.id) })),
        };
      },
    };
  }

  /**
   * Listens on every `listen` address and starts dialing the peers added so far. Resolves with
   * the bound addresses, in `listen` order (port 0 replaced by the actual port). Rejects if an
   * address cannot be bound (every listener opened so far is closed again; the transport is then
   * stopped) or if called twice.
   */
  async start(): Promise<{ host: string; port: number }[]> {
    if (this.state !== 'new') throw new Error(`transport cannot start: it is ${this.state}`);
    this.state = 'starting';
    const bound: { host: string; port: number }[] = [];
    try {
      for (const l of this.o.listen) {
        bound.push(await this.listenOn(l.host, l.port));
        if (this.isStopped()) throw new Error('transport stopped while starting');
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.state = 'started';
    for (const p of this.peers.values()) p.start();
    this.ctx.log('info', 'started peer transport', {
      'local-member-id': hexId(this.memberId),
      'cluster-id': hexId(this.clusterId),
      listen: bound.map((b) => `${b.host}:${b.port}`).join(','),
    });
    return bound;
  }

  /**
   * Adds a peer reachable at `urls` (`http://host:port`, tried in order; invalid URLs are
   * logged and skipped). Adding a known peer updates its URLs; adding a removed id makes it a
   * peer again; adding this member's own id is ignored.
   */
  addPeer(id: NodeId, urls: string[]): void {
    if (this.isStopped()) return;
    const key = BigInt.asUintN(64, id);
    if (key === this.memberId) {
      this.ctx.log('warn', 'ignored adding this member as its own peer', { 'local-member-id': hexId(this.memberId) });
      return;
    }
    const existing = this.peers.get(key);
    if (existing !== undefined) {
      existing.setAddresses(this.parseUrls(key, urls));
      return;
    }
    this.removedIds.delete(key);
    const counters = newPeerCounters();
    const sender = new PeerSender(nodeId(key), this.parseUrls(key, urls), this.ctx, counters, {
      maxQueue: this.maxQueue,
      maxQueueBytes: this.maxQueueBytes,
      backoff: this.o.backoff ?? DEFAULT_BACKOFF,
      random: this.o.random ?? Math.random,
      scheduleFlush: (p) => this.scheduleFlush(p),
    });
    this.peers.set(key, sender);
    this.counters.set(key, counters);
    this.ctx.log('info', 'added remote peer', { 'local-member-id': hexId(this.memberId), 'remote-peer-id': hexId(key), 'remote-peer-urls': urls.join(',') });
    if (this.state === 'started') sender.start();
  }

  /**
   * Removes a peer for good: closes its outgoing connection (queued messages are dropped), aborts
   * snapshots being sent to it, tells its incoming stream that it was removed and closes it, and
   * from then on refuses its connections with the "member removed" reason. Its stats disappear.
   */
  removePeer(id: NodeId): void {
    const key = BigInt.asUintN(64, id);
    this.removedIds.add(key);
    const sender = this.peers.get(key);
    if (sender !== undefined) {
      sender.close();
      this.dirty.delete(sender);
      this.peers.delete(key);
      this.counters.delete(key);
      this.ctx.log('info', 'removed remote peer', { 'local-member-id': hexId(this.memberId), 'remote-peer-id': hexId(key) });
    }
    for (const job of this.jobs) if (job.to === key) job.abort.abort();
    const s = this.inbound.get(key);
    if (s !== undefined) {
      this.inbound.delete(key);
      if (!s.destroyed) {
        s.end(encodeRefusal(RefusalCode.MemberRemoved));
        s.setTimeout(this.ctx.dialTimeoutMs, () => s.destroy());
      }
    }
  }

  /**
   * Replaces a peer's URLs. A connection over a URL no longer listed is closed and redialed
   * at once. Unknown ids are logged and ignored.
   */
  updatePeer(id: NodeId, urls: string[]): void {
    if (this.isStopped()) return;
    const key = BigInt.asUintN(64, id);
    const sender = this.peers.get(key);
    if (sender === undefined) {
      this.ctx.log('warn', 'ignored update of unknown remote peer', { 'remote-peer-id': hexId(key) });
      return;
    }
    sender.setAddresses(this.parseUrls(key, urls));
    this.ctx.log('info', 'updated remote peer', { 'remote-peer-id': hexId(key), 'remote-peer-urls': urls.join(',') });
  }

  /**
   * Queues `msgs` for their targets and returns at once; never blocks and never calls back
   * synchronously. Messages to one peer keep their order while its connection lives. Messages to
   * a peer that is disconnected or whose queue is full are dropped and the peer is reported via
   * `onUnreachable`; messages to unknown peers are dropped (counted in `droppedUnknownPeer`). A
   * MsgSnap is handed to `sendSnapshot` with no separate data (one without snapshot metadata is
   * dropped).
   */
  send(msgs: Message[]): void {
    if (this.isStopped()) return;
    for (const m of msgs) {
      if (m.type === MessageType.MsgSnap) {
        if (m.snapshot !== undefined) {
          this.sendSnapshot(m, noData);
        } else {
          const c = this.counters.get(BigInt.asUintN(64, m.to));
          if (c !== undefined) c.dropped++;
          else this.droppedUnknownPeer++;
          this.ctx.log('warn', 'dropped MsgSnap without snapshot metadata', { 'remote-peer-id': hexId(m.to) });
        }
        continue;
      }
      const sender = this.peers.get(BigInt.asUintN(64, m.to));
      if (sender === undefined) {
        this.droppedUnknownPeer++;
        this.ctx.log('debug', 'ignored message send request; unknown remote peer target', {
          'local-member-id': hexId(this.memberId),
          'remote-peer-id': hexId(m.to),
          'message-type': MessageType[m.type],
        });
        continue;
      }
      sender.enqueue(m);
    }
  }

  /**
   * Sends one request to a peer and resolves with its answer (JSON values). Rejects when the peer
   * is unknown or unreachable, refuses, times out, or answers with an error (its message).
   */
  async request(to: NodeId, req: unknown, timeoutMs: number): Promise<unknown> {
    const sender = this.peers.get(BigInt.asUintN(64, to));
    if (sender === undefined || this.isStopped()) throw new Error('unknown peer');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const dialed = await dialPeer(
        sender.urls,
        { version: PROTOCOL_VERSION, kind: ConnectionKind.Rpc, clusterId: this.clusterId, from: this.memberId, to: BigInt.asUintN(64, to) },
        { timeoutMs, track: (s) => this.ctx.track(s), signal: controller.signal },
      );
      if (dialed.kind === 'failed') throw dialed.error;
      if (dialed.kind === 'refused') throw new Error(dialed.refusal.reason);
      const { socket, reader } = dialed;
      socket.write(encodeFrame(FrameType.RpcRequest, Buffer.from(JSON.stringify(req), 'utf8')));
      return await new Promise<unknown>((resolve, reject) => {
        const done = (err: Error | undefined, v?: unknown): void => {
          controller.signal.removeEventListener('abort', onAbort);
          socket.destroy();
          if (err !== undefined) reject(err);
          else resolve(v);
        };
        const onAbort = (): void => done(new Error('request timed out'));
        controller.signal.addEventListener('abort', onAbort);
        const take = (): boolean => {
          const f = reader.next();
          if (f === undefined) return false;
          if (f.type !== FrameType.RpcResponse) {
            done(new Error(`unexpected frame type ${f.type}`));
            return true;
          }
          const a = JSON.parse(Buffer.from(f.payload).toString('utf8')) as { ok?: unknown; error?: string };
          if (a.error !== undefined) done(new Error(a.error));
          else done(undefined, a.ok);
          return true;
        };
        if (take()) return;
        socket.on('data', (chunk: Buffer) => {
          reader.push(chunk);
          try {
            take();
          } catch (err) {
            done(err instanceof Error ? err : new Error(String(err)));
          }
        });
        socket.on('close', () => done(new Error('connection closed')));
        socket.resume();
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Sends a MsgSnap and its state data over a dedicated connection, in the background: the
   * message, then the chunks of `data()` (split to at most `snapshotChunkBytes`, waiting for the
   * socket to drain), then a sha256 checksum. `onSnapshotStatus(m.to, ok)` reports the outcome
   * (true only after the receiver's consumer finished and the checksum matched). `data` is
   * called once, when the connection is ready. Throws TypeError when `m` is not a MsgSnap with
   * snapshot metadata.
   */
  sendSnapshot(m: Message, data: () => AsyncIterable<Uint8Array>): void {
    if (m.type !== MessageType.MsgSnap || m.snapshot === undefined) {
      throw new TypeError('sendSnapshot needs a MsgSnap carrying snapshot metadata');
    }
    if (this.isStopped()) return;
    const key = BigInt.asUintN(64, m.to);
    const to = nodeId(key);
    const sender = this.peers.get(key);
    const counters = this.counters.get(key);
    if (sender === undefined || counters === undefined) {
      this.ctx.log('warn', 'ignored snapshot send request; unknown remote peer target', { 'remote-peer-id': hexId(key) });
      Promise.resolve().then(
        () => this.ctx.snapshotStatus(to, false),
        () => undefined,
      );
      return;
    }
    const abort = new AbortController();
    const job: SnapshotJob = { to: key, abort, done: Promise.resolve() };
    job.done = sendSnapshot(this.ctx, {
      to,
      addresses: sender.urls,
      msg: m,
      data,
      chunkBytes: this.chunkBytes,
      counters,
      signal: abort.signal,
    }).then(
      (r) => {
        this.jobs.delete(job);
        this.ctx.snapshotStatus(to, r.ok);
      },
      () => {
        this.jobs.delete(job);
        this.ctx.snapshotStatus(to, false);
      },
    );
    this.jobs.add(job);
  }

  /** True while the outgoing stream to `id` is connected and past its handshake. */
  isActive(id: NodeId): boolean {
    return this.peers.get(BigInt.asUintN(64, id))?.active ?? false;
  }

  /** When the outgoing stream to `id` became active (ms, from the `now` clock); undefined if inactive. */
  activeSince(id: NodeId): number | undefined {
    return this.peers.get(BigInt.asUintN(64, id))?.activeSince;
  }

  /** A copy of the counters (per current peer, plus transport-wide ones). */
  stats(): TransportStats {
    const peers: Record<string, PeerStats> = {};
    for (const [key, sender] of this.peers) {
      const c = this.counters.get(key);
      if (c === undefined) continue;
      const s: PeerStats = {
        ...c,
        active: sender.active,
        queuedMessages: sender.queuedMessages,
        queuedBytes: sender.queuedBytes,
      };
      const since = sender.activeSince;
      if (since !== undefined) s.activeSince = since;
      peers[hexId(key)] = s;
    }
    return { peers, droppedUnknownPeer: this.droppedUnknownPeer, refusedConnections: this.refusedConnections };
  }

  /**
   * Stops: closes the listeners and every connection, cancels timers and snapshot sends, drops
   * queued messages. Resolves when every listener and socket is closed and every snapshot send
   * has ended. No callback is invoked once stop() was called (a snapshot consumer still running
   * sees its iteration fail). Calling it again returns the same promise.
   */
  stop(): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    this.state = 'stopped';
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    this.dirty.clear();
    for (const p of this.peers.values()) p.close();
    for (const job of this.jobs) job.abort.abort();
    const waits: Promise<void>[] = [];
    for (const srv of this.servers) {
      waits.push(new Promise<void>((resolve) => srv.close(() => resolve())));
    }
    for (const s of this.sockets) {
      waits.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
      s.destroy();
    }
    for (const job of this.jobs) waits.push(job.done);
    this.stopping = Promise.all(waits).then(() => {
      this.ctx.log('info', 'stopped peer transport', { 'local-member-id': hexId(this.memberId) });
    });
    return this.stopping;
  }

  private isStopped(): boolean {
    return this.state === 'stopped';
  }

  private listenOn(host: string, port: number): Promise<{ host: string; port: number }> {
    const srv = createServer((socket) => {
      if (this.isStopped()) {
        socket.destroy();
        return;
      }
      acceptConnection(socket, this.ctx, this.host);
    });
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      srv.once('error', onError);
      srv.listen({ host, port }, () => {
        srv.off('error', onError);
        srv.on('error', (err) => this.ctx.log('error', 'peer listener failed', { error: err.message }));
        const a = srv.address();
        if (a === null || typeof a === 'string') {
          reject(new Error('listener has no TCP address'));
          return;
        }
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  private track(s: Socket): void {
    if (this.isStopped()) {
      s.destroy();
    }
    if (s.destroyed && s.closed) return;
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  private parseUrls(id: bigint, urls: string[]): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const u of urls) {
      const a = parsePeerUrl(u);
      if (a === undefined) {
        this.ctx.log('warn', 'ignored unusable peer URL', { 'remote-peer-id': hexId(id), url: u });
      } else {
        out.push(a);
      }
    }
    return out;
  }

  /**
   * Writes every queued message now, one socket write per peer, instead of on the next turn.
   * Callers on a latency-critical path use it right after `send` (for instance before blocking
   * on a disk sync). Unreachable reports still wait for the scheduled turn, so this never calls
   * back synchronously.
   */
  flush(): void {
    if (this.isStopped()) return;
    for (const p of this.dirty) p.writeQueued();
  }

  private scheduleFlush(p: PeerSender): void {
    if (this.isStopped()) return;
    this.dirty.add(p);
    if (this.flushHandle === undefined) this.flushHandle = setImmediate(() => this.flushAll());
  }

  private flushAll(): void {
    this.flushHandle = undefined;
    const list = [...this.dirty];
    this.dirty.clear();
    for (const p of list) p.flush();
  }

  private adoptStream(id: NodeId, s: Socket): void {
    const key = BigInt.asUintN(64, id);
    const old = this.inbound.get(key);
    if (old !== undefined && old !== s) old.destroy();
    this.inbound.set(key, s);
    s.once('close', () => {
      if (this.inbound.get(key) === s) this.inbound.delete(key);
    });
    this.ctx.log('info', 'established TCP streaming connection with remote peer', {
      'local-member-id': hexId(this.memberId),
      'remote-peer-id': hexId(key),
      direction: 'incoming',
    });
  }

  private deliver(m: Message): void {
    if (this.isStopped()) return;
    if (!this.peers.has(BigInt.asUintN(64, m.from))) {
      this.ctx.log('debug', 'dropped message from a member that is no longer a peer', { 'remote-peer-id': hexId(m.from) });
      return;
    }
    this.call('onMessage', () => this.o.onMessage(m));
  }

  private reportRemoved(by: bigint): void {
    if (this.removedReported || this.isStopped()) return;
    this.removedReported = true;
    this.ctx.log('warn', 'this member was removed from the cluster', {
      'local-member-id': hexId(this.memberId),
      'reported-by': hexId(by),
    });
    const cb = this.o.onRemoved;
    if (cb !== undefined) this.call('onRemoved', () => cb.call(this.o));
  }

  /** Runs a user callback unless stopped; logs what it throws. */
  private call(name: string, fn: () => void): void {
    if (this.isStopped()) return;
    try {
      fn();
    } catch (err) {
      this.ctx.log('error', 'transport callback threw', {
        callback: name,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

function queryOne(host: string, port: number, timeoutMs: number): Promise<MembersInfo> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    const reader = new FrameReader();
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('timed out'));
    }, timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.on('error', fail);
    sock.on('connect', () => {
      sock.write(encodeHello({ version: PROTOCOL_VERSION, kind: ConnectionKind.Query, clusterId: 0n, from: 0n, to: 0n }));
    });
    sock.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      try {
        const f = reader.next();
        if (f === undefined) return;
        if (f.type !== FrameType.MembersInfo) throw new Error(`unexpected frame type ${f.type}`);
        const j = JSON.parse(Buffer.from(f.payload).toString('utf8')) as {
          clusterId: string;
          members: { id: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[];
        };
        clearTimeout(timer);
        sock.destroy();
        resolve({
          clusterId: BigInt(`0x${j.clusterId}`),
          members: j.members.map((m) => ({ ...m, id: BigInt(`0x${m.id}`) })),
        });
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
      }
    });
    sock.on('close', () => fail(new Error('connection closed')));
  });
}
