/**
 * Errors raised by the Raft core. `InvariantError` means a bug or corrupted input from the
 * driver; every other class is an expected, recoverable failure.
 */

/** A broken invariant: a bug in the core or its driver, or corrupted persisted state. Not recoverable. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/**
 * A proposal (entry, conf change, leadership transfer request) was not accepted: there is no
 * known leader, a leadership transfer is in progress, this member is not in the configuration,
 * or a configuration change is still pending. The message matches etcd's `ErrProposalDropped`.
 */
export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError';
  /** Why the proposal was dropped (for logs; not part of the message). */
  readonly reason: string;
  constructor(reason: string) {
    super('raft proposal dropped');
    this.reason = reason;
  }
}

/** A configuration change that cannot be applied to the current configuration. */
export class ConfChangeError extends Error {
  override readonly name = 'ConfChangeError';
}

/** Storage: the requested index is at or below the snapshot, its entry is gone. */
export class CompactedError extends Error {
  override readonly name = 'CompactedError';
  constructor() {
    super('requested index is unavailable due to compaction');
  }
}

/** Storage: the requested index is beyond the last stored entry. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
  constructor() {
    super('requested entry at index is unavailable');
  }
}

/** Storage: the snapshot being applied or created is not newer than the stored one. */
export class SnapshotOutOfDateError extends Error {
  override readonly name = 'SnapshotOutOfDateError';
  constructor() {
    super('requested index is older than the existing snapshot');
  }
}

/** A byte string is not a valid encoded message or configuration change. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}
