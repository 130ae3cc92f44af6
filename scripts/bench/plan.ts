/**
 * What a benchmark run consists of: the phases, the sizes of every workload in the full and the
 * quick run, and the rows of the comparison table each phase fills.
 */
import { Recorder, RowDef } from './recorder';

/** The phases of a run, in the order they run. */
export const PHASES = ['generator-check', 'writes', 'reads', 'cluster', 'datascale', 'check-perf', 'restart'] as const;
/** One phase name. */
export type PhaseName = (typeof PHASES)[number];

/** Phases that only the full run has. */
export const FULL_ONLY: ReadonlySet<PhaseName> = new Set<PhaseName>(['cluster', 'datascale', 'check-perf', 'restart']);

/** Sizes of the workloads; the quick mode uses smaller ones. */
export interface SuiteParams {
  repeats: number;
  put1Total: number;
  put1000Total: number;
  range1Total: number;
  range1000Total: number;
  rangeManyTotal: number;
  stmTotal: number;
  loadgenMs: number;
  watchPutRate: number;
  /** Puts (1 client, not recorded) that a fresh cluster of either server gets before it is measured. */
  clusterWarmupTotal: number;
  clusterPut1Total: number;
  clusterPut1000Total: number;
  restartKeys: number;
  restartRepeats: number;
  checkPerfLoads: string[];
}

/** The sizes of the full run (about 20 minutes on a 2-core machine). */
export const FULL_PARAMS: SuiteParams = {
  repeats: 3,
  // Request counts as in etcd's performance guide: 10,000 at 1 client, 100,000 at 1,000 clients.
  put1Total: 10000,
  put1000Total: 100000,
  range1Total: 10000,
  range1000Total: 100000,
  rangeManyTotal: 1000,
  stmTotal: 6000,
  loadgenMs: 3000,
  watchPutRate: 100,
  clusterWarmupTotal: 2000,
  clusterPut1Total: 10000,
  clusterPut1000Total: 100000,
  restartKeys: 1000000,
  restartRepeats: 3,
  checkPerfLoads: ['m', 'l', 'xl'],
};

/** The sizes of the quick run (under 3 minutes). */
export const QUICK_PARAMS: SuiteParams = {
  repeats: 1,
  put1Total: 1000,
  put1000Total: 20000,
  range1Total: 1000,
  range1000Total: 10000,
  rangeManyTotal: 300,
  stmTotal: 3000,
  loadgenMs: 2000,
  watchPutRate: 100,
  clusterWarmupTotal: 0,
  clusterPut1Total: 0,
  clusterPut1000Total: 0,
  restartKeys: 0,
  restartRepeats: 0,
  checkPerfLoads: [],
};

function def(rec: Recorder, id: string, workload: string, metric: string, unit: string, better: 'higher' | 'lower'): void {
  rec.define({ id, workload, metric, unit, better } satisfies RowDef);
}

/** A count with thousands separators, as the row labels show it. */
export function n(x: number): string {
  return x.toLocaleString('en-US');
}

