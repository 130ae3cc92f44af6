import { fromConfState } from './confchange/changer';
import { newMessage } from './message';
import type { Raft } from './raft';
import { switchToConfig } from './membership';
import { MessageType, NONE } from './types';
import type { Message, Snapshot } from './types';

const EMPTY = new Uint8Array(0);

/**
 * Follower message handling (after term checks): follows the leader's appends, heartbeats and
 * snapshots; forwards proposals, read requests and transfer requests to the leader (dropping
 * them when no leader is known); campaigns at once on MsgTimeoutNow.
 */
export function stepFollower(r: Raft, m: Message): boolean {
  switch (m.type) {
    case MessageType.MsgProp:
      if (r.lead === NONE) return r.drop('no leader');
      r.send({ ...m, to: r.lead });
      return true;
    case MessageType.MsgApp:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      return true;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return true;
    case MessageType.MsgSnap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return true;
    case MessageType.MsgTransferLeader:
      if (r.lead === NONE) return r.drop('no leader');
      r.send({ ...m, to: r.lead, term: 0 });
      return true;
    case MessageType.MsgTimeoutNow:
      // Leadership transfer: campaign right away, without pre-vote, overriding leases.
      r.logger('info', 'received MsgTimeoutNow, campaigning for leadership transfer', { id: r.id, term: r.term });
      r.hup('transfer');
      return true;
    case MessageType.MsgReadIndex:
      if (r.lead === NONE) return r.drop('no leader');
      r.send({ ...m, to: r.lead });
      return true;
    case MessageType.MsgReadIndexResp:
      r.readStates.push({ index: m.index, ctx: m.context ?? EMPTY });
      return true;
    default:
      return true;
  }
}

/** Follower: handles an append from the leader. */
export function handleAppendEntries(r: Raft, m: Message): void {
  const resp = newMessage(MessageType.MsgAppResp, m.from);
  if (m.index < r.log.committed) {
    resp.index = r.log.committed;
    r.send(resp);
    return;
  }
  const last = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (last >= 0) {
    resp.index = last;
    r.send(resp);
    return;
  }
  // Reject, hinting at the last entry that could match: skip every entry of ours whose term
  // is above the leader's term at m.index (they cannot match), so a divergent tail is
  // crossed one term at a time instead of one entry at a time.
  let hint = Math.min(m.index, r.log.lastIndex());
  hint = r.log.findConflictByTerm(hint, m.logTerm);
  resp.index = m.index;
  resp.reject = true;
  resp.rejectHint = hint;
  resp.logTerm = r.log.term(hint);
  r.send(resp);
}

/** Follower: handles a heartbeat (commit only up to what the leader knows we hold). */
export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  const resp = newMessage(MessageType.MsgHeartbeatResp, m.from);
  if (m.context !== undefined) resp.context = m.context;
  r.send(resp);
}

/** Follower: handles an incoming snapshot. */
export function handleSnapshot(r: Raft, m: Message): void {
  const resp = newMessage(MessageType.MsgAppResp, m.from);
  const s = m.snapshot;
  if (s !== undefined && restore(r, s)) {
    r.logger('info', 'restored snapshot', { id: r.id, index: s.meta.index, term: s.meta.term });
    resp.index = r.log.lastIndex();
  } else {
    resp.index = r.log.committed;
  }
  r.send(resp);
}

/**
 * Replaces the log and configuration with snapshot `s` if it is newer than the commit index
 * and includes this member. Returns false when it was ignored (or only fast-forwarded the
 * commit index because the log already holds its last entry).
 */
export function restore(r: Raft, s: Snapshot): boolean {
  if (s.meta.index <= r.log.committed) return false;
  if (r.role !== 'follower') {
    // Only followers receive snapshots; treat anything else as a sign of a newer term.
    r.logger('warn', 'snapshot received in a non-follower role', { id: r.id, role: r.role });
    r.becomeFollower(r.term + 1, NONE);
    return false;
  }
  const cs = s.meta.confState;
  if (!cs.voters.includes(r.id) && !cs.learners.includes(r.id)) {
    r.logger('warn', 'ignoring snapshot whose configuration does not include this member', {
      id: r.id,
      index: s.meta.index,
    });
    return false;
  }
  if (r.log.matchTerm(s.meta.index, s.meta.term)) {
    r.log.commitTo(s.meta.index);
    return false;
  }
  r.log.restore(s);
  r.prs.progress = new Map();
  r.prs.setConfig({ voters: new Set(), learners: new Set() });
  switchToConfig(r, fromConfState(cs));
  return true;
}
