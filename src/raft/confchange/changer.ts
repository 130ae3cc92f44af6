import { ConfChangeError } from '../errors';
import { NONE } from '../types';
import type { ConfChange, ConfState, NodeId } from '../types';

/** A membership configuration: voters and learners, always disjoint. */
export interface MembershipConfig {
  voters: Set<NodeId>;
  learners: Set<NodeId>;
}

/**
 * Computes the configuration that results from applying `cc` to `cur`, without touching `cur`.
 * Only single-step changes exist, so at most one voter changes per call.
 *
 * - add-node: adds a voter; promotes a learner; no-op for an existing voter.
 * - add-learner: adds a learner; demotes a voter; no-op for an existing learner.
 * - remove-node: removes a voter or learner; no-op for an unknown id.
 *
 * Throws ConfChangeError for node id 0 or when the change would leave no voter.
 */
export function applyChange(cur: MembershipConfig, cc: ConfChange): MembershipConfig {
  if (cc.nodeId === NONE) throw new ConfChangeError('invalid node id 0 in configuration change');
  const voters = new Set(cur.voters);
  const learners = new Set(cur.learners);
  switch (cc.type) {
    case 'add-node':
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case 'add-learner':
      voters.delete(cc.nodeId);
      learners.add(cc.nodeId);
      break;
    case 'remove-node':
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
  }
  const next = { voters, learners };
  checkConfig(next, cur.voters.size > 0);
  return next;
}

/**
 * Builds the configuration recorded in a snapshot or at start. Throws ConfChangeError if the
 * voter and learner lists overlap or contain node id 0. An empty configuration is allowed (a
 * member that has not learned its configuration yet).
 */
export function fromConfState(cs: ConfState): MembershipConfig {
  const next = { voters: new Set(cs.voters), learners: new Set(cs.learners) };
  for (const id of cs.voters) if (id === NONE) throw new ConfChangeError('invalid voter id 0');
  for (const id of cs.learners) {
    if (id === NONE) throw new ConfChangeError('invalid learner id 0');
    if (next.voters.has(id)) throw new ConfChangeError(`${id} is in voters and learners`);
  }
  return next;
}

/** The ConfState describing `cfg`, with ids sorted ascending (a new object). */
export function toConfState(cfg: MembershipConfig): ConfState {
  return { voters: sortIds(cfg.voters), learners: sortIds(cfg.learners) };
}

/** Returns the ids sorted ascending, as a new array. */
export function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return Array.from(ids).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function checkConfig(cfg: MembershipConfig, hadVoters: boolean): void {
  if (hadVoters && cfg.voters.size === 0) throw new ConfChangeError('removed all voters');
  for (const id of cfg.learners) {
    if (cfg.voters.has(id)) throw new ConfChangeError(`${id} is in voters and learners`);
  }
}
