/**
 * The sequential model of one etcd key, with revisions as data, for the linearizability search.
 *
 * etcd's KV is one global revision counter plus a register per key. The counter couples every
 * key, so a whole-store model cannot be split by key. This model keeps, per key, the register
 * (exists, value, lease, version, create and mod revision) and a *floor*: a lower bound on the
 * global revision at this point of the key's history, raised by every revision the key's
 * operations report. Every rule below is a consequence of the whole-store model restricted to
 * one key, so a history that is linearizable for the whole store is linearizable here for every
 * key (the check is sound: no false alarms). The cross-key part (revisions returned by writes are
 * unique and agree with real time) is checked by `revisions.ts`.
 *
 * Rules, with R the global revision at the linearization point:
 * - a write that reports revision r needs r > floor, and sets mod = r, floor = r;
 * - a read (or a failed txn, or a delete of a missing key) reports R exactly: it needs
 *   R ≥ floor and R ≥ the pair's mod revision, and sets floor = R;
 * - version counts the puts of the key's current life; create revision is the revision of its
 *   first put; version 1 ⇔ create = mod;
 * - a write whose revision is unknown (an indeterminate operation) raises floor by one and leaves
 *   the mod revision unknown inside a window [lo, hi], bound by the next observation;
 * - leases exist from their grant to their revoke; a put naming a lease needs it to exist, and a
 *   put refused with "lease not found" needs it not to; a revoke deletes the key if the key holds
 *   the lease. Leases are assumed not to expire within the history (workloads grant long TTLs).
 */
import type { KvRecord, TxnCompare } from './history';
import type { Model } from './search';

/** One operation as it touches one key (a range or a lease revoke touches several keys). */
export interface KeyOp {
  /** The history operation this came from. */
  readonly source: number;
  readonly kind: 'put' | 'read' | 'delete' | 'cas' | 'grant' | 'revoke';
  /** put / cas: the value written. */
  readonly value?: string;
  /** put / cas: the lease attached ("0" none); grant / revoke: the lease granted or revoked. */
  readonly lease?: string;
  /** cas: the compare. */
  readonly compare?: TxnCompare;
  /** False when the outcome is unknown (then only `revision` / `revisions` may be known). */
  readonly known: boolean;
  /** The header revision: of the write for writes, R for reads. */
  readonly revision?: number;
  /** Unknown deletes: the revisions at which it could have taken effect (from the final history). */
  readonly revisions?: readonly number[];
  /** read / failed cas: the pair read (null: absent). */
  readonly kv?: KvRecord | null;
  /** put / delete with prev_kv: the previous pair (null: absent); undefined when not observed. */
  readonly prevKv?: KvRecord | null;
  /** delete: whether the key was deleted. */
  readonly deleted?: boolean;
  /** cas: whether the compare held. */
  readonly succeeded?: boolean;
  /** put / cas: failed because the lease did not exist. */
  readonly leaseNotFound?: boolean;
}

/**
 * The register of one key plus the revision floor. Immutable. A field may be unknown (null or -1):
 * in the unconstrained state the minimizer starts from, and after writes whose revision is
 * unknown. Observations bind unknown fields.
 */
export interface KeyState {
  /** null: unknown. */
  readonly exists: boolean | null;
  /** null: unknown (meaningless when the key does not exist). */
  readonly value: string | null;
  readonly lease: string | null;
  /** -1: unknown. */
  readonly version: number;
  /** Mod revision; -1 when unknown (then within [modLo, modHi]). 0 when the key does not exist. */
  readonly mod: number;
  readonly modLo: number;
  readonly modHi: number;
  /** Create revision; -1 when unknown. */
  readonly create: number;
  /** Lower bound on the global revision. */
  readonly floor: number;
  /** Leases known to exist (granted and not revoked), sorted. */
  readonly leases: readonly string[];
  /** Leases known not to exist, sorted. */
  readonly gone: readonly string[];
  /** True when every lease not in `leases` is known not to exist. */
  readonly leasesKnown: boolean;
}