/** Declares every row the chosen phases produce, so the table has a stable order even when runs fail. */
export function defineRows(rec: Recorder, p: SuiteParams, phases: readonly PhaseName[]): void {
  const has = (x: PhaseName): boolean => phases.includes(x);
  if (has('writes')) {
    def(rec, 'put-1c.rps', 'put, 1 client / 1 conn', 'throughput', 'req/s', 'higher');
    def(rec, 'put-1c.p50', 'put, 1 client / 1 conn', 'p50 latency', 'ms', 'lower');
    def(rec, 'put-1c.p99', 'put, 1 client / 1 conn', 'p99 latency', 'ms', 'lower');
    def(rec, 'put-1000c.rps', 'put, 1,000 clients / 100 conns', 'throughput', 'req/s', 'higher');
    def(rec, 'put-1000c.p50', 'put, 1,000 clients / 100 conns', 'p50 latency', 'ms', 'lower');
    def(rec, 'put-1000c.p99', 'put, 1,000 clients / 100 conns', 'p99 latency', 'ms', 'lower');
    def(rec, 'mem-puts.rss', `memory after ${n(p.put1000Total)} puts of 256 B`, 'peak RSS (VmHWM)', 'MB', 'lower');
  }
  if (has('reads')) {
    for (const c of ['l', 's']) {
      const name = c === 'l' ? 'linearizable' : 'serializable';
      def(rec, `range-${c}-1c.rps`, `range 1 key, ${name}, 1 client`, 'throughput', 'req/s', 'higher');
      def(rec, `range-${c}-1c.p50`, `range 1 key, ${name}, 1 client`, 'p50 latency', 'ms', 'lower');
      def(rec, `range-${c}-1c.p99`, `range 1 key, ${name}, 1 client`, 'p99 latency', 'ms', 'lower');
    }
    for (const c of ['l', 's']) {
      const name = c === 'l' ? 'linearizable' : 'serializable';
      def(rec, `range-${c}-1000c.rps`, `range 1 key, ${name}, 1,000 clients`, 'throughput', 'req/s', 'higher');
      def(rec, `range-${c}-1000c.p99`, `range 1 key, ${name}, 1,000 clients`, 'p99 latency', 'ms', 'lower');
    }
    def(rec, 'range-1000keys.rps', 'range of 1,000 keys, 100 clients', 'throughput', 'req/s', 'higher');
    def(rec, 'range-1000keys.p99', 'range of 1,000 keys, 100 clients', 'p99 latency', 'ms', 'lower');
    def(rec, 'txn-cas.rps', 'txn compare-and-swap (stm), 1,000 clients', 'throughput', 'txn/s', 'higher');
    def(rec, 'txn-cas.p99', 'txn compare-and-swap (stm), 1,000 clients', 'p99 latency', 'ms', 'lower');
    def(rec, 'list-watch.rps', 'list 1,000 keys + watch, 10 clients', 'throughput', 'op/s', 'higher');
    def(rec, 'list-watch.p99', 'list 1,000 keys + watch, 10 clients', 'p99 latency', 'ms', 'lower');
    def(rec, 'watch-fanout.eps', `watch fan-out, 1,000 watchers, ${p.watchPutRate} puts/s`, 'events delivered', 'event/s', 'higher');
    def(rec, 'watch-fanout.p99', `watch fan-out, 1,000 watchers, ${p.watchPutRate} puts/s`, 'p99 delivery latency', 'ms', 'lower');
    def(rec, 'lock.rps', 'lock acquire + release, 100 clients', 'throughput', 'op/s', 'higher');
    def(rec, 'lock.p99', 'lock acquire + release, 100 clients', 'p99 latency', 'ms', 'lower');
    def(rec, 'lease.rps', 'lease grant + keep-alive, 100 clients', 'throughput', 'op/s', 'higher');
    def(rec, 'lease.p99', 'lease grant + keep-alive, 100 clients', 'p99 latency', 'ms', 'lower');
  }
  if (has('cluster')) {
    def(rec, 'cluster-put-1c.rps', '3 members: put, 1 client', 'throughput', 'req/s', 'higher');
    def(rec, 'cluster-put-1c.p50', '3 members: put, 1 client', 'p50 latency', 'ms', 'lower');
    def(rec, 'cluster-put-1c.p99', '3 members: put, 1 client', 'p99 latency', 'ms', 'lower');
    def(rec, 'cluster-put-1000c.rps', '3 members: put, 1,000 clients', 'throughput', 'req/s', 'higher');
    def(rec, 'cluster-put-1000c.p99', '3 members: put, 1,000 clients', 'p99 latency', 'ms', 'lower');
  }
  if (has('datascale')) {
    def(rec, 'datascale-m.used', 'check datascale m', 'memory used (as etcdctl reports)', 'MB', 'lower');
    def(rec, 'datascale-m.rss', 'check datascale m', 'peak RSS (VmHWM)', 'MB', 'lower');
  }
  if (has('check-perf')) {
    for (const l of p.checkPerfLoads) def(rec, `check-perf-${l}.wps`, `check perf ${l}`, 'throughput (PASS/FAIL)', 'writes/s', 'higher');
  }
  if (has('restart')) {
    def(rec, 'restart.load', `load ${n(p.restartKeys)} keys (txn-put, 100 puts per txn)`, 'throughput', 'key/s', 'higher');
    def(rec, 'restart.time', `restart with ${n(p.restartKeys)} keys`, 'spawn → first get answered', 's', 'lower');
    def(rec, 'restart.rss', `restart with ${n(p.restartKeys)} keys`, 'peak RSS (VmHWM)', 'MB', 'lower');
  }
}
