/**
 * The records a test run produces and the checkers read: client operations on the KV and Lease
 * services with their outcomes, the final event history (every revision's events, as a watch from
 * revision 1 delivers them), and the recorded watch streams.
 *
 * Keys, values and lease ids are strings: the workloads that produce these histories use ASCII
 * keys and values, so JavaScript string order is etcd's byte order. Lease ids are decimal strings,
 * "0" meaning no lease. Times are milliseconds on one monotonic clock (any origin).
 */

/** A key-value pair as etcd's mvccpb.KeyValue reports it. */
export interface KvRecord {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** Lease id, decimal; "0" for none. */
  readonly lease: string;
}

/** The compare of a compare-and-set transaction. */
export type TxnCompare =
  /** mod_revision(key) == modRevision; a missing key compares as 0. */
  | { readonly target: 'mod'; readonly modRevision: number }
  /** value(key) == value; always false for a missing key (etcd's rule). */
  | { readonly target: 'value'; readonly value: string };

/** What a client asked for. */
export type KvInput =
  /** Put; `lease` "0" for none; `prevKv` asks for the previous pair. */
  | { readonly type: 'put'; readonly key: string; readonly value: string; readonly lease: string; readonly prevKv: boolean }
  /**
   * Range over [key, rangeEnd) ("" for the single key `key`, "\0" for every key ≥ key).
   * Serializable reads are checked only against the final event history, never for linearizability.
   */
  | { readonly type: 'range'; readonly key: string; readonly rangeEnd: string; readonly serializable: boolean }
  /** DeleteRange of one key. */
  | { readonly type: 'delete'; readonly key: string; readonly prevKv: boolean }
  /** Txn: if `compare` then put(key, value, lease) else range(key). */
  | { readonly type: 'txn'; readonly key: string; readonly compare: TxnCompare; readonly value: string; readonly lease: string }
  /** LeaseGrant with a client-chosen id. */
  | { readonly type: 'leaseGrant'; readonly lease: string; readonly ttl: number }
  /** LeaseRevoke. */
  | { readonly type: 'leaseRevoke'; readonly lease: string };

/** What the server answered (only for completed operations). `revision` is the header revision. */
export type KvOutput =
  /** `prevKv`: undefined when not asked for, null when there was no previous pair. */
  | { readonly type: 'put'; readonly revision: number; readonly prevKv?: KvRecord | null }
  | { readonly type: 'range'; readonly revision: number; readonly kvs: readonly KvRecord[] }
  /** `prevKvs` is present when asked for. */
  | { readonly type: 'delete'; readonly revision: number; readonly deleted: number; readonly prevKvs?: readonly KvRecord[] }
  /** `kvs`: the failure branch's range result (absent on success). */
  | { readonly type: 'txn'; readonly revision: number; readonly succeeded: boolean; readonly kvs?: readonly KvRecord[] }
  | { readonly type: 'leaseGrant'; readonly revision: number; readonly ttl: number }
  | { readonly type: 'leaseRevoke'; readonly revision: number };

/**
 * How an operation ended:
 * - ok: the server answered; `output` holds the answer;
 * - fail: a definite failure (the operation did not take effect), `error` says which;
 * - unknown: a timeout, a lost connection or another indeterminate error: the operation may take
 *   effect at any point after its call, or never.
 */
export type OpStatus = 'ok' | 'fail' | 'unknown';

/** A gRPC error as the client saw it. */
export interface OpError {
  readonly code: number;
  readonly message: string;
}

/** One client operation, from invocation to completion. */
export interface KvOp {
  /** Unique within the history. */
  readonly id: number;
  /** The logical client process that issued it (a process runs one operation at a time). */
  readonly process: number;
  /** Invocation time, ms. */
  readonly call: number;
  /** Completion time, ms (for `unknown`: when the client gave up). */
  readonly ret: number;
  readonly status: OpStatus;
  readonly input: KvInput;
  /** Present exactly when status is ok. */
  readonly output?: KvOutput;
  /** Present when status is fail or unknown. */
  readonly error?: OpError;
  /** The member the client talked to (for reports only). */
  readonly member?: string;
}

/** gRPC NOT_FOUND with etcd's message: a put or txn named a lease that does not exist. */
export const LEASE_NOT_FOUND_MESSAGE = 'etcdserver: requested lease not found';

/** True when `op` failed because its lease did not exist (a definite, checkable outcome). */
export function isLeaseNotFound(op: KvOp): boolean {
  return op.status === 'fail' && op.error !== undefined && op.error.code === 5 && op.error.message === LEASE_NOT_FOUND_MESSAGE;
}

