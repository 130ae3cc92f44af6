/**
 * The leader's outgoing traffic: appends (or snapshots when entries are compacted), heartbeats,
 * transfer signals, and the commit index it may announce.
 */
import { payloadSize } from './entry-size';
import { CompactedError, InvariantError } from './errors';
import { newMessage } from './message';
import { committedIndex } from './quorum/majority';
import type { Raft } from './raft';
import type { Progress } from './tracker/progress';
import { MessageType } from './types';
import type { Entry, NodeId } from './types';

/** Sends an append (or a probe) to `to` even if it carries no entries. */
export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/**
 * Sends the next append to `to` unless its progress is paused, or unless there is nothing to
 * send and `sendIfEmpty` is false. Falls back to a snapshot when the entries it needs are
 * compacted. Returns true if a message was queued.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.prs.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.log.termOrUndefined(prevIndex);
  let ents: Entry[] | undefined;
  if (prevTerm !== undefined) {
    try {
      ents = r.log.entriesFrom(pr.next, r.maxMsgSize);
    } catch (e) {
      if (!(e instanceof CompactedError)) throw e;
    }
  }
  if (prevTerm === undefined || ents === undefined) return sendSnapshot(r, to, pr);
  if (ents.length === 0 && !sendIfEmpty) return false;
  const m = newMessage(MessageType.MsgApp, to);
  m.index = prevIndex;
  m.logTerm = prevTerm;
  m.entries = ents;
  m.commit = commitForPeers(r);
  pr.updateOnEntriesSend(ents.length, payloadSize(ents), pr.next);
  r.send(m);
  return true;
}

function sendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.logger('debug', 'not sending snapshot to an inactive member', { id: r.id, to });
    return false;
  }
  const snap = r.log.snapshot();
  if (snap.meta.index === 0) {
    throw new InvariantError('entries needed by a follower are compacted but there is no snapshot');
  }
  pr.becomeSnapshot(snap.meta.index);
  const m = newMessage(MessageType.MsgSnap, to);
  m.snapshot = snap;
  r.logger('debug', 'sending snapshot', { id: r.id, to, index: snap.meta.index, term: snap.meta.term });
  r.send(m);
  return true;
}

/**
 * The commit index this member may announce: never beyond its own durable log. A leader
 * counts its unpersisted entries toward commit (a single voter commits at once) and may send
 * before it persists, so an announced commit index must not cover entries that a crash could
 * still take back from it.
 */
export function commitForPeers(r: Raft): number {
  const committed = r.log.committed;
  const durable = r.log.unstable.offset - 1;
  if (committed <= durable || r.role !== 'leader') return Math.min(committed, durable);
  // Count our own copy only as far as it is durable (followers acknowledge only durable entries).
  const selfId = r.id;
  const q = committedIndex(r.prs.config.voters, (id) => {
    const pr = r.prs.progress.get(id);
    if (pr === undefined) return 0;
    return id === selfId ? Math.min(pr.match, durable) : pr.match;
  });
  return Math.min(committed, q);
}

/**
 * Called after the driver persisted entries: if that lets the leader announce a higher commit
 * index than `announcedBefore`, tell the followers now rather than at the next heartbeat.
 */
export function announceCommitIfDurable(r: Raft, announcedBefore: number): void {
  if (r.role === 'leader' && commitForPeers(r) > announcedBefore) bcastAppend(r);
}

/** Sends a heartbeat to `to`, carrying a commit index the member is known to hold. */
export function sendHeartbeat(r: Raft, to: NodeId, ctx: Uint8Array | undefined): void {
  const pr = r.prs.progress.get(to);
  const m = newMessage(MessageType.MsgHeartbeat, to);
  m.commit = Math.min(pr === undefined ? 0 : pr.match, commitForPeers(r));
  if (ctx !== undefined) m.context = ctx;
  r.send(m);
}

/** Sends appends to every other member (used when the log or the commit index moved). */
export function bcastAppend(r: Raft): void {
  for (const id of r.prs.progress.keys()) {
    if (id !== r.id) sendAppend(r, id);
  }
}

/** Sends heartbeats to every other member, carrying the newest pending read context. */
export function bcastHeartbeat(r: Raft): void {
  bcastHeartbeatWithCtx(r, r.readOnly.lastPendingContext());
}

/** Sends heartbeats to every other member with `ctx`. */
export function bcastHeartbeatWithCtx(r: Raft, ctx: Uint8Array | undefined): void {
  for (const id of r.prs.progress.keys()) {
    if (id !== r.id) sendHeartbeat(r, id, ctx);
  }
}

/** Tells `to` to campaign at once (leader transfer). */
export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send(newMessage(MessageType.MsgTimeoutNow, to));
}
