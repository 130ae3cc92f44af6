import type { Raft } from './raft';
import { MessageType, NONE } from './types';
import type { Message } from './types';

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
      r.handleAppendEntries(m);
      return true;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleHeartbeat(m);
      return true;
    case MessageType.MsgSnap:
      r.electionElapsed = 0;
      r.lead = m.from;
      r.handleSnapshot(m);
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