/** One event of a watch response or of the final history. A delete's `kv` has only key and modRevision. */
export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KvRecord;
  /** The pair before this event; absent when not asked for or when the key did not exist. */
  readonly prevKv?: KvRecord;
}

/** The events of one revision, in the order the server applied them. */
export interface RevisionEvents {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
}

/** One WatchResponse as received. */
export interface WatchResponseRecord {
  /** Receive time, ms. */
  readonly time: number;
  /** Header revision. */
  readonly revision: number;
  readonly watchId: number;
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compactRevision: number;
  readonly cancelReason?: string;
  readonly events: readonly WatchEvent[];
}

/**
 * One watch: a stream with one watcher from its create request to its end. A client that resumes
 * after a break opens a new session with startRevision = last received revision + 1.
 */
export interface WatchSession {
  /** The watching client (sessions of one client are consecutive). */
  readonly watcher: number;
  /** Sequence number of this session within its client. */
  readonly session: number;
  readonly key: string;
  /** As in KvInput range. */
  readonly rangeEnd: string;
  /** The create request's start_revision (0: from the current revision + 1). */
  readonly startRevision: number;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  /** When the create request was sent, ms. */
  readonly start: number;
  /** When the session ended (stream error, cancel, or the end of the run), ms. */
  readonly end: number;
  readonly endReason: string;
  readonly responses: readonly WatchResponseRecord[];
}

/** True when `k` lies in the range [key, rangeEnd) with etcd's conventions for rangeEnd. */
export function inRange(k: string, key: string, rangeEnd: string): boolean {
  if (rangeEnd === '') return k === key;
  if (rangeEnd === '\0') return k >= key;
  return k >= key && k < rangeEnd;
}

/** The range end that covers every key starting with `prefix` (etcd's GetPrefixRangeEnd on ASCII). */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0xff) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return '\0';
}

/** A short human-readable form of an operation, for reports. */
export function describeOp(op: KvOp, origin = 0): string {
  const t = (ms: number): string => `${((ms - origin) / 1000).toFixed(3)}s`;
  const i = op.input;
  let what: string;
  switch (i.type) {
    case 'put':
      what = `put ${i.key}=${i.value}${i.lease !== '0' ? ` lease=${i.lease}` : ''}`;
      break;
    case 'range':
      what = `${i.serializable ? 'serializable ' : ''}range ${i.key}${i.rangeEnd === '' ? '' : `..${i.rangeEnd === '\0' ? '\\0' : i.rangeEnd}`}`;
      break;
    case 'delete':
      what = `delete ${i.key}`;
      break;
    case 'txn':
      what = `txn if ${i.compare.target === 'mod' ? `mod(${i.key})==${i.compare.modRevision}` : `value(${i.key})==${i.compare.value}`} then put ${i.value}${i.lease !== '0' ? ` lease=${i.lease}` : ''} else get`;
      break;
    case 'leaseGrant':
      what = `lease grant ${i.lease} ttl=${i.ttl}`;
      break;
    case 'leaseRevoke':
      what = `lease revoke ${i.lease}`;
      break;
  }
  let result: string;
  if (op.status !== 'ok' || op.output === undefined) {
    result = `${op.status}${op.error !== undefined ? ` (${op.error.code} ${op.error.message})` : ''}`;
  } else {
    const o = op.output;
    switch (o.type) {
      case 'put':
        result = `rev ${o.revision}${o.prevKv === undefined ? '' : ` prev=${kvText(o.prevKv)}`}`;
        break;
      case 'range':
        result = `rev ${o.revision} [${o.kvs.map(kvText).join(', ')}]`;
        break;
      case 'delete':
        result = `rev ${o.revision} deleted=${o.deleted}${o.prevKvs === undefined ? '' : ` prev=[${o.prevKvs.map(kvText).join(', ')}]`}`;
        break;
      case 'txn':
        result = `rev ${o.revision} ${o.succeeded ? 'succeeded' : `failed [${(o.kvs ?? []).map(kvText).join(', ')}]`}`;
        break;
      case 'leaseGrant':
        result = `rev ${o.revision} ttl=${o.ttl}`;
        break;
      case 'leaseRevoke':
        result = `rev ${o.revision}`;
        break;
    }
  }
  const end = op.status === 'unknown' ? `gave up ${t(op.ret)}` : t(op.ret);
  return `#${op.id} p${op.process} ${what} → ${result} [${t(op.call)} .. ${end}]`;
}

/** A pair in the form key=value@mod (create c, version v[, lease l]); "∅" for null. */
export function kvText(kv: KvRecord | null): string {
  if (kv === null) return '∅';
  return `${kv.key}=${kv.value}@${kv.modRevision}(c${kv.createRevision} v${kv.version}${kv.lease !== '0' ? ` l${kv.lease}` : ''})`;
}
