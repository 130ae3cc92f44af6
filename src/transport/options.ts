/** Options, logger and statistics types of the peer transport. */
import type { Message, NodeId } from '../raft/types';

/** Severity of a transport log record. */
export type TransportLogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * A structured log sink. `fields` holds plain data (strings, numbers, booleans); ids are logged
 * as lowercase hex strings, as etcd prints them. Must not throw.
 */
export type TransportLogger = (level: TransportLogLevel, msg: string, fields?: Record<string, unknown>) => void;

/**
 * Configuration and callbacks of a {@link PeerTransport}.
 *
 * Callbacks are never invoked synchronously from inside a transport method (they run on a later
 * turn of the event loop), and never after `stop()` was called. An exception thrown by a
 * callback is logged and otherwise ignored.
 */
export interface TransportOptions {
  /** This member's id (non-zero). */
  memberId: bigint;
  /** The cluster id; connections from another cluster are refused. */
  clusterId: bigint;
  /** Addresses to listen on for peer connections; port 0 picks a free port. */
  listen: { host: string; port: number }[];
  /** Where the transport logs connection changes and refusals. */
  logger: TransportLogger;
  /** A Raft message arrived from a peer (addressed to this member). */
  onMessage(m: Message): void;
  /**
   * A snapshot is arriving: `m` is the MsgSnap, `chunks` yields the state data as it arrives
   * (one consumer; iteration throws if the stream breaks or its checksum does not match). The
   * MsgSnap goes to `onMessage` only after the returned promise resolves and the checksum
   * matched. A rejection means the snapshot was not taken; the sender is told so.
   */
  onSnapshot(m: Message, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * Messages to `id` were dropped or may have been lost: the peer is disconnected, its connection
   * just broke, or its queue is full. Reported at most once per peer per connection attempt, and
   * again after a full queue drained.
   */
  onUnreachable(id: NodeId): void;
  /** Outcome of a snapshot sent to `id`: true once the receiver took it, false otherwise. */
  onSnapshotStatus(id: NodeId, ok: boolean): void;
  /** A peer refused this member because it was removed from the cluster (called once). */
  onRemoved?(): void;
  /** Bound of each peer's outgoing queue, in messages (default 4096). */
  /** Answers requests of peers (see ConnectionKind.Rpc); absent: every request fails. */
  onRpc?(from: NodeId, req: unknown): Promise<unknown>;
  /** Answers member queries from members joining the cluster (see ConnectionKind.Query). */
  membersQuery?(): MembersInfo;
  maxQueue?: number;
  /** Bound of each peer's outgoing queue, in encoded bytes (default 64 MiB). */
  maxQueueBytes?: number;
  /** Clock for `activeSince` (ms since the epoch; default `Date.now`). */
  now?: () => number;
  /** Source of jitter in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** Reconnection backoff in ms (default 50 doubling to 2000). */
  backoff?: { minMs: number; maxMs: number };
  /** Time allowed to connect and complete a handshake, in ms (default 5000). */
  dialTimeoutMs?: number;
  /** Largest snapshot chunk sent, in bytes (default 256 KiB). */
  snapshotChunkBytes?: number;
  /**
   * A snapshot stream with no traffic in either direction for this long, in ms, is abandoned by
   * the side that notices (default 30,000): the sender reports the snapshot as failed, so the
   * leader tries again, instead of both ends waiting for each other forever.
   */
  snapshotIdleTimeoutMs?: number;
}

/** Counters and state of one peer, as returned by `stats()`. Counters only grow. */
export interface PeerStats {
  /** The outgoing stream is connected and past its handshake. */
  active: boolean;
  /** When the outgoing stream became active (ms, from the `now` clock); absent when inactive. */
  activeSince?: number;
  /** Messages handed to the socket. */
  sentMessages: number;
  /** Bytes handed to the socket for those messages, frame headers included. */
  sentBytes: number;
  /** Socket writes that carried messages (one per batch). */
  writes: number;
  /** Messages received from the peer and passed to `onMessage` (snapshots included). */
  receivedMessages: number;
  /** Bytes of those messages, frame headers included. */
  receivedBytes: number;
  /** Messages to the peer that were dropped (disconnected, queue full, removed, stopped). */
  dropped: number;
  /** Messages waiting in the queue now. */
  queuedMessages: number;
  /** Encoded bytes waiting in the queue now. */
  queuedBytes: number;
  /** Times `onUnreachable` was called for the peer. */
  unreachableReports: number;
  /** Connection attempts of the outgoing stream. */
  dials: number;
  /** Snapshots the peer confirmed. */
  snapshotsSent: number;
  /** Snapshots that failed to reach the peer or were refused by it. */
  snapshotsFailed: number;
  /** Snapshot data bytes written to the peer (chunk payloads). */
  snapshotSentBytes: number;
  /** Snapshots received from the peer and delivered. */
  snapshotsReceived: number;
  /** Snapshot data bytes received from the peer (chunk payloads). */
  snapshotReceivedBytes: number;
  /** Times reading a snapshot from the peer was paused because the consumer was behind. */
  snapshotReadPauses: number;
}

/** A snapshot of the transport's counters; a plain object the caller owns. */
export interface TransportStats {
  /** Per peer, keyed by the member id in lowercase hex. */
  peers: Record<string, PeerStats>;
  /** Messages dropped because their target was not a known peer. */
  droppedUnknownPeer: number;
  /** Incoming connections refused at the handshake. */
  refusedConnections: number;
}

/** Mutable per-peer counters (the fields of {@link PeerStats} that are counters). */
export type PeerCounters = Omit<PeerStats, 'active' | 'activeSince' | 'queuedMessages' | 'queuedBytes'>;

/** A zeroed set of counters. */
export function newPeerCounters(): PeerCounters {
  return {
    sentMessages: 0,
    sentBytes: 0,
    writes: 0,
    receivedMessages: 0,
    receivedBytes: 0,
    dropped: 0,
    unreachableReports: 0,
    dials: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotSentBytes: 0,
    snapshotsReceived: 0,
    snapshotReceivedBytes: 0,
    snapshotReadPauses: 0,
  };
}

/** Formats a member or cluster id as etcd prints it: lowercase hex. */
export function hexId(id: bigint): string {
  return BigInt.asUintN(64, id).toString(16);
}

/** A member as a membership query reports it. */
export interface MemberInfo {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** The answer to a membership query. */
export interface MembersInfo {
  clusterId: bigint;
  members: MemberInfo[];
}
