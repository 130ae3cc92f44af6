import { MessageType, NONE } from './types';
import type { Message, NodeId } from './types';

/** A message of kind `type` to `to` with every other field at its zero value. */
export function newMessage(type: MessageType, to: NodeId): Message {
  return {
    type,
    from: NONE,
    to,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

/** True for kinds that never cross the network. */
export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

/** True for answers to requests (these are only accepted from members of the configuration). */
export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  );
}

/** The answer kind for a vote request kind. */
export function voteResponseType(t: MessageType.MsgVote | MessageType.MsgPreVote): MessageType {
  return t === MessageType.MsgVote ? MessageType.MsgVoteResp : MessageType.MsgPreVoteResp;
}

/** The context marking a vote request as part of a leadership transfer (etcd's value). */
export const CAMPAIGN_TRANSFER: Uint8Array = new Uint8Array(Array.from('CampaignTransfer', (c) => c.charCodeAt(0)));

/** True if `ctx` is the campaign-transfer marker. */
export function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.length !== CAMPAIGN_TRANSFER.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER[i]) return false;
  return true;
}

/** A short human-readable form of a message kind, e.g. "MsgApp". */
export function messageTypeName(t: MessageType): string {
  return MessageType[t] ?? `MsgUnknown(${t})`;
}
