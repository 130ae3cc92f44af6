import { applyChange } from './confchange/changer';
import { decodeConfChange } from './confchange/codec';
import { InvariantError } from './errors';
import { newMessage } from './message';
import { voteResult } from './quorum/majority';
import type { Raft } from './raft';
import {
  bcastAppend,
  bcastHeartbeat,
  bcastHeartbeatWithCtx,
  commitForPeers,
  maybeSendAppend,
  sendAppend,
  sendTimeoutNow,
} from './replication';
import { EntryType, MessageType, NONE } from './types';
import type { Message } from './types';

const EMPTY = new Uint8Array(0);

/**
 * The leader's message handling (after term checks). Returns false when a proposal or a
 * transfer request is dropped.
 */
export function stepLeader(r: Raft, m: Message): boolean {
  switch (m.type) {
    case MessageType.MsgBeat:
      bcastHeartbeat(r);
      return true;
    case MessageType.MsgCheckQuorum:
      if (!r.prs.quorumActive()) {
        r.logger('warn', 'stepping down: a quorum was not active within an election timeout', {
          id: r.id,
          term: r.term,
        });
        r.becomeFollower(r.term, NONE);
        return true;
      }
      // Start the next check window: everyone but us must be heard from again.
      for (const [id, pr] of r.prs.progress) if (id !== r.id) pr.recentActive = false;
      return true;
    case MessageType.MsgProp:
      return handleProposal(r, m);
    case MessageType.MsgReadIndex:
      handleReadIndex(r, m);
      return true;
    default:
      break;
  }

  const pr = r.prs.progress.get(m.from);
  if (pr === undefined) {
    if (m.type === MessageType.MsgTransferLeader) return r.drop('transferee is not a member');
    return true;
  }
  switch (m.type) {
    case MessageType.MsgAppResp: {
      pr.recentActive = true;
      if (m.reject) {
        // Fast backtracking: the follower told us the last index (and its term) that might
        // match; skip our entries above that term too.
        let nextProbe = m.rejectHint;
        if (m.logTerm > 0) nextProbe = r.log.findConflictByTerm(m.rejectHint, m.logTerm);
        if (pr.maybeDecrTo(m.index, nextProbe)) {
          if (pr.state === 'replicate') pr.becomeProbe();
          sendAppend(r, m.from);
        }
        return true;
      }
      const oldPaused = pr.isPaused();
      const announced = commitForPeers(r);
      if (!pr.maybeUpdate(m.index)) return true;
      if (pr.state === 'probe') {
        pr.becomeReplicate();
      } else if (pr.state === 'snapshot' && pr.match + 1 >= r.log.firstIndex()) {
        // The follower can now be caught up from the log, whatever snapshot it installed.
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') {
        pr.inflights.freeLE(m.index);
      }
      if (r.maybeCommit()) {
        releasePendingReadIndexMessages(r);
        bcastAppend(r);
      } else if (commitForPeers(r) > announced) {
        // The commit was reached earlier counting our unpersisted copy; now followers alone
        // hold it durably, so it can be announced.
        bcastAppend(r);
      } else if (oldPaused) {
        sendAppend(r, m.from);
      }
      // The window may have room for several messages now.
      while (maybeSendAppend(r, m.from, false)) {
        // keep sending
      }
      if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
        r.logger('info', 'transferee caught up, sending MsgTimeoutNow', { id: r.id, to: m.from });
        sendTimeoutNow(r, m.from);
      }
      return true;
    }
    case MessageType.MsgHeartbeatResp: {
      pr.recentActive = true;
      pr.msgAppFlowPaused = false;
      // The member is alive; let one more append through a full window so progress resumes
      // after lost messages.
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.match < r.log.lastIndex()) sendAppend(r, m.from);
      const ctx = m.context;
      if (ctx === undefined || ctx.length === 0) return true;
      const acks = r.readOnly.recvAck(m.from, ctx);
      if (acks === undefined) return true;
      if (voteResult(r.prs.config.voters, (id) => (acks.has(id) ? true : undefined)) !== 'won') return true;
      for (const rs of r.readOnly.advance(ctx)) respondToReadIndex(r, rs.req, rs.index);
      return true;
    }
    case MessageType.MsgSnapStatus:
      if (pr.state !== 'snapshot') return true;
      if (m.reject) pr.pendingSnapshot = 0;
      pr.becomeProbe();
      // Wait for an answer (append or heartbeat) before probing again.
      pr.msgAppFlowPaused = true;
      return true;
    case MessageType.MsgUnreachable:
      // Appends in flight were probably lost; fall back to probing.
      if (pr.state === 'replicate') pr.becomeProbe();
      return true;
    case MessageType.MsgTransferLeader: {
      if (pr.isLearner) return r.drop('cannot transfer leadership to a learner');
      const transferee = m.from;
      if (r.leadTransferee !== NONE) {
        if (r.leadTransferee === transferee) return true;
        r.abortLeaderTransfer();
      }
      if (transferee === r.id) return true;
      // The transfer must finish within an election timeout.
      r.electionElapsed = 0;
      r.leadTransferee = transferee;
      r.logger('info', 'starting leadership transfer', { id: r.id, to: transferee, term: r.term });
      if (pr.match === r.log.lastIndex()) sendTimeoutNow(r, transferee);
      else sendAppend(r, transferee);
      return true;
    }
    default:
      return true;
  }
}