/** The state of a key that was never written, at revision `floor`, with no lease granted. */
export function initialKeyState(floor = 0): KeyState {
  return { exists: false, value: '', lease: '0', version: 0, mod: 0, modLo: 0, modHi: 0, create: 0, floor, leases: [], gone: [], leasesKnown: true };
}

/** The unconstrained state: nothing known about the key or the leases; floor 0. */
export function unknownKeyState(): KeyState {
  return { exists: null, value: null, lease: null, version: -1, mod: -1, modLo: 1, modHi: Infinity, create: -1, floor: 0, leases: [], gone: [], leasesKnown: false };
}

const ABSENT = (s: KeyState, floor: number): KeyState => ({
  exists: false,
  value: '',
  lease: '0',
  version: 0,
  mod: 0,
  modLo: 0,
  modHi: 0,
  create: 0,
  floor,
  leases: s.leases,
  gone: s.gone,
  leasesKnown: s.leasesKnown,
});

/** Whether `lease` exists: yes, no or unknown. Lease "0" (none) always "exists". */
function leaseState(s: KeyState, lease: string): 'yes' | 'no' | 'unknown' {
  if (lease === '0' || s.leases.includes(lease)) return 'yes';
  if (s.leasesKnown || s.gone.includes(lease)) return 'no';
  return 'unknown';
}

/** The state with `lease` known to exist (or not). */
function withLease(s: KeyState, lease: string, exists: boolean): KeyState {
  if (lease === '0') return s;
  const leases = exists ? (s.leases.includes(lease) ? s.leases : [...s.leases, lease].sort()) : s.leases.filter((l) => l !== lease);
  const gone = s.leasesKnown ? s.gone : exists ? s.gone.filter((l) => l !== lease) : s.gone.includes(lease) ? s.gone : [...s.gone, lease].sort();
  return { ...s, leases, gone };
}

/** The state with `lease` required to exist; null when it is known not to. */
function needLease(s: KeyState, lease: string): KeyState | null {
  const st = leaseState(s, lease);
  if (st === 'no') return null;
  return st === 'yes' ? s : withLease(s, lease, true);
}

/**
 * The state after observing that the key holds `kv` (null: absent), binding unknown fields;
 * null when the observation contradicts the state. A pair holding a lease also shows that the
 * lease exists (a revoke deletes its keys at once).
 */
export function observe(s: KeyState, kv: KvRecord | null): KeyState | null {
  if (kv === null) {
    if (s.exists === true) return null;
    return s.exists === false ? s : ABSENT(s, s.floor);
  }
  if (s.exists === false) return null;
  if ((s.value !== null && kv.value !== s.value) || (s.lease !== null && kv.lease !== s.lease) || (s.version >= 0 && kv.version !== s.version)) return null;
  if (kv.version < 1 || (kv.version === 1) !== (kv.createRevision === kv.modRevision)) return null;
  let mod = s.mod;
  if (s.mod >= 0) {
    if (kv.modRevision !== s.mod) return null;
  } else {
    if (kv.modRevision < s.modLo || kv.modRevision > s.modHi) return null;
    mod = kv.modRevision;
  }
  if (s.create >= 0) {
    if (kv.createRevision !== s.create) return null;
  } else if (kv.createRevision > kv.modRevision || kv.createRevision <= 0) {
    return null;
  }
  const out: KeyState = { ...s, exists: true, value: kv.value, lease: kv.lease, version: kv.version, mod, modLo: 0, modHi: 0, create: kv.createRevision };
  return needLease(out, kv.lease);
}

/** A put of `value` with `lease` at revision `rev` (undefined: unknown); null when impossible. */
function write(s: KeyState, rev: number | undefined, value: string, lease: string): KeyState | null {
  const base = needLease(s, lease);
  if (base === null) return null;
  const version = s.exists === true ? (s.version >= 0 ? s.version + 1 : -1) : s.exists === false ? 1 : -1;
  const keepCreate = s.exists === true ? s.create : -1;
  if (rev !== undefined) {
    if (rev <= s.floor) return null;
    const create = s.exists === false ? rev : keepCreate;
    return { ...base, exists: true, value, lease, version, mod: rev, modLo: 0, modHi: 0, create, floor: rev };
  }
  const lo = s.floor + 1;
  return { ...base, exists: true, value, lease, version, mod: -1, modLo: lo, modHi: Infinity, create: keepCreate, floor: lo };
}

