/** Test helpers for the peer transport: recording members, message builders, polling. */
import type { Server } from 'node:net';
import { EntryType, MessageType, nodeId } from '../../../src/raft/types';
import type { Message, NodeId } from '../../../src/raft/types';
import { PeerTransport } from '../../../src/transport/peer-transport';
import type { TransportLogLevel, TransportOptions } from '../../../src/transport/peer-transport';

/** One log record captured by a member's logger. */
export interface LogRecord {
  level: TransportLogLevel;
  msg: string;
  fields: Record<string, unknown>;
}

/** A transport plus everything its callbacks reported. */
export interface Member {
  id: NodeId;
  t: PeerTransport;
  url: string;
  port: number;
  messages: Message[];
  unreachable: NodeId[];
  snapshotStatus: { id: NodeId; ok: boolean }[];
  /** Times onRemoved was called. */
  readonly removed: number;
  logs: LogRecord[];
  events: string[];
}

/** Options for {@link startMember}; `onSnapshot` defaults to a consumer that reads everything. */
export interface MemberOptions {
  clusterId?: bigint;
  port?: number;
  maxQueue?: number;
  onSnapshot?: TransportOptions['onSnapshot'];
  backoff?: { minMs: number; maxMs: number };
  snapshotIdleTimeoutMs?: number;
  start?: boolean;
}

const open: PeerTransport[] = [];

/** Creates (and by default starts) a member on 127.0.0.1; remembered for {@link stopAll}. */
export async function startMember(id: bigint, o: MemberOptions = {}): Promise<Member> {
  const messages: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshotStatus: { id: NodeId; ok: boolean }[] = [];
  const logs: LogRecord[] = [];
  const events: string[] = [];
  const removed = { count: 0 };
  const opts: TransportOptions = {
    memberId: id,
    clusterId: o.clusterId ?? 0x1000n,
    listen: [{ host: '127.0.0.1', port: o.port ?? 0 }],
    logger: (level, msg, fields) => logs.push({ level, msg, fields: fields ?? {} }),
    onMessage: (msg) => {
      messages.push(msg);
      events.push(`message:${MessageType[msg.type]}`);
    },
    onSnapshot:
      o.onSnapshot ??
      (async (_msg, chunks) => {
        for await (const c of chunks) void c;
      }),
    onUnreachable: (peer) => unreachable.push(peer),
    onSnapshotStatus: (peer, ok) => snapshotStatus.push({ id: peer, ok }),
    onRemoved: () => {
      removed.count++;
    },
  };
  if (o.maxQueue !== undefined) opts.maxQueue = o.maxQueue;
  if (o.backoff !== undefined) opts.backoff = o.backoff;
  if (o.snapshotIdleTimeoutMs !== undefined) opts.snapshotIdleTimeoutMs = o.snapshotIdleTimeoutMs;
  const t = new PeerTransport(opts);
  open.push(t);
  let port = 0;
  if (o.start !== false) {
    const [addr] = await t.start();
    port = addr!.port;
  }
  return {
    id: nodeId(id),
    t,
    url: `http://127.0.0.1:${port}`,
    port,
    messages,
    unreachable,
    snapshotStatus,
    get removed() {
      return removed.count;
    },
    logs,
    events,
  };
}

/** Makes every member in `ms` a peer of every other one. */
export function mesh(...ms: Member[]): void {
  for (const a of ms) for (const b of ms) if (a !== b) a.t.addPeer(b.id, [b.url]);
}

/** Stops every member created since the last call. */
export async function stopAll(): Promise<void> {
  const list = open.splice(0);
  await Promise.all(list.map((t) => t.stop()));
}

/** A message of type `type` from → to, with `index` as a sequence number and optional entry data. */
export function msg(from: bigint, to: bigint, index: number, data?: Uint8Array, type = MessageType.MsgApp): Message {
  return {
    type,
    from: nodeId(from),
    to: nodeId(to),
    term: 3,
    logTerm: 2,
    index,
    entries: data === undefined ? [] : [{ term: 3, index: index + 1, type: EntryType.Normal, data }],
    commit: index,
    reject: false,
    rejectHint: 0,
  };
}

/** A MsgSnap from → to with snapshot metadata at `index`. */
export function snapMsg(from: bigint, to: bigint, index: number): Message {
  return {
    ...msg(from, to, 0, undefined, MessageType.MsgSnap),
    snapshot: {
      meta: { index, term: 3, confState: { voters: [nodeId(from), nodeId(to)], learners: [] } },
      data: new Uint8Array([1, 2, 3]),
    },
  };
}

/** Polls `cond` every few ms until it holds; throws with `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves on the next turn of the event loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Listens on 127.0.0.1 port 0 and returns the server and its port. */
export function listenRaw(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const a = server.address();
      if (a === null || typeof a === 'string') reject(new Error('no address'));
      else resolve(a.port);
    });
  });
}

import { freePort } from '../../../scripts/free-port';

export { freePort };

/** Closes a server, resolving when it is closed. */
export function closeServer(s: Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

/** Deterministic pseudo-random bytes (xorshift32) so failures reproduce. */
export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
