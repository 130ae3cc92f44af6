/**
 * Test clients for leases, locks and elections, built from our .proto files with
 * @grpc/proto-loader: promise-returning unary calls on every service, a lease keep-alive loop that
 * moves to another endpoint when a stream fails, a client-side mutex built the way etcd's
 * concurrency package builds it (Txn + Range + Watch; what `etcdctl lock` runs), a watch collector,
 * and a long-running etcdctl process whose output can be awaited.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { ROOT, requireTool, sleep } from './harness';

const def = protoLoader.loadSync(['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'], {
  includeDirs: [path.join(ROOT, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def) as unknown as Record<string, Record<string, grpc.ServiceClientConstructor>>;

/** Untyped message objects as proto-loader produces them. */
export type Msg = Record<string, unknown>;

/** A failed call: gRPC code and message. */
export interface CallFailure {
  code: number;
  details: string;
}

type UnaryFn = (r: Msg, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientUnaryCall;

/** The gRPC services of one endpoint. */
export class Clients {
  readonly kv: grpc.Client;
  readonly lease: grpc.Client;
  readonly lock: grpc.Client;
  readonly election: grpc.Client;
  readonly watch: grpc.Client;

  constructor(readonly endpoint: string) {
    const mk = (pkgName: string, svc: string): grpc.Client => new pkg[pkgName]![svc]!(endpoint, grpc.credentials.createInsecure());
    this.kv = mk('etcdserverpb', 'KV');
    this.lease = mk('etcdserverpb', 'Lease');
    this.watch = mk('etcdserverpb', 'Watch');
    this.lock = mk('v3lockpb', 'Lock');
    this.election = mk('v3electionpb', 'Election');
  }

  /** Calls a unary method; rejects with the ServiceError. `signal` cancels the call. */
  call(client: grpc.Client, method: string, req: Msg, deadlineMs = 10000, signal?: AbortSignal): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, UnaryFn>)[method]!;
      const c = fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
      signal?.addEventListener('abort', () => c.cancel(), { once: true });
    });
  }

  /** Calls a unary method; resolves with the response or the failure (never rejects). */
  attempt(client: grpc.Client, method: string, req: Msg, deadlineMs = 10000): Promise<{ ok: Msg } | { err: CallFailure }> {
    return this.call(client, method, req, deadlineMs).then(
      (ok) => ({ ok }),
      (e: unknown) => ({ err: { code: (e as grpc.ServiceError).code, details: (e as grpc.ServiceError).details } }),
    );
  }

  /** Grants a lease; resolves with its id (decimal string). */
  async grant(ttl: number): Promise<string> {
    const r = await this.call(this.lease, 'LeaseGrant', { TTL: ttl });
    return r.ID as string;
  }

  /** Puts a key (optionally with a lease); resolves with the header revision. */
  async put(key: string, value: string, lease = '0'): Promise<number> {
    const r = await this.call(this.kv, 'Put', { key: Buffer.from(key), value: Buffer.from(value), lease });
    return Number((r.header as Msg).revision);
  }

  /** Reads one key's value ('' when absent). */
  async get(key: string, serializable = false): Promise<string> {
    const r = await this.call(this.kv, 'Range', { key: Buffer.from(key), serializable });
    const kv = (r.kvs as Msg[])[0];
    return kv === undefined ? '' : (kv.value as Buffer).toString();
  }

  /** Closes every channel. */
  close(): void {
    for (const c of [this.kv, this.lease, this.lock, this.election, this.watch]) c.close();
  }
}

/** The end of the range of keys starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * Keeps a lease alive from outside: every `intervalMs` sends a keep-alive on a LeaseKeepAlive
 * stream; when a stream fails or an answer takes over a second, moves to the next endpoint.
 * `stop()` ends it (as if the owning process died).
 */
export class KeepAliveLoop {
  private stopped = false;
  private readonly done: Promise<void>;
  /** TTLs answered, in order. */
  readonly ttls: number[] = [];

  constructor(
    private readonly endpoints: string[],
    private readonly id: string,
    private readonly intervalMs = 500,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    let i = 0;
    while (!this.stopped) {
      const c = new Clients(this.endpoints[i % this.endpoints.length]!);
      const stream = (c.lease as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<Msg, Msg> }).LeaseKeepAlive();
      let broken = false;
      let answer: ((ttl: number) => void) | undefined;
      stream.on('data', (m: Msg) => answer?.(Number(m.TTL)));
      stream.on('error', () => {
        broken = true;
      });
      while (!this.stopped && !broken) {
        const ttl = await new Promise<number | undefined>((resolve) => {
          const t = setTimeout(() => resolve(undefined), 1000);
          answer = (v) => {
            clearTimeout(t);
            resolve(v);
          };
          stream.write({ ID: this.id });
        });
        if (ttl === undefined) break;
        this.ttls.push(ttl);
        await sleep(this.intervalMs);
      }
      stream.cancel();
      c.close();
      i++;
    }
  }

  /** Stops sending keep-alives; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/** Waits for the first DELETE of `key` at or after `rev` through a Watch stream. */
