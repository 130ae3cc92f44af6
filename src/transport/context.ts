/** What the parts of the transport share: identity, clock, logging, socket tracking, callbacks. */
import type { Socket } from 'node:net';
import type { Message, NodeId } from '../raft/types';
import type { PeerCounters, TransportLogger } from './options';

/**
 * The services a transport gives its connection handlers. Callback methods (`deliver`,
 * `unreachable`, `snapshotStatus`, `removed`) do nothing once the transport is stopping, and
 * catch and log what the user callback throws.
 */
export interface TransportContext {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly log: TransportLogger;
  /** Current time in ms. */
  now(): number;
  /** Time allowed to connect and complete a handshake, in ms. */
  readonly dialTimeoutMs: number;
  /** Longest silence of a snapshot stream, in ms, before it is abandoned. */
  readonly snapshotIdleTimeoutMs: number;
  /** Registers a socket so that `stop()` destroys it and waits for its close. */
  track(socket: Socket): void;
  /** True once `stop()` was called. */
  stopped(): boolean;
  /** The counters of a known peer, or undefined. */
  counters(id: bigint): PeerCounters | undefined;
  /** Passes a received message to `onMessage`. */
  deliver(m: Message): void;
  /** Calls `onUnreachable(id)`. */
  unreachable(id: NodeId): void;
  /** Calls `onSnapshotStatus(id, ok)`. */
  snapshotStatus(id: NodeId, ok: boolean): void;
  /** A peer refused us as removed: calls `onRemoved` (the first time only). */
  removed(by: bigint): void;
}