/** A deletion of an existing key at `rev` (undefined: unknown); null when impossible. */
function remove(s: KeyState, rev: number | undefined): KeyState | null {
  if (s.exists === false) return null;
  if (rev === undefined) return ABSENT(s, s.floor + 1);
  if (rev <= s.floor) return null;
  return ABSENT(s, rev);
}

/** A read of R = `rev`: R ≥ floor and R ≥ the current mod revision; then floor = R. */
function readAt(s: KeyState, rev: number): KeyState | null {
  if (rev < s.floor) return null;
  if (s.exists !== false && s.mod >= 0 && rev < s.mod) return null;
  if (s.exists !== false && s.mod < 0) {
    if (s.exists === true && rev < s.modLo) return null;
    return { ...s, floor: rev, modHi: Math.min(s.modHi, rev) };
  }
  return { ...s, floor: rev };
}

/**
 * Evaluates a compare: a state in which it holds and one in which it fails (null when
 * impossible). Unknown fields may go either way; holding binds them.
 */
function compare(s: KeyState, c: TxnCompare): { holds: KeyState | null; fails: KeyState | null } {
  if (c.target === 'value') {
    if (s.exists === false) return { holds: null, fails: s };
    if (s.value !== null && s.exists === true) return s.value === c.value ? { holds: s, fails: null } : { holds: null, fails: s };
    const bound = observeValue(s, c.value);
    return { holds: bound, fails: s };
  }
  const x = c.modRevision;
  if (s.exists === false) return x === 0 ? { holds: s, fails: null } : { holds: null, fails: s };
  if (s.exists === null && x === 0) return { holds: ABSENT(s, s.floor), fails: { ...s, exists: true } };
  if (x === 0) return { holds: null, fails: s };
  if (s.mod >= 0) return s.mod === x ? { holds: s, fails: null } : { holds: null, fails: s };
  const canHold = x >= s.modLo && x <= s.modHi;
  const bound: KeyState = { ...s, exists: true, mod: x, modLo: 0, modHi: 0, create: s.version === 1 ? x : s.create };
  const canFail = !(s.exists === true && s.modLo === x && s.modHi === x);
  return { holds: canHold ? bound : null, fails: canFail ? s : null };
}

/** The state bound to "the key exists and holds `value`"; null when impossible. */
function observeValue(s: KeyState, value: string): KeyState | null {
  if (s.exists === false || (s.value !== null && s.value !== value)) return null;
  return { ...s, exists: true, value };
}

function one(s: KeyState | null): readonly KeyState[] {
  return s === null ? [] : [s];
}

