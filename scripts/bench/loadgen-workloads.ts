/**
 * The workloads of the benchmark's own load generator, as run inside one generator process:
 * watch fan-out, lease grant + keep-alive, lock acquire/release and list+watch. `prepare` sets a
 * workload up (connections, watchers, leases); the returned `run()` does the measured part.
 * `loadgen.ts` is the command that runs them and merges several processes' results.
 */
import { Connection, decodeRangeSummary, Msg, prefixEnd, rpcError, stampedValue, wallClockMs, WatchResponseSummary } from './grpc-clients';
import { LatencyHistogram } from './stats';

/** The workloads this generator knows. */
export type LoadgenWorkload = 'watch-fanout' | 'lease' | 'lock' | 'list-watch';

/** Every workload name, for argument checking. */
export const LOADGEN_WORKLOADS: readonly LoadgenWorkload[] = ['watch-fanout', 'lease', 'lock', 'list-watch'];

/** Parameters of one generator run (totals across all worker processes). */
export interface LoadgenOptions {
  workload: LoadgenWorkload;
  /** Client endpoints "host:port"; connections are spread over them round-robin. */
  endpoints: string[];
  /** Concurrent workers issuing operations (lease, lock, list-watch) or putters in flight (watch-fanout). */
  concurrency: number;
  /** gRPC connections the workers share. */
  conns: number;
  /** Length of the measured window, ms. */
  durationMs: number;
  /** watch-fanout: watchers in total, all on `prefix`. */
  watchers: number;
  /** watch-fanout: Watch streams the watchers are spread over. */
  streams: number;
  /** watch-fanout: puts per second issued under the prefix (0 = as fast as `concurrency` allows). */
  putRate: number;
  /** Value size of puts, bytes. */
  valueSize: number;
  /** Key prefix the workload works under (list-watch expects keys there already). */
  prefix: string;
}

/** The result of one run (one process, or several merged). */
export interface LoadgenResult {
  workload: LoadgenWorkload;
  /** Completed operations (watch-fanout: events delivered). */
  ops: number;
  /** Operations per second over the measured window (watch-fanout: events delivered per second). */
  opsPerSec: number;
  /** Latency per operation (watch-fanout: put send → event receive), merged across processes. */
  hist: LatencyHistogram;
  /** Error text → count. */
  errors: Record<string, number>;
  /** True when the server answered UNIMPLEMENTED for the workload's service. */
  unimplemented: boolean;
  /**
   * Workload-specific counts (watch-fanout: puts, putsIssued, watchers, windowEvents, spanMs,
   * windowMs) and clientCpuCores: CPU the generator processes used during the run, in cores.
   */
  extra: Record<string, number>;
}

const UNIMPLEMENTED = 12;

/** Splits `total` into `parts` near-equal integers and returns part `index`. */
export function share(total: number, parts: number, index: number): number {
  const base = Math.floor(total / parts);
  return base + (index < total % parts ? 1 : 0);
}

function now(): number {
  return performance.now();
}

class ErrorTally {
  readonly counts: Record<string, number> = {};
  total = 0;
  unimplemented = false;
  add(e: unknown): void {
    const r = rpcError(e);
    if (r.code === UNIMPLEMENTED) this.unimplemented = true;
    const k = r.code >= 0 ? `code ${r.code}: ${r.details}` : r.details;
    this.counts[k] = (this.counts[k] ?? 0) + 1;
    this.total += 1;
  }
}

/**
 * Runs `concurrency` workers, each calling `op(worker)` back to back until `durationMs` has passed,
 * and records each successful op's latency. A worker that fails backs off 5 ms; every worker stops
 * on UNIMPLEMENTED or after 10,000 errors in total.
 */