export function waitDelete(c: Clients, key: Buffer, rev: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = (c.watch as unknown as { Watch(): grpc.ClientDuplexStream<Msg, Msg> }).Watch();
    stream.on('data', (m: Msg) => {
      if (m.canceled === true) {
        stream.cancel();
        reject(new Error(`watch canceled: ${String(m.cancel_reason)}`));
        return;
      }
      if ((m.events as Msg[]).some((e) => e.type === 1)) {
        stream.cancel();
        resolve();
      }
    });
    stream.on('error', (e: grpc.ServiceError) => {
      if (e.code !== grpc.status.CANCELLED) reject(e);
    });
    stream.write({ create_request: { key, start_revision: rev } });
  });
}

/**
 * A mutex taken from the client side, as etcd's concurrency package (and so `etcdctl lock`) takes
 * it: a Txn creates `name/<lease hex>` with the lease unless it exists and reads the oldest key;
 * unless that is ours, wait for the deletion of the youngest older key until none is left.
 */
export class ClientMutex {
  private key: Buffer = Buffer.alloc(0);

  constructor(
    private readonly c: Clients,
    private readonly name: string,
    private readonly lease: string,
  ) {}

  /** Acquires the lock; resolves with the own key. */
  async lock(): Promise<Buffer> {
    const pfx = `${this.name}/`;
    this.key = Buffer.from(`${pfx}${BigInt(this.lease).toString(16)}`);
    const owner = { request_range: { key: Buffer.from(pfx), range_end: prefixEnd(pfx), sort_order: 1, sort_target: 2, limit: 1 } };
    const res = await this.c.call(this.c.kv, 'Txn', {
      compare: [{ result: 0, target: 1, key: this.key, create_revision: 0 }],
      success: [{ request_put: { key: this.key, value: Buffer.alloc(0), lease: this.lease } }, owner],
      failure: [{ request_range: { key: this.key } }, owner],
    });
    const responses = res.responses as Msg[];
    let myRev = Number((res.header as Msg).revision);
    if (res.succeeded !== true) myRev = Number((((responses[0]!.response_range as Msg).kvs as Msg[])[0]!).create_revision);
    const holder = ((responses[1]!.response_range as Msg).kvs as Msg[])[0];
    if (holder === undefined || Number(holder.create_revision) === myRev) return this.key;
    for (;;) {
      const r = await this.c.call(this.c.kv, 'Range', {
        key: Buffer.from(pfx),
        range_end: prefixEnd(pfx),
        sort_order: 2,
        sort_target: 2,
        limit: 1,
        max_create_revision: myRev - 1,
      });
      const pred = (r.kvs as Msg[])[0];
      if (pred === undefined) return this.key;
      await waitDelete(this.c, pred.key as Buffer, Number((r.header as Msg).revision));
    }
  }

  /** Releases the lock (deletes the own key). */
  async unlock(): Promise<void> {
    await this.c.call(this.c.kv, 'DeleteRange', { key: this.key });
  }
}

/** A decoded event of a collected watch. */
export interface SeenEvent {
  type: 'PUT' | 'DELETE';
  key: string;
  modRevision: number;
}

/** Collects the events of a watch on [key, rangeEnd) from `startRev`. */
export class WatchCollector {
  readonly events: SeenEvent[] = [];
  private readonly stream: grpc.ClientDuplexStream<Msg, Msg>;

  constructor(c: Clients, key: string, rangeEnd: Buffer, startRev: number) {
    this.stream = (c.watch as unknown as { Watch(): grpc.ClientDuplexStream<Msg, Msg> }).Watch();
    this.stream.on('data', (m: Msg) => {
      for (const e of m.events as Msg[]) {
        const kv = e.kv as Msg;
        this.events.push({ type: e.type === 1 ? 'DELETE' : 'PUT', key: (kv.key as Buffer).toString(), modRevision: Number(kv.mod_revision) });
      }
    });
    this.stream.on('error', () => undefined);
    this.stream.write({ create_request: { key: Buffer.from(key), range_end: rangeEnd, start_revision: startRev } });
  }

  /** Waits until `pred` holds for the collected events (or throws after `timeoutMs`). */
  async until(pred: (events: SeenEvent[]) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (Date.now() > deadline) throw new Error(`watch condition not met; events: ${JSON.stringify(this.events)}`);
      await sleep(50);
    }
  }

  /** Cancels the watch stream. */
  close(): void {
    this.stream.cancel();
  }
}

/** A long-running etcdctl process (e.g. `lock NAME` or `elect NAME VALUE`) whose output can be awaited. */
export class CtlProcess {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(endpoints: string, args: string[]) {
    this.proc = spawn(requireTool('etcdctl'), [`--endpoints=${endpoints}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    this.proc.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  /** Waits until stdout matches `re` (or throws with the output after `timeoutMs`). */
  async waitOutput(re: RegExp, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.stdout)) {
      if (Date.now() > deadline) throw new Error(`etcdctl output never matched ${String(re)}:\n${this.stdout}\n${this.stderr}`);
      await sleep(50);
    }
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}
