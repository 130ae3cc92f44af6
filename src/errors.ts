/**
 * The catalog of expected failures. Each carries the gRPC status code and etcd's exact message,
 * because clients match errors on the message text. Translation to a gRPC status happens in
 * exactly one place (src/api/status.ts).
 */

/** gRPC status codes used by the catalog (numeric values as on the wire). */
export enum Code {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** An expected failure with the status code and message a client sees. */
export class EtcdError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

/** A bug or corrupted state: the process logs it and exits. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

function e(code: Code, message: string): () => EtcdError {
  return () => new EtcdError(code, message);
}

/** Factories for every expected error; call to get a fresh instance (stack traces stay meaningful). */
export const Errors = {
  compacted: e(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: e(Code.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  leaseNotFound: e(Code.NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExists: e(Code.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: e(Code.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  tooManyOps: e(Code.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(Code.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  requestTooLarge: e(Code.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  emptyKey: e(Code.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: e(Code.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: e(Code.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: e(Code.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  invalidSortOption: e(Code.INVALID_ARGUMENT, 'etcdserver: invalid sort option'),
  noSpace: e(Code.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  tooManyRequests: e(Code.UNKNOWN, 'etcdserver: too many requests'),
  notLeader: e(Code.FAILED_PRECONDITION, 'etcdserver: not leader'),
  noLeader: e(Code.UNAVAILABLE, 'etcdserver: no leader'),
  leaderChanged: e(Code.UNAVAILABLE, 'etcdserver: leader changed'),
  timeout: e(Code.UNAVAILABLE, 'etcdserver: request timed out'),
  timeoutDueToLeaderFail: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, possibly due to previous leader failure',
  ),
  timeoutLeaderTransfer: e(Code.UNAVAILABLE, 'etcdserver: request timed out, leader transfer took too long'),
  timeoutDueToConnectionLost: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, possibly due to connection lost',
  ),
  timeoutWaitAppliedIndex: e(
    Code.UNAVAILABLE,
    'etcdserver: request timed out, waiting for the applied index took too long',
  ),
  stopped: e(Code.UNAVAILABLE, 'etcdserver: server stopped'),
  unhealthyCluster: e(Code.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  corrupt: e(Code.DATA_LOSS, 'etcdserver: corrupt cluster'),
  notSupportedForLearner: e(Code.FAILED_PRECONDITION, 'etcdserver: rpc not supported for learner'),
  watchCanceled: e(Code.CANCELLED, 'etcdserver: watch canceled'),
  requestCanceled: e(Code.CANCELLED, 'etcdserver: request canceled'),
  memberExists: e(Code.FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  peerUrlExists: e(Code.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  memberNotLearner: e(Code.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: e(
    Code.FAILED_PRECONDITION,
    'etcdserver: can only promote a learner member which is in sync with leader',
  ),
  tooManyLearners: e(Code.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),
  clusterIdMismatch: e(Code.FAILED_PRECONDITION, 'etcdserver: cluster ID mismatch'),
  memberNotFound: e(Code.NOT_FOUND, 'etcdserver: member not found'),
  memberBadUrls: e(Code.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  notEnoughStartedMembers: e(
    Code.UNKNOWN,
    'etcdserver: re-configuration failed due to not enough started members',
  ),
  badLeaderTransferee: e(Code.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  permissionDenied: e(Code.PERMISSION_DENIED, 'etcdserver: permission denied'),
  authNotEnabled: e(Code.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  watchRangeEmpty: e(Code.INVALID_ARGUMENT, 'mvcc: watcher range is empty'),
  // The lock and election services answer with plain errors, which reach clients as UNKNOWN.
  sessionExpired: e(Code.UNKNOWN, 'mutex: session is expired'),
  electionNotLeader: e(Code.UNKNOWN, 'election: not leader'),
  electionNoLeader: e(Code.UNKNOWN, 'election: no leader'),
  leaderKeyMissing: e(Code.UNKNOWN, '"leader" field must be provided'),
} as const;

/** True when `err` is an EtcdError with the same code and message as the catalog entry `f` makes. */
export function isError(err: unknown, f: () => EtcdError): boolean {
  if (!(err instanceof EtcdError)) return false;
  const ref = f();
  return err.code === ref.code && err.message === ref.message;
}
