/**
 * Membership: applying a committed configuration change and installing a configuration
 * (progress kept for remaining members, fresh progress for new ones).
 */
import { applyChange } from './confchange/changer';
import type { MembershipConfig } from './confchange/changer';
import { ConfChangeError } from './errors';
import type { Raft } from './raft';
import { bcastAppend, maybeSendAppend, sendTimeoutNow } from './replication';
import type { Progress } from './tracker/progress';
import { NONE } from './types';
import type { ConfChange, ConfState, NodeId } from './types';


/**
 * Applies a committed configuration change. An invalid change (removing the last voter, node
 * id 0) is skipped on every member alike and the unchanged configuration is returned.
 */
export function applyConfChange(r: Raft, cc: ConfChange): ConfState {
  let cfg: MembershipConfig;
  try {
    cfg = applyChange(r.prs.config, cc);
  } catch (e) {
    if (!(e instanceof ConfChangeError)) throw e;
    r.logger('warn', 'skipping invalid configuration change', { id: r.id, error: e.message });
    return r.prs.confState();
  }
  return switchToConfig(r, cfg);
}

/** Installs `cfg`: keeps the progress of remaining members, adds fresh progress for new ones. */
export function switchToConfig(r: Raft, cfg: MembershipConfig): ConfState {
  const last = r.log.lastIndex();
  const old = r.prs.progress;
  const progress = new Map<NodeId, Progress>();
  const place = (id: NodeId, isLearner: boolean): void => {
    const pr = old.get(id);
    if (pr !== undefined) {
      pr.isLearner = isLearner;
      progress.set(id, pr);
    } else {
      // New members count as active so a quorum check right after adding them does not
      // depose the leader before they had a chance to answer.
      progress.set(id, r.prs.newProgress(0, Math.max(last, 1), isLearner, true));
    }
  };
  for (const id of cfg.voters) place(id, false);
  for (const id of cfg.learners) place(id, true);
  r.prs.setConfig(cfg);
  r.prs.progress = progress;
  const cs = r.prs.confState();
  if (r.role !== 'leader') return cs;
  const self = progress.get(r.id);
  if (self === undefined || self.isLearner) {
    stepDownAfterRemoval(r);
    return cs;
  }
  if (cs.voters.length === 0) return cs;
  if (r.maybeCommit()) {
    bcastAppend(r);
  } else {
    for (const id of progress.keys()) if (id !== r.id) maybeSendAppend(r, id, false);
  }
  if (r.leadTransferee !== NONE && !cfg.voters.has(r.leadTransferee)) r.abortLeaderTransfer();
  return cs;
}

function stepDownAfterRemoval(r: Raft): void {
  // Hand over to the most caught-up voter so the cluster need not wait for an election timeout.
  const last = r.log.lastIndex();
  let successor: NodeId = NONE;
  for (const id of r.prs.config.voters) {
    const pr = r.prs.progress.get(id);
    if (pr !== undefined && pr.match === last) {
      successor = id;
      break;
    }
  }
  r.logger('info', 'leader removed from the configuration, stepping down', { id: r.id, successor });
  r.becomeFollower(r.term, NONE);
  if (successor !== NONE) sendTimeoutNow(r, successor);
}