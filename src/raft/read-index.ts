import type { Message, NodeId } from './types';

/** One read request waiting for a quorum of heartbeat acknowledgements. */
export interface ReadIndexStatus {
  /** The request (local or forwarded by a follower). */
  req: Message;
  /** The leader's commit index when the request arrived: the read index. */
  index: number;
  /** Members that acknowledged a heartbeat carrying this request's context. */
  acks: Set<NodeId>;
}

/** A string key for a request context (contexts are short byte strings). */
export function contextKey(ctx: Uint8Array): string {
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

/**
 * The leader's queue of linearizable read requests (ReadIndex, Raft thesis §6.4). A request is
 * recorded with the commit index at arrival, its context rides on the next heartbeat round, and
 * once a quorum acknowledges a heartbeat carrying the context, that request and every earlier
 * one are answered: the leader was still the leader when they arrived.
 *
 * Contexts identify requests: they must be unique among pending requests (a repeated context is
 * ignored while the first is pending).
 */
export class ReadOnlyQueue {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Context keys in arrival order. */
  private queue: string[] = [];

  /** Records `req` (whose context is `ctx`) with read index `index`. */
  addRequest(index: number, req: Message, ctx: Uint8Array): void {
    const key = contextKey(ctx);
    if (this.pending.has(key)) return;
    this.pending.set(key, { req, index, acks: new Set() });
    this.queue.push(key);
  }

  /** Records that `id` acknowledged the heartbeat carrying `ctx`; returns the acks so far. */
  recvAck(id: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (rs === undefined) return undefined;
    rs.acks.add(id);
    return rs.acks;
  }

  /**
   * Removes and returns the request with context `ctx` and every request queued before it, in
   * arrival order. Returns an empty array if `ctx` is unknown.
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const keys = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of keys) {
      const rs = this.pending.get(k);
      if (rs !== undefined) {
        out.push(rs);
        this.pending.delete(k);
      }
    }
    return out;
  }

  /** The context of the newest pending request (to piggyback on a heartbeat), if any. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    if (key === undefined) return undefined;
    return this.pending.get(key)?.req.context;
  }

  /** Number of pending requests. */
  get size(): number {
    return this.queue.length;
  }
}