function handleProposal(r: Raft, m: Message): boolean {
  if (m.entries.length === 0) throw new InvariantError('stepped an empty proposal');
  if (!r.prs.progress.has(r.id)) return r.drop('leader is not in the configuration');
  if (r.leadTransferee !== NONE) return r.drop('leadership transfer in progress');
  let confChanges = 0;
  let confAt = -1;
  for (let k = 0; k < m.entries.length; k++) {
    const e = m.entries[k]!;
    if (e.type !== EntryType.ConfChange) continue;
    confChanges++;
    confAt = k;
    if (confChanges > 1) return r.drop('more than one configuration change in a proposal');
    if (r.pendingConfIndex > r.log.applied) return r.drop('a configuration change is still pending');
    try {
      applyChange(r.prs.config, decodeConfChange(e.data));
    } catch (err) {
      return r.drop(`invalid configuration change: ${(err as Error).message}`);
    }
  }
  if (confAt >= 0) r.pendingConfIndex = r.log.lastIndex() + confAt + 1;
  r.appendEntries(m.entries);
  bcastAppend(r);
  return true;
}

/** Leader: answers or queues a read request. */
function handleReadIndex(r: Raft, m: Message): void {
  if (r.prs.isSingleton()) {
    // Nobody else can be leader: the commit index is safe to read at.
    respondToReadIndex(r, m, r.log.committed);
    return;
  }
  if (!r.committedEntryInCurrentTerm()) {
    // Our commit index may lag the real one until an entry of this term commits (thesis §6.4).
    r.pendingReadIndexMessages.push(m);
    return;
  }
  const ctx = m.context ?? EMPTY;
  r.readOnly.addRequest(r.log.committed, m, ctx);
  r.readOnly.recvAck(r.id, ctx);
  bcastHeartbeatWithCtx(r, ctx);
}

function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !r.committedEntryInCurrentTerm()) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) handleReadIndex(r, m);
}

/** Delivers a read index: locally as a ReadState, or to the follower that asked. */
function respondToReadIndex(r: Raft, req: Message, index: number): void {
  const ctx = req.context ?? EMPTY;
  if (req.from === NONE || req.from === r.id) {
    r.readStates.push({ index, ctx });
    return;
  }
  const resp = newMessage(MessageType.MsgReadIndexResp, req.from);
  resp.index = index;
  resp.context = ctx;
  r.send(resp);
}
