/**
 * The etcdserverpb.Cluster service: member list, add (voter or learner), remove, update, promote.
 * Changes go through the Raft log one at a time; responses carry the member list after the change.
 */
import { Errors } from '../errors';
import { nodeId } from '../raft/types';
import type { EtcdServer } from '../server/etcd-server';
import { computeMemberId } from '../server/ids';
import type { Member } from '../server/membership';
import { unary } from './handlers';
import type { Handlers } from './grpc-server';
import { Int64, toUBig } from './proto';
import { headerObject, memberObject } from './wire-objects';

function validUrls(urls: unknown): string[] {
  if (!Array.isArray(urls) || urls.length === 0) throw Errors.memberBadUrls();
  const out: string[] = [];
  for (const u of urls) {
    if (typeof u !== 'string') throw Errors.memberBadUrls();
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw Errors.memberBadUrls();
    }
    if ((p.protocol !== 'http:' && p.protocol !== 'https:') || p.port === '' || p.pathname !== '/') throw Errors.memberBadUrls();
    out.push(u);
  }
  return out;
}

/** Builds the Cluster handlers. */
export function clusterHandlers(s: EtcdServer, opts: { token: string; maxLearners: number }): Handlers {
  const list = (): Record<string, unknown>[] => s.membership.list().map(memberObject);
  // etcd's Cluster responses carry cluster id, member id and term, but no revision.
  const header = (): Record<string, unknown> => headerObject({ ...s.header(), revision: 0 });
  return {
    MemberList: unary(async (m) => {
      if (m.linearizable === true) await s.linearizableBarrier();
      return { header: header(), members: list() };
    }),
    MemberAdd: unary(async (m) => {
      const peerURLs = validUrls(m.peerURLs);
      const isLearner = m.isLearner === true;
      const all = s.membership.list();
      const used = new Set(all.flatMap((x) => x.peerURLs));
      if (peerURLs.some((u) => used.has(u))) throw Errors.peerUrlExists();
      if (isLearner && all.filter((x) => x.isLearner).length >= opts.maxLearners) throw Errors.tooManyLearners();
      const id = computeMemberId(peerURLs, opts.token, Date.now());
      if (s.membership.get(id) !== undefined || s.membership.isRemoved(id)) throw Errors.memberExists();
      const member: Member = { id, name: '', peerURLs, clientURLs: [], isLearner };
      await s.proposeConfChange({ type: isLearner ? 'add-learner' : 'add-node', nodeId: nodeId(id) }, member);
      return { header: header(), member: memberObject(member), members: list() };
    }),
    MemberRemove: unary(async (m) => {
      const id = toUBig(m.ID as Int64);
      if (s.membership.get(id) === undefined) {
        if (s.membership.isRemoved(id)) throw Errors.memberNotFound();
        throw Errors.memberNotFound();
      }
      await s.proposeConfChange({ type: 'remove-node', nodeId: nodeId(id) }, undefined);
      return { header: header(), members: list() };
    }),
    MemberUpdate: unary(async (m) => {
      const id = toUBig(m.ID as Int64);
      const peerURLs = validUrls(m.peerURLs);
      if (s.membership.get(id) === undefined) throw Errors.memberNotFound();
      const used = new Set(s.membership.list().filter((x) => x.id !== id).flatMap((x) => x.peerURLs));
      if (peerURLs.some((u) => used.has(u))) throw Errors.peerUrlExists();
      await s.write({ kind: 'member-update', memberId: id, peerURLs });
      return { header: header(), members: list() };
    }),
    MemberPromote: unary(async (m) => {
      const id = toUBig(m.ID as Int64);
      const member = s.membership.get(id);
      if (member === undefined) throw Errors.memberNotFound();
      if (!member.isLearner) throw Errors.memberNotLearner();
      // Only the leader knows how far the learner got (a follower asks it).
      if (!(await s.learnerReady(id))) throw Errors.learnerNotReady();
      await s.proposeConfChange({ type: 'add-node', nodeId: nodeId(id) }, { ...member, isLearner: false });
      return { header: header(), members: list() };
    }),
  };
}