/** The successor states of one key operation (see the module comment for the rules). */
export function stepKey(s: KeyState, op: KeyOp): readonly KeyState[] {
  switch (op.kind) {
    case 'read': {
      if (!op.known || op.revision === undefined || op.kv === undefined) return [];
      const o = observe(s, op.kv);
      return one(o === null ? null : readAt(o, op.revision));
    }
    case 'put': {
      const value = op.value ?? '';
      const lease = op.lease ?? '0';
      if (op.leaseNotFound === true) return leaseState(s, lease) === 'yes' ? [] : [withLease(s, lease, false)];
      if (!op.known) return one(write(s, op.revision, value, lease));
      let base: KeyState | null = s;
      if (op.prevKv !== undefined) base = observe(s, op.prevKv);
      return one(base === null ? null : write(base, op.revision, value, lease));
    }
    case 'delete': {
      if (!op.known) {
        if (s.exists === false) return [];
        if (op.revision !== undefined) return one(remove(s, op.revision));
        if (op.revisions !== undefined) {
          const out: KeyState[] = [];
          for (const r of op.revisions) {
            const n = remove(s, r);
            if (n !== null) out.push(n);
          }
          return out;
        }
        return one(remove(s, undefined));
      }
      if (op.revision === undefined) return [];
      if (op.prevKv !== undefined) {
        const o = observe(s, op.prevKv);
        if (o === null) return [];
        s = o;
      }
      if (op.deleted === true) return one(remove(s, op.revision));
      const absent = observe(s, null);
      return one(absent === null ? null : readAt(absent, op.revision));
    }
    case 'cas': {
      const c = op.compare;
      if (c === undefined) return [];
      const value = op.value ?? '';
      const lease = op.lease ?? '0';
      const { holds, fails } = compare(s, c);
      if (op.leaseNotFound === true) return holds !== null && leaseState(holds, lease) !== 'yes' ? [withLease(holds, lease, false)] : [];
      if (!op.known) return holds === null ? [] : one(write(holds, op.revision, value, lease));
      if (op.revision === undefined) return [];
      if (op.succeeded === true) return holds === null ? [] : one(write(holds, op.revision, value, lease));
      if (fails === null) return [];
      let r: KeyState | null = fails;
      if (op.kv !== undefined) r = observe(fails, op.kv);
      return one(r === null ? null : readAt(r, op.revision));
    }
    case 'grant': {
      const lease = op.lease ?? '0';
      if (leaseState(s, lease) === 'yes') return [];
      if (!op.known) return [withLease(s, lease, true)];
      if (op.revision === undefined) return [];
      const after = readAt(s, op.revision);
      return one(after === null ? null : withLease(after, lease, true));
    }
    case 'revoke': {
      const lease = op.lease ?? '0';
      if (leaseState(s, lease) === 'no') return [];
      const out: KeyState[] = [];
      // Attached (the key goes) or not (only the lease goes); an unknown register may be either.
      const attached = s.exists === true && s.lease === lease;
      const detached = s.exists === false || (s.lease !== null && s.lease !== lease);
      if (!detached) {
        const after = remove(attached ? s : { ...s, exists: true, lease }, op.revision);
        if (after !== null) out.push(withLease(after, lease, false));
      }
      if (!attached) {
        const after = op.known ? (op.revision === undefined ? null : readAt(s, op.revision)) : s;
        if (after !== null) out.push(withLease(after, lease, false));
      }
      if (op.known && op.revision === undefined) return [];
      return out;
    }
  }
}

/** The canonical string of a state (the memoization key). */
export function keyStateKey(s: KeyState): string {
  const reg = s.exists === false ? '-' : `${s.exists === null ? '?' : '+'}${s.value ?? '\u0003'}\u0001${s.lease ?? '\u0003'}\u0001${s.version}\u0001${s.mod}:${s.modLo}:${s.modHi}\u0001${s.create}`;
  return `${reg}\u0002${s.floor}\u0002${s.leases.join(',')}\u0002${s.leasesKnown ? '' : s.gone.join(',')}`;
}

/**
 * The largest revision floor at which `op` can still be linearized, when its revision is known:
 * r - 1 for a write of revision r, R for an operation that reports the revision R (a read, a
 * failed txn, a delete of a missing key, a lease grant; a revoke, which may or may not write).
 */
export function keyOpLimit(op: KeyOp): number | undefined {
  const r = op.revision;
  if (r === undefined || op.leaseNotFound === true) return undefined;
  switch (op.kind) {
    case 'put':
      return r - 1;
    case 'cas':
      if (!op.known) return r - 1;
      return op.succeeded === true ? r - 1 : r;
    case 'delete':
      if (!op.known) return r - 1;
      return op.deleted === true ? r - 1 : r;
    case 'read':
    case 'grant':
    case 'revoke':
      return r;
  }
}

/** True for key operations without effect on the register (reads and read-like answers). */
export function isPureKeyOp(op: KeyOp): boolean {
  if (!op.known) return false;
  switch (op.kind) {
    case 'read':
      return true;
    case 'cas':
      return op.succeeded !== true || op.leaseNotFound === true;
    case 'delete':
      return op.deleted !== true;
    case 'put':
      return op.leaseNotFound === true;
    case 'grant':
    case 'revoke':
      return false;
  }
}

/** The per-key model for `checkLinearizable`, with the revision floor as progress measure. */
export function keyModel(init: KeyState = initialKeyState()): Model<KeyState, KeyOp> {
  return { init, step: stepKey, stateKey: keyStateKey, progress: { of: (s) => s.floor, limit: keyOpLimit } };
}
