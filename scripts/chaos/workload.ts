/**
 * The KV workload of a chaos run: concurrent logical processes, each bound to one member, doing
 * Put (some with prev_kv, some with a lease), linearizable and serializable Range (one key or the
 * whole key space), DeleteRange, Txn compare-and-set on mod revision and on value (a Range in the
 * failure branch), LeaseGrant and LeaseRevoke. Every invocation and completion is recorded with
 * its result or error; a process whose operation ended indeterminately continues as a new process
 * (it may still be pending), as Jepsen's clients do.
 */
import type { KvInput, KvOp, KvOutput, KvRecord, OpStatus } from '../../src/check/history';
import type { ChaosCluster, Slot } from './cluster';
import { sleep } from './cluster';
import { CallFailure, EtcdClient, Msg, bytes, headerRevision, isDefiniteFailure, kvRecord, num, opError } from './grpc';
import type { Random } from './rng';

/** Records operations with ids and times relative to the run's origin. */
export class Recorder {
  readonly ops: KvOp[] = [];
  private nextProcess = 0;

  constructor(readonly origin: number) {}

  /** Milliseconds since the origin (monotonic). */
  now(): number {
    return performance.now() - this.origin;
  }

  /** A fresh logical process id. */
  process(): number {
    return this.nextProcess++;
  }

  /** Reserves the next operation id (ids follow invocation order); `set` fills it in. */
  reserve(): number {
    this.pending.add(this.ops.length);
    this.ops.push(PLACEHOLDER);
    return this.ops.length - 1;
  }

  /** Records the operation of a reserved id. */
  set(op: KvOp): void {
    this.ops[op.id] = op;
    this.pending.delete(op.id);
  }

  /** The recorded operations (every reserved id must have been set). */
  finished(): KvOp[] {
    if (this.pending.size > 0) throw new Error(`${this.pending.size} operations still running`);
    return this.ops;
  }

  private readonly pending = new Set<number>();
}

const PLACEHOLDER: KvOp = { id: -1, process: -1, call: 0, ret: 0, status: 'fail', input: { type: 'leaseRevoke', lease: '0' } };

/** Workload settings. */
export interface WorkloadOptions {
  /** The keys under test (all under `prefix`). */
  readonly keys: readonly string[];
  readonly prefix: string;
  readonly prefixEnd: string;
  /** Deadline of each call, ms. */
  readonly timeoutMs: number;
  /** Pause between two operations of a process, ms (uniform in [min, max]). */
  readonly thinkMs: readonly [number, number];
  /** TTL of granted leases, s (long: the checker assumes leases do not expire). */
  readonly leaseTtl: number;
  /** First lease id; ids are unique per run. */
  readonly leaseIdBase: bigint;
}

/** Counters of the workload. */
export interface WorkloadStats {
  readonly byType: Record<string, { ok: number; fail: number; unknown: number }>;
}

type Kind = 'put' | 'putLease' | 'get' | 'range' | 'sget' | 'srange' | 'delete' | 'casMod' | 'casValue' | 'grant' | 'revoke';

const WEIGHTS: readonly [Kind, number][] = [
  ['put', 29],
  ['putLease', 6],
  ['get', 14],
  ['range', 6],
  ['sget', 6],
  ['srange', 3],
  ['delete', 8],
  ['casMod', 13],
  ['casValue', 9],
  ['grant', 3],
  ['revoke', 3],
];

