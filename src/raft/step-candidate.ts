import type { Raft } from './raft';
import { bcastAppend } from './replication';
import { handleAppendEntries, handleHeartbeat, handleSnapshot } from './step-follower';
import { MessageType, NONE } from './types';
import type { Message } from './types';

/**
 * Candidate and pre-candidate message handling (after term checks). Proposals, read requests
 * and transfer requests are dropped: there is no leader to forward them to.
 */
export function stepCandidate(r: Raft, m: Message): boolean {
  const myVoteResp = r.role === 'pre-candidate' ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
  switch (m.type) {
    case MessageType.MsgProp:
      return r.drop('no leader');
    case MessageType.MsgReadIndex:
      return r.drop('no leader');
    case MessageType.MsgTransferLeader:
      return r.drop('no leader');
    case MessageType.MsgApp:
      // A leader exists for our term (m.term === term here): follow it.
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      return true;
    case MessageType.MsgHeartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return true;
    case MessageType.MsgSnap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return true;
    case myVoteResp: {
      const res = r.poll(m.from, m.type, !m.reject);
      if (res === 'won') {
        if (r.role === 'pre-candidate') {
          r.campaign('election');
        } else {
          r.becomeLeader();
          bcastAppend(r);
        }
      } else if (res === 'lost') {
        // A rejected pre-vote may carry a later term; we keep ours.
        r.becomeFollower(r.term, NONE);
      }
      return true;
    }
    default:
      return true;
  }
}