async function closedLoop(concurrency: number, durationMs: number, op: (w: number) => Promise<void>, hist: LatencyHistogram, errors: ErrorTally): Promise<{ ops: number; elapsedMs: number }> {
  const t0 = now();
  const end = t0 + durationMs;
  let ops = 0;
  const worker = async (w: number): Promise<void> => {
    while (now() < end && !errors.unimplemented && errors.total < 10000) {
      const s = now();
      try {
        await op(w);
        hist.record(now() - s);
        ops += 1;
      } catch (e) {
        errors.add(e);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { ops, elapsedMs: now() - t0 };
}

function connections(endpoints: string[], n: number, offset: number): Connection[] {
  return Array.from({ length: Math.max(1, n) }, (_, i) => new Connection(endpoints[(i + offset) % endpoints.length]!));
}

/** A workload prepared in one process: `run()` does the measured part, `close()` releases everything. */
export interface Prepared {
  run(): Promise<LoadgenResult>;
  close(): void;
}

/** Lease: each op grants a lease (TTL 60 s) and sends one keep-alive for it on the worker's stream. */
async function prepareLease(o: LoadgenOptions, index: number): Promise<Prepared> {
  const conns = connections(o.endpoints, o.conns, index);
  const hist = new LatencyHistogram();
  const errors = new ErrorTally();
  const streams = Array.from({ length: o.concurrency }, (_, w) => {
    const s = conns[w % conns.length]!.bidi('etcdserverpb.Lease', 'LeaseKeepAlive');
    const waiting: ((r: Msg) => void)[] = [];
    s.on('data', (r: Msg) => waiting.shift()?.(r));
    s.on('error', () => undefined);
    return { s, waiting };
  });
  const keepAlive = (w: number, id: string): Promise<Msg> =>
    new Promise((resolve, reject) => {
      const st = streams[w]!;
      const timer = setTimeout(() => reject(new Error('keep-alive response timed out')), 30000);
      st.waiting.push((r) => {
        clearTimeout(timer);
        if (String(r['ID']) !== id) reject(new Error(`keep-alive answered for lease ${String(r['ID'])}, not ${id}`));
        else if (String(r['TTL']) === '0' || String(r['TTL']) === '-1') reject(new Error(`keep-alive: lease ${id} not found`));
        else resolve(r);
      });
      st.s.write({ ID: id });
    });
  return {
    async run() {
      const r = await closedLoop(o.concurrency, o.durationMs, async (w) => {
        const g = await conns[w % conns.length]!.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: 60, ID: 0 });
        await keepAlive(w, String(g['ID']));
      }, hist, errors);
      return { workload: 'lease', ops: r.ops, opsPerSec: (r.ops * 1000) / r.elapsedMs, hist, errors: errors.counts, unimplemented: errors.unimplemented, extra: {} };
    },
    close() {
      for (const st of streams) st.s.end();
      for (const c of conns) c.close();
    },
  };
}

/** Lock: each worker holds a lease and, per op, acquires and releases its own lock name. */
async function prepareLock(o: LoadgenOptions, index: number): Promise<Prepared> {
  const conns = connections(o.endpoints, o.conns, index);
  const hist = new LatencyHistogram();
  const errors = new ErrorTally();
  const leases: string[] = [];
  for (let w = 0; w < o.concurrency; w++) {
    try {
      const g = await conns[w % conns.length]!.unary('etcdserverpb.Lease', 'LeaseGrant', { TTL: 120, ID: 0 });
      leases.push(String(g['ID']));
    } catch (e) {
      errors.add(e);
      leases.push('0');
    }
  }
  return {
    async run() {
      const r = await closedLoop(o.concurrency, o.durationMs, async (w) => {
        const c = conns[w % conns.length]!;
        const l = await c.unary('v3lockpb.Lock', 'Lock', { name: Buffer.from(`${o.prefix}${index}-${w}`), lease: leases[w]! });
        await c.unary('v3lockpb.Lock', 'Unlock', { key: l['key'] });
      }, hist, errors);
      return { workload: 'lock', ops: r.ops, opsPerSec: (r.ops * 1000) / r.elapsedMs, hist, errors: errors.counts, unimplemented: errors.unimplemented, extra: {} };
    },
    close() {
      for (const c of conns) c.close();
    },
  };
}

/** A Watch stream that resolves one pending create or cancel at a time. */
interface SerialWatch {
  create(req: Msg): Promise<WatchResponseSummary>;
  cancel(watchId: number): void;
  end(): void;
}

function serialWatch(c: Connection): SerialWatch {
  const s = c.watchStream();
  let pending: { resolve: (r: WatchResponseSummary) => void; reject: (e: Error) => void } | null = null;
  s.on('data', (r: WatchResponseSummary) => {
    if (r.created && pending !== null) {
      const p = pending;
      pending = null;
      if (r.canceled) p.reject(new Error(`watch create refused: ${r.cancelReason}`));
      else p.resolve(r);
    }
  });
  s.on('error', (e: Error) => {
    const p = pending;
    pending = null;
    p?.reject(e);
  });
  return {
    create(req) {
      return new Promise((resolve, reject) => {
        if (pending !== null) {
          reject(new Error('one create at a time'));
          return;
        }
        const timer = setTimeout(() => {
          pending = null;
          reject(new Error('watch create timed out'));
        }, 30000);
        pending = {
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        s.write({ create_request: req });
      });
    },
    cancel(watchId) {
      s.write({ cancel_request: { watch_id: watchId } });
    },
    end() {
      s.end();
    },
  };
}

/**
 * List+watch, as an informer starts: a linearizable Range of every key under the prefix, then a
 * watch on the prefix from the list's revision + 1, timed until the watch is created; the watcher
 * is cancelled before the next op.
 */
async function prepareListWatch(o: LoadgenOptions, index: number): Promise<Prepared> {
  const conns = connections(o.endpoints, o.conns, index);
  const hist = new LatencyHistogram();
  const errors = new ErrorTally();
  const key = Buffer.from(o.prefix);
  const end = prefixEnd(key);
  const watches = Array.from({ length: o.concurrency }, (_, w) => serialWatch(conns[w % conns.length]!));
  let listed = 0;
  return {
    async run() {
      const r = await closedLoop(o.concurrency, o.durationMs, async (w) => {
        const c = conns[w % conns.length]!;
        const res = await c.unaryWith('etcdserverpb.KV', 'Range', { key, range_end: end }, decodeRangeSummary);
        listed += res.kvs;
        const rev = res.revision;
        const created = await watches[w]!.create({ key, range_end: end, start_revision: rev + 1 });
        watches[w]!.cancel(created.watchId);
      }, hist, errors);
      return {
        workload: 'list-watch', ops: r.ops, opsPerSec: (r.ops * 1000) / r.elapsedMs, hist, errors: errors.counts, unimplemented: errors.unimplemented,
        extra: { keysListedPerOp: r.ops > 0 ? listed / r.ops : 0 },
      };
    },
    close() {
      for (const w of watches) w.end();
      for (const c of conns) c.close();
    },
  };
}

/** Length of the unmeasured warm-up of the watch fan-out, ms. */
export const FANOUT_WARMUP_MS = 1000;

/**
 * Watch fan-out: `watchers` watchers on one prefix over `streams` streams; puts under the prefix
 * are issued at `putRate` per second (at most `concurrency` in flight), each value stamped with
 * its send time, first for FANOUT_WARMUP_MS (not measured), then for the window. Every event of a
 * window put records receive time − stamp. After the window the generator waits until no event
 * has arrived for one second (at most 15 s).
 */
async function prepareWatchFanout(o: LoadgenOptions, index: number, workers: number): Promise<Prepared> {
  const hist = new LatencyHistogram();
  const errors = new ErrorTally();
  const watchersHere = share(o.watchers, workers, index);
  const streamsHere = Math.max(1, share(o.streams, workers, index));
  const rateHere = o.putRate / workers;
  const key = Buffer.from(o.prefix);
  const end = prefixEnd(key);
  const streamConns = connections(o.endpoints, streamsHere, index);
  const putConns = connections(o.endpoints, Math.max(1, o.conns), index);
  let events = 0;
  let windowEvents = 0;
  let inWindow = false;
  let lastEventAt = 0;
  let created = 0;
  /** Events of puts sent before this wall-clock time (the warm-up) are not measured. */
  let measureFrom = Infinity;
  const streams = streamConns.map((c) => {
    const s = c.watchStream();
    s.on('data', (r: WatchResponseSummary) => {
      if (r.created) created += 1;
      if (r.events > 0) {
        const t = wallClockMs();
        let measured = 0;
        for (const st of r.stamps) {
          if (st < measureFrom) continue;
          hist.record(t - st);
          measured += 1;
        }
        if (measured === 0) return;
        lastEventAt = now();
        events += measured;
        if (inWindow) windowEvents += measured;
      }
    });
    s.on('error', (e: Error) => errors.add(e));
    return s;
  });
  for (let i = 0; i < watchersHere; i++) streams[i % streams.length]!.write({ create_request: { key, range_end: end } });
  const setupDeadline = now() + 60000;
  while (created < watchersHere && now() < setupDeadline && !errors.unimplemented) await new Promise((r) => setTimeout(r, 10));
  if (created < watchersHere) throw new Error(`only ${created} of ${watchersHere} watchers were created`);
  return {
    async run() {
      let issued = 0;
      let ok = 0;
      let counting = false;
      const inFlight = new Set<Promise<void>>();
      const putOnce = (): void => {
        const n = issued++;
        const counted = counting;
        const p = putConns[n % putConns.length]!
          .unary('etcdserverpb.KV', 'Put', { key: Buffer.from(`${o.prefix}${index}-${n % 1000}`), value: stampedValue(o.valueSize) })
          .then(
            () => {
              if (counted) ok += 1;
            },
            (e: unknown) => errors.add(e),
          )
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      };
      /** Issues puts at the rate for `ms`. */
      const issueFor = async (ms: number): Promise<void> => {
        const t0 = now();
        const stop = t0 + ms;
        const before = issued;
        while (now() < stop && !errors.unimplemented) {
          const due = o.putRate > 0 ? Math.floor(((now() - t0) * rateHere) / 1000) : Number.MAX_SAFE_INTEGER;
          while (issued - before < due && inFlight.size < o.concurrency) putOnce();
          await new Promise((r) => setTimeout(r, o.putRate > 0 ? 1 : 0));
        }
      };
      // Warm-up: the same puts for FANOUT_WARMUP_MS, not measured. A fresh generator process
      // otherwise delivers its first few hundred milliseconds of events late (its own code is not
      // yet compiled), whichever server it loads, and that burst alone sets the p99.
      await issueFor(FANOUT_WARMUP_MS);
      const warmupIssued = issued;
      measureFrom = wallClockMs();
      counting = true;
      const t0 = now();
      const stop = t0 + o.durationMs;
      inWindow = true;
      await issueFor(o.durationMs);
      inWindow = false;
      const windowMs = now() - t0;
      await Promise.all([...inFlight]);
      const drainDeadline = now() + 15000;
      while (now() < drainDeadline && now() - Math.max(lastEventAt, stop) < 1000) await new Promise((r) => setTimeout(r, 50));
      const spanMs = Math.max(windowMs, lastEventAt - t0);
      return {
        workload: 'watch-fanout', ops: events, opsPerSec: (events * 1000) / spanMs, hist, errors: errors.counts, unimplemented: errors.unimplemented,
        extra: { puts: ok, putsIssued: issued - warmupIssued, warmupPuts: warmupIssued, watchers: watchersHere, windowEvents, spanMs, windowMs },
      };
    },
    close() {
      for (const s of streams) s.end();
      for (const c of [...streamConns, ...putConns]) c.close();
    },
  };
}

/**
 * Prepares worker `index` of `workers` for the workload: takes this worker's share of the
 * concurrency, connections and watchers, connects, and creates watchers or leases. Rejects when
 * the setup fails (for example, watchers not created within 60 s).
 */
export async function prepare(o: LoadgenOptions, index: number, workers: number): Promise<Prepared> {
  const mine: LoadgenOptions = { ...o, concurrency: Math.max(1, share(o.concurrency, workers, index)), conns: Math.max(1, share(o.conns, workers, index)) };
  switch (o.workload) {
    case 'lease':
      return prepareLease(mine, index);
    case 'lock':
      return prepareLock(mine, index);
    case 'list-watch':
      return prepareListWatch(mine, index);
    case 'watch-fanout':
      return prepareWatchFanout(mine, index, workers);
  }
}