/** The running workload. */
export class Workload {
  private stopped = false;
  private readonly running: Promise<void>[] = [];
  private readonly leases: string[] = [];
  private leaseSeq = 0n;
  private readonly clients = new Map<number, EtcdClient>();
  readonly stats: WorkloadStats = { byType: {} };

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly rec: Recorder,
    private readonly opts: WorkloadOptions,
  ) {}

  /** Starts `n` processes, bound round-robin to the members. */
  start(n: number, random: Random): void {
    for (let w = 0; w < n; w++) {
      const slot = this.cluster.slots[w % this.cluster.slots.length]!;
      this.running.push(this.worker(slot, random.fork()));
    }
  }

  /** Stops the processes and waits for their last operations to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private client(slot: Slot): EtcdClient {
    let c = this.clients.get(slot.index);
    if (c === undefined) {
      c = new EtcdClient(this.cluster.endpoint(slot));
      this.clients.set(slot.index, c);
    }
    return c;
  }

  private async worker(slot: Slot, random: Random): Promise<void> {
    let process = this.rec.process();
    // What this process last saw of each key (to aim its compare-and-sets).
    const seen = new Map<string, KvRecord | null>();
    const total = WEIGHTS.reduce((a, [, w]) => a + w, 0);
    while (!this.stopped) {
      let x = random.int(0, total - 1);
      let kind: Kind = 'put';
      for (const [k, w] of WEIGHTS) {
        if (x < w) {
          kind = k;
          break;
        }
        x -= w;
      }
      const status = await this.one(slot, process, kind, random, seen);
      if (status === 'unknown') process = this.rec.process();
      const pause = status === 'fail' ? 100 : random.int(this.opts.thinkMs[0], this.opts.thinkMs[1]);
      if (pause > 0) await sleep(pause);
    }
  }

  private input(kind: Kind, id: number, random: Random, seen: Map<string, KvRecord | null>): KvInput | undefined {
    const key = random.pick(this.opts.keys);
    const value = `v${id}`;
    const cur = seen.get(key);
    switch (kind) {
      case 'put':
        return { type: 'put', key, value, lease: '0', prevKv: random.float() < 0.5 };
      case 'putLease':
        if (this.leases.length === 0) return { type: 'put', key, value, lease: '0', prevKv: false };
        return { type: 'put', key, value, lease: random.pick(this.leases), prevKv: random.float() < 0.5 };
      case 'get':
        return { type: 'range', key, rangeEnd: '', serializable: false };
      case 'range':
        return { type: 'range', key: this.opts.prefix, rangeEnd: this.opts.prefixEnd, serializable: false };
      case 'sget':
        return { type: 'range', key, rangeEnd: '', serializable: true };
      case 'srange':
        return { type: 'range', key: this.opts.prefix, rangeEnd: this.opts.prefixEnd, serializable: true };
      case 'delete':
        return { type: 'delete', key, prevKv: random.float() < 0.5 };
      case 'casMod':
        return { type: 'txn', key, compare: { target: 'mod', modRevision: cur?.modRevision ?? 0 }, value, lease: '0' };
      case 'casValue':
        return { type: 'txn', key, compare: { target: 'value', value: cur?.value ?? 'none' }, value, lease: '0' };
      case 'grant': {
        if (this.leases.length >= 3) return undefined;
        const lease = (this.opts.leaseIdBase + this.leaseSeq++).toString();
        return { type: 'leaseGrant', lease, ttl: this.opts.leaseTtl };
      }
      case 'revoke': {
        if (this.leases.length === 0) return undefined;
        const i = random.int(0, this.leases.length - 1);
        const lease = this.leases.splice(i, 1)[0]!;
        return { type: 'leaseRevoke', lease };
      }
    }
  }

  private async one(slot: Slot, process: number, kind: Kind, random: Random, seen: Map<string, KvRecord | null>): Promise<OpStatus | undefined> {
    const input = this.input(kind, this.rec.ops.length, random, seen);
    if (input === undefined) return undefined;
    const id = this.rec.reserve();
    const call = this.rec.now();
    let status: OpStatus;
    let output: KvOutput | undefined;
    let failure: CallFailure | undefined;
    try {
      output = await this.execute(slot, input);
      status = 'ok';
    } catch (e) {
      failure = e instanceof CallFailure ? e : new CallFailure(2, String(e));
      status = isDefiniteFailure(failure) ? 'fail' : 'unknown';
    }
    const ret = this.rec.now();
    const op: KvOp = {
      id,
      process,
      call,
      ret,
      status,
      input,
      ...(output !== undefined ? { output } : {}),
      ...(failure !== undefined ? { error: opError(failure) } : {}),
      member: slot.name,
    };
    this.rec.set(op);
    const t = (this.stats.byType[input.type] ??= { ok: 0, fail: 0, unknown: 0 });
    t[status]++;
    if (status === 'ok') this.learn(input, output!, seen);
    if (input.type === 'leaseGrant' && status === 'ok') this.leases.push(input.lease);
    return status;
  }

  private learn(input: KvInput, output: KvOutput, seen: Map<string, KvRecord | null>): void {
    if (output.type === 'range') {
      if (input.type === 'range' && input.rangeEnd === '') seen.set(input.key, output.kvs[0] ?? null);
      else for (const kv of output.kvs) seen.set(kv.key, kv);
    } else if (output.type === 'put' && input.type === 'put') {
      seen.set(input.key, { key: input.key, value: input.value, modRevision: output.revision, createRevision: 0, version: 0, lease: input.lease });
    } else if (output.type === 'txn' && input.type === 'txn') {
      if (output.succeeded) seen.set(input.key, { key: input.key, value: input.value, modRevision: output.revision, createRevision: 0, version: 0, lease: '0' });
      else seen.set(input.key, output.kvs?.[0] ?? null);
    } else if (output.type === 'delete' && input.type === 'delete') {
      seen.set(input.key, null);
    }
  }

  private async execute(slot: Slot, input: KvInput): Promise<KvOutput> {
    const c = this.client(slot);
    const t = this.opts.timeoutMs;
    switch (input.type) {
      case 'put': {
        const r = await c.call('KV', 'Put', { key: bytes(input.key), value: bytes(input.value), lease: input.lease, prev_kv: input.prevKv }, t);
        const prev = r.prev_kv;
        return { type: 'put', revision: headerRevision(r), ...(input.prevKv ? { prevKv: prev === null || prev === undefined ? null : kvRecord(prev) } : {}) };
      }
      case 'range': {
        const req: Msg = { key: bytes(input.key), serializable: input.serializable };
        if (input.rangeEnd !== '') req.range_end = bytes(input.rangeEnd);
        const r = await c.call('KV', 'Range', req, t);
        return { type: 'range', revision: headerRevision(r), kvs: ((r.kvs ?? []) as Msg[]).map(kvRecord) };
      }
      case 'delete': {
        const r = await c.call('KV', 'DeleteRange', { key: bytes(input.key), prev_kv: input.prevKv }, t);
        return { type: 'delete', revision: headerRevision(r), deleted: num(r.deleted), ...(input.prevKv ? { prevKvs: ((r.prev_kvs ?? []) as Msg[]).map(kvRecord) } : {}) };
      }
      case 'txn': {
        const cmp = input.compare;
        const compare =
          cmp.target === 'mod'
            ? { result: 'EQUAL', target: 'MOD', key: bytes(input.key), mod_revision: String(cmp.modRevision) }
            : { result: 'EQUAL', target: 'VALUE', key: bytes(input.key), value: bytes(cmp.value) };
        const r = await c.call(
          'KV',
          'Txn',
          {
            compare: [compare],
            success: [{ request_put: { key: bytes(input.key), value: bytes(input.value), lease: input.lease } }],
            failure: [{ request_range: { key: bytes(input.key) } }],
          },
          t,
        );
        const succeeded = r.succeeded === true;
        if (succeeded) return { type: 'txn', revision: headerRevision(r), succeeded };
        const first = ((r.responses ?? []) as Msg[])[0];
        const range = first?.response_range as Msg | undefined;
        return { type: 'txn', revision: headerRevision(r), succeeded, kvs: ((range?.kvs ?? []) as Msg[]).map(kvRecord) };
      }
      case 'leaseGrant': {
        const r = await c.call('Lease', 'LeaseGrant', { TTL: String(input.ttl), ID: input.lease }, t);
        if (typeof r.error === 'string' && r.error !== '') throw new CallFailure(2, r.error);
        return { type: 'leaseGrant', revision: headerRevision(r), ttl: num(r.TTL) };
      }
      case 'leaseRevoke': {
        const r = await c.call('Lease', 'LeaseRevoke', { ID: input.lease }, t);
        return { type: 'leaseRevoke', revision: headerRevision(r) };
      }
    }
  }
}
