/**
 * The benchmark suite: which workloads run, with what settings, against which deployment, and how
 * their figures are recorded. Each phase starts a fresh deployment of one server, runs its
 * workloads, and stops it; etcd and ours alternate within every repeat so that neither runs while
 * the other is under load and slow drifts of the machine hit both alike.
 */
import { Connection } from './grpc-clients';
import { runLoadgen } from './loadgen';
import { LoadgenOptions, LoadgenResult, LoadgenWorkload } from './loadgen-workloads';
import { BenchmarkSummary, parseBenchmarkOutput, parseCheckPerf, parseDatascale } from './parse';
import { defineRows, n, PhaseName, SuiteParams } from './plan';
import { Recorder } from './recorder';
import {
  cpuSeconds, Deployment, Member, ServerKind, peakRssBytes, restartMember, runCommand, startDeployment, stopDeployment, stopMember, tools,
} from './servers';

/** Everything a suite run needs. */
export interface SuiteContext {
  params: SuiteParams;
  phases: readonly PhaseName[];
  /** etcd's benchmark tool. */
  benchmark: string;
  rec: Recorder;
  log: (line: string) => void;
  /** The generator check's findings, filled by the generator-check phase. */
  generatorCheck: GeneratorCheckRow[];
  /** Every external command run, for the record. */
  commands: string[];
}

/** One line of the generator check: the same workload against etcd with one and two generator processes. */
export interface GeneratorCheckRow {
  workload: string;
  metric: string;
  oneProcess: number | null;
  twoProcesses: number | null;
  /** What the second run changed: "2× concurrency" or "same load, 2× client CPU". */
  change: string;
  /** True when the second run did not raise etcd's figure by more than 15 %. */
  saturated: boolean | null;
  /** CPU used by the generator processes during each run, in cores. */
  clientCpu: [number | null, number | null];
  /** CPU used by etcd during each run (including the generator's setup), in cores. */
  serverCpu: [number | null, number | null];
}

const KINDS: readonly ServerKind[] = ['etcd', 'ours'];
const MB = 1024 * 1024;

/** Concurrency of our generator's workloads (per process). */
const LOADGEN: Record<LoadgenWorkload, { concurrency: number; conns: number }> = {
  'list-watch': { concurrency: 10, conns: 10 },
  'watch-fanout': { concurrency: 100, conns: 4 },
  lock: { concurrency: 100, conns: 10 },
  lease: { concurrency: 100, conns: 10 },
};

const RANGE_KEY = 'bench-range-key';
const MANY_PREFIX = 'bench-range-1000/';

/** Runs etcd's benchmark tool and parses its summary. Throws when it fails, times out or prints no summary. */
async function tool(ctx: SuiteContext, d: Deployment, args: string[], timeoutMs: number): Promise<BenchmarkSummary> {
  const full = [`--endpoints=${d.endpoints}`, '--precise', ...args];
  ctx.commands.push(`etcd-benchmark ${full.join(' ')}`);
  const r = await runCommand(ctx.benchmark, full, timeoutMs);
  if (r.timedOut) throw new Error(`benchmark ${args.join(' ')} did not finish within ${timeoutMs / 1000} s (killed)`);
  if (r.code !== 0) throw new Error(`benchmark ${args.join(' ')} exited with ${r.code ?? r.signal}: ${(r.stderr.trim().split('\n').slice(-5).join(' | ') || r.stdout.slice(-500))}`);
  return parseBenchmarkOutput(r.stdout);
}

/** Runs etcdctl (API v3) against the deployment's first endpoint. */
async function etcdctl(ctx: SuiteContext, d: Deployment, args: string[], timeoutMs: number): Promise<string> {
  const full = [`--endpoints=${d.members[0]!.endpoint}`, ...args];
  ctx.commands.push(`etcdctl ${full.join(' ')}`);
  const r = await runCommand(tools.etcdctl, full, timeoutMs, { ETCDCTL_API: '3' });
  if (r.timedOut) throw new Error(`etcdctl ${args.join(' ')} did not finish within ${timeoutMs / 1000} s (killed)`);
  return r.stdout + (r.stderr.trim() !== '' ? `\n${r.stderr}` : '');
}

function errorsText(e: Record<string, number>): string {
  return Object.entries(e).slice(0, 3).map(([k, v]) => `${v}× ${k}`).join('; ');
}

/** Records a tool summary under `prefix` (throughput and the wanted percentiles). Errors in the summary count as a failure. */
function recordSummary(ctx: SuiteContext, kind: ServerKind, prefix: string, label: string, s: BenchmarkSummary, pcts: string[]): void {
  ctx.rec.record(kind, `${prefix}.rps`, s.requestsPerSec);
  for (const p of pcts) ctx.rec.record(kind, `${prefix}.p${p}`, s.percentilesMs[p] ?? null);
  if (Object.keys(s.errors).length > 0) {
    ctx.rec.fail(kind, label, `requests failed: ${errorsText(s.errors)}`);
    ctx.rec.note(`${prefix}.rps`, `${kind}: some requests failed (${errorsText(s.errors)})`);
  }
}

/** The first member whose process has exited, or null when all are running. */
function exitedMember(d: Deployment): Member | null {
  return d.members.find((m) => m.proc.exitCode !== null || m.proc.signalCode !== null) ?? null;
}

/**
 * Runs one workload step: skips it (as a failure) when a member has exited, and turns an
 * exception into a recorded failure so that the rest of the phase still runs.
 */
async function step(ctx: SuiteContext, kind: ServerKind, d: Deployment, label: string, fn: () => Promise<void>): Promise<void> {
  const dead = exitedMember(d);
  if (dead !== null) {
    ctx.rec.fail(kind, label, `not run: member ${dead.name} had exited (${dead.proc.exitCode ?? dead.proc.signalCode})`);
    return;
  }
  const t0 = performance.now();
  try {
    await fn();
    ctx.log(`    ${kind.padEnd(4)} ${label} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    ctx.rec.fail(kind, label, msg);
    ctx.log(`    ${kind.padEnd(4)} ${label}: FAILED: ${msg.split('\n')[0]}`);
  }
}

/** Puts `count` keys `prefix%04d` with values of `size` bytes, `concurrency` at a time. */
async function fillKeys(endpoint: string, prefix: string, count: number, size: number, concurrency = 50): Promise<void> {
  const c = new Connection(endpoint);
  try {
    let next = 0;
    const value = Buffer.alloc(size, 0x76);
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        await c.unary('etcdserverpb.KV', 'Put', { key: Buffer.from(`${prefix}${String(i).padStart(4, '0')}`), value });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    c.close();
  }
}

/** Counts every key in the store (a count-only Range over all keys). */
async function countKeys(endpoint: string): Promise<number> {
  const c = new Connection(endpoint);
  try {
    const r = await c.unary('etcdserverpb.KV', 'Range', { key: Buffer.from([0]), range_end: Buffer.from([0]), count_only: true }, 120000);
    return Number(r['count'] ?? 0);
  } finally {
    c.close();
  }
}

/**
 * Starts a fresh deployment, runs `fn` on it and stops it. A member that exited on its own during
 * `fn` is a failure, unless `stopsMembers` says that `fn` stops members itself (the restart phase).
 */
async function withDeployment(ctx: SuiteContext, kind: ServerKind, size: number, label: string, fn: (d: Deployment) => Promise<void>, stopsMembers = false): Promise<void> {
  let d: Deployment;
  try {
    d = await startDeployment(kind, size);
  } catch (e) {
    ctx.rec.fail(kind, label, `could not start: ${e instanceof Error ? e.message : String(e)}`);
    ctx.log(`    ${kind} ${label}: could not start the server`);
    return;
  }
  try {
    await fn(d);
    const dead = stopsMembers ? null : exitedMember(d);
    if (dead !== null) ctx.rec.fail(kind, label, `member ${dead.name} exited during the phase (${dead.proc.exitCode ?? dead.proc.signalCode})`);
  } finally {
    await stopDeployment(d);
  }
}

function loadgenOptions(ctx: SuiteContext, d: Deployment, workload: LoadgenWorkload, scale = 1): LoadgenOptions {
  const c = LOADGEN[workload];
  return {
    workload,
    endpoints: d.members.map((m) => m.endpoint),
    concurrency: c.concurrency * scale,
    conns: c.conns * scale,
    durationMs: ctx.params.loadgenMs,
    watchers: 1000,
    streams: 4,
    putRate: ctx.params.watchPutRate,
    valueSize: 64,
    prefix: workload === 'list-watch' ? MANY_PREFIX : `bench-${workload}/`,
  };
}

function loadgenErrors(r: LoadgenResult): string | null {
  const total = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return total > 0 ? `${total} operations failed: ${errorsText(r.errors)}` : null;
}

/** Runs one of our generator's workloads and records its rate and p99 (n/a when the server lacks the service). */
async function loadgenStep(ctx: SuiteContext, kind: ServerKind, d: Deployment, workload: LoadgenWorkload, rowPrefix: string, rateKey: string, label: string): Promise<void> {
  await step(ctx, kind, d, label, async () => {
    const r = await runLoadgen(loadgenOptions(ctx, d, workload));
    if (r.unimplemented) {
      ctx.rec.record(kind, `${rowPrefix}.${rateKey}`, null);
      ctx.rec.record(kind, `${rowPrefix}.p99`, null);
      ctx.rec.note(`${rowPrefix}.${rateKey}`, `${kind}: the server answered UNIMPLEMENTED (n/a)`);
      return;
    }
    ctx.rec.record(kind, `${rowPrefix}.${rateKey}`, r.opsPerSec);
    ctx.rec.record(kind, `${rowPrefix}.p99`, r.hist.quantile(0.99));
    if (workload === 'watch-fanout') {
      const expected = (r.extra['puts'] ?? 0) * 1000;
      const got = r.ops;
      if (expected > 0 && got < expected) {
        ctx.rec.note(`${rowPrefix}.${rateKey}`, `${kind}: ${n(got)} of ${n(expected)} events arrived within 15 s after the last put`);
      }
    }
    const err = loadgenErrors(r);
    if (err !== null) {
      ctx.rec.fail(kind, label, err);
      ctx.rec.note(`${rowPrefix}.${rateKey}`, `${kind}: ${err}`);
    }
  });
}

/** The writes phase: put at 1,000 clients on a fresh member (then its peak RSS), then put at 1 client. */
async function writesPhase(ctx: SuiteContext, kind: ServerKind): Promise<void> {
  const p = ctx.params;
  await withDeployment(ctx, kind, 1, 'writes', async (d) => {
    await step(ctx, kind, d, `put ${n(p.put1000Total)} × 256 B, 1,000 clients`, async () => {
      const s = await tool(ctx, d, ['--conns=100', '--clients=1000', 'put', '--key-size=8', '--sequential-keys', `--total=${p.put1000Total}`, '--val-size=256'], 600000);
      recordSummary(ctx, kind, 'put-1000c', 'put 1,000 clients', s, ['50', '99']);
      const rss = peakRssBytes(d.members[0]!.proc.pid);
      ctx.rec.record(kind, 'mem-puts.rss', rss === null ? null : rss / MB);
    });
    await step(ctx, kind, d, `put ${n(p.put1Total)} × 256 B, 1 client`, async () => {
      const s = await tool(ctx, d, ['--conns=1', '--clients=1', 'put', '--key-size=8', '--sequential-keys', `--total=${p.put1Total}`, '--val-size=256'], 600000);
      recordSummary(ctx, kind, 'put-1c', 'put 1 client', s, ['50', '99']);
    });
  });
}

/** The reads phase (plus the transaction and our generator's workloads) on one fresh member. */
async function readsPhase(ctx: SuiteContext, kind: ServerKind): Promise<void> {
  const p = ctx.params;
  await withDeployment(ctx, kind, 1, 'reads', async (d) => {
    const ep = d.members[0]!.endpoint;
    let seeded = false;
    await step(ctx, kind, d, 'seed 1 + 1,000 keys', async () => {
      const c = new Connection(ep);
      try {
        await c.unary('etcdserverpb.KV', 'Put', { key: Buffer.from(RANGE_KEY), value: Buffer.alloc(256, 0x76) });
      } finally {
        c.close();
      }
      await fillKeys(ep, MANY_PREFIX, 1000, 256);
      seeded = true;
    });
    if (!seeded) return;
    for (const c of ['l', 's']) {
      await step(ctx, kind, d, `range 1 key (${c}), 1 client`, async () => {
        const s = await tool(ctx, d, ['--conns=1', '--clients=1', 'range', RANGE_KEY, `--consistency=${c}`, `--total=${p.range1Total}`], 300000);
        recordSummary(ctx, kind, `range-${c}-1c`, `range ${c} 1 client`, s, ['50', '99']);
      });
    }
    for (const c of ['l', 's']) {
      await step(ctx, kind, d, `range 1 key (${c}), 1,000 clients`, async () => {
        const s = await tool(ctx, d, ['--conns=100', '--clients=1000', 'range', RANGE_KEY, `--consistency=${c}`, `--total=${p.range1000Total}`], 300000);
        recordSummary(ctx, kind, `range-${c}-1000c`, `range ${c} 1,000 clients`, s, ['99']);
      });
    }
    await step(ctx, kind, d, 'range of 1,000 keys', async () => {
      const end = MANY_PREFIX.slice(0, -1) + String.fromCharCode(MANY_PREFIX.charCodeAt(MANY_PREFIX.length - 1) + 1);
      const s = await tool(ctx, d, ['--conns=10', '--clients=100', 'range', MANY_PREFIX, end, '--consistency=l', `--total=${p.rangeManyTotal}`], 300000);
      recordSummary(ctx, kind, 'range-1000keys', 'range of 1,000 keys', s, ['99']);
    });
    await step(ctx, kind, d, 'txn compare-and-swap (stm)', async () => {
      const s = await tool(ctx, d, [
        '--conns=100', '--clients=1000', 'stm', '--isolation=r', '--keys=100000', '--keys-per-txn=1', '--txn-wr-percent=100', '--val-size=256', `--total=${p.stmTotal}`,
      ], 300000);
      recordSummary(ctx, kind, 'txn-cas', 'txn compare-and-swap', s, ['99']);
    });
    await loadgenStep(ctx, kind, d, 'list-watch', 'list-watch', 'rps', 'list + watch');
    await loadgenStep(ctx, kind, d, 'watch-fanout', 'watch-fanout', 'eps', 'watch fan-out');
    await loadgenStep(ctx, kind, d, 'lock', 'lock', 'rps', 'lock acquire + release');
    await loadgenStep(ctx, kind, d, 'lease', 'lease', 'rps', 'lease grant + keep-alive');
  });
}

/**
 * The 3-member phase: put at 1 client, then at 1,000 clients, through every member's endpoint.
 * Both servers' fresh clusters first get the same unrecorded warm-up puts, so the figures are of a
 * running cluster, as the single-member ones (measured after other loads) are; the JIT of freshly
 * started Node processes would otherwise dominate the short 1-client run.
 */
async function clusterPhase(ctx: SuiteContext, kind: ServerKind): Promise<void> {
  const p = ctx.params;
  await withDeployment(ctx, kind, 3, '3-member cluster', async (d) => {
    if (p.clusterWarmupTotal > 0) {
      await step(ctx, kind, d, `3 members: warm-up, ${n(p.clusterWarmupTotal)} puts, 1 client (not recorded)`, async () => {
        await tool(ctx, d, ['--conns=1', '--clients=1', 'put', '--key-size=8', '--sequential-keys', `--total=${p.clusterWarmupTotal}`, '--val-size=256'], 600000);
      });
    }
    await step(ctx, kind, d, `3 members: put ${n(p.clusterPut1Total)}, 1 client`, async () => {
      const s = await tool(ctx, d, ['--conns=1', '--clients=1', 'put', '--key-size=8', '--sequential-keys', `--total=${p.clusterPut1Total}`, '--val-size=256'], 600000);
      recordSummary(ctx, kind, 'cluster-put-1c', '3 members put 1 client', s, ['50', '99']);
    });
    await step(ctx, kind, d, `3 members: put ${n(p.clusterPut1000Total)}, 1,000 clients`, async () => {
      const s = await tool(ctx, d, ['--conns=100', '--clients=1000', 'put', '--key-size=8', '--sequential-keys', `--total=${p.clusterPut1000Total}`, '--val-size=256'], 600000);
      recordSummary(ctx, kind, 'cluster-put-1000c', '3 members put 1,000 clients', s, ['99']);
    });
  });
}

/** `etcdctl check datascale --load=m` on a fresh member; n/a when the server has no /metrics endpoint. */
async function datascalePhase(ctx: SuiteContext, kind: ServerKind): Promise<void> {
  await withDeployment(ctx, kind, 1, 'check datascale m', async (d) => {
    await step(ctx, kind, d, 'check datascale m', async () => {
      const out = await etcdctl(ctx, d, ['check', 'datascale', '--load=m'], 900000);
      const r = parseDatascale(out);
      if (!r.pass) {
        if (r.failure !== null && /process_resident_memory_bytes before/.test(r.failure)) {
          ctx.rec.record(kind, 'datascale-m.used', null);
          ctx.rec.record(kind, 'datascale-m.rss', null);
          ctx.rec.note('datascale-m.used', `${kind}: no /metrics endpoint, so etcdctl cannot run the check (n/a)`);
          return;
        }
        throw new Error(`check datascale failed: ${r.failure ?? 'FAIL'}`);
      }
      ctx.rec.record(kind, 'datascale-m.used', r.memoryMb);
      const rss = peakRssBytes(d.members[0]!.proc.pid);
      ctx.rec.record(kind, 'datascale-m.rss', rss === null ? null : rss / MB);
    });
  });
}

/** `etcdctl check perf` for each load on a fresh member; records PASS/FAIL and the throughput it prints. */
async function checkPerfPhase(ctx: SuiteContext, kind: ServerKind, load: string): Promise<void> {
  await withDeployment(ctx, kind, 1, `check perf ${load}`, async (d) => {
    await step(ctx, kind, d, `check perf ${load}`, async () => {
      const out = await etcdctl(ctx, d, ['check', 'perf', `--load=${load}`], 300000);
      const r = parseCheckPerf(out);
      ctx.rec.record(kind, `check-perf-${load}.wps`, r.writesPerSec, `${r.pass ? 'PASS' : 'FAIL'} ${r.writesPerSec === null ? '?' : n(r.writesPerSec)} writes/s`);
      const detail = r.lines.filter((l) => !/Throughput/.test(l) && l !== 'PASS' && l !== 'FAIL' && !l.startsWith('FAIL: ERROR('));
      if (detail.length > 0) ctx.rec.note(`check-perf-${load}.wps`, `${kind}: ${detail.join('; ')}`);
      if (r.errorLines.length > 0) {
        const msg = `requests failed: ${r.errorLines.slice(0, 3).join('; ')}`;
        ctx.rec.note(`check-perf-${load}.wps`, `${kind}: ${msg}`);
        ctx.rec.fail(kind, `check perf ${load}`, msg);
      }
    });
  });
}

/**
 * The restart phase: load the keys with the tool's txn-put (100 puts per txn), stop the member,
 * then `restartRepeats` times: spawn it, time until a get is answered, read its peak RSS, stop it.
 */
async function restartPhase(ctx: SuiteContext, kind: ServerKind): Promise<void> {
  const p = ctx.params;
  const txns = Math.ceil(p.restartKeys / 100);
  await withDeployment(ctx, kind, 1, 'restart', async (d) => {
    let m = d.members[0]!;
    let loaded = false;
    await step(ctx, kind, d, `load ${n(p.restartKeys)} keys`, async () => {
      const s = await tool(ctx, d, [
        '--conns=10', '--clients=100', 'txn-put', '--txn-ops=100', `--key-space-size=${p.restartKeys}`, '--key-size=8', '--val-size=32', `--total=${txns}`,
      ], 900000);
      ctx.rec.record(kind, 'restart.load', s.requestsPerSec * 100);
      if (Object.keys(s.errors).length > 0) throw new Error(`txn-put failed: ${errorsText(s.errors)}`);
      const count = await countKeys(m.endpoint);
      if (count !== p.restartKeys) throw new Error(`expected ${p.restartKeys} keys after loading, the server counts ${count}`);
      loaded = true;
    });
    if (!loaded) return;
    await stopMember(m, 120000);
    for (let i = 0; i < p.restartRepeats; i++) {
      try {
        const r = await restartMember(m, 600000);
        m = r.member;
        d.members[0] = m;
        const rss = peakRssBytes(m.proc.pid);
        ctx.rec.record(kind, 'restart.time', r.readyMs / 1000);
        ctx.rec.record(kind, 'restart.rss', rss === null ? null : rss / MB);
        ctx.log(`    ${kind.padEnd(4)} restart ${i + 1}: ${(r.readyMs / 1000).toFixed(2)} s`);
      } catch (e) {
        ctx.rec.fail(kind, 'restart', e instanceof Error ? e.message : String(e));
        ctx.log(`    ${kind.padEnd(4)} restart ${i + 1}: FAILED`);
        break;
      } finally {
        await stopMember(m, 120000);
      }
    }
  }, true);
}

/**
 * The generator check: our generator's workloads against a fresh etcd, once with one generator
 * process and once with two. For lease, lock and list+watch the second run doubles concurrency
 * (and client CPU); for the watch fan-out it keeps the same watchers and put rate but splits them
 * over two processes (twice the client CPU). If etcd's figure does not rise, the generator is not
 * what limits it.
 */
async function generatorCheckPhase(ctx: SuiteContext): Promise<void> {
  await withDeployment(ctx, 'etcd', 1, 'generator check', async (d) => {
    await step(ctx, 'etcd', d, 'generator check', async () => {
      await fillKeys(d.members[0]!.endpoint, MANY_PREFIX, 1000, 256);
      const work: LoadgenWorkload[] = ['list-watch', 'watch-fanout', 'lock', 'lease'];
      const pid = d.members[0]!.proc.pid;
      const measured = async (o: LoadgenOptions, processes: number): Promise<{ r: LoadgenResult; serverCores: number | null }> => {
        const c0 = cpuSeconds(pid);
        const t0 = performance.now();
        const r = await runLoadgen(o, { processes });
        const c1 = cpuSeconds(pid);
        const serverCores = c0 === null || c1 === null ? null : (c1 - c0) / ((performance.now() - t0) / 1000);
        return { r, serverCores };
      };
      for (const w of work) {
        const one = await measured(loadgenOptions(ctx, d, w), 1);
        const two = await measured(loadgenOptions(ctx, d, w, w === 'watch-fanout' ? 1 : 2), 2);
        const rate = (r: LoadgenResult): number | null => (r.unimplemented ? null : r.opsPerSec);
        const a = rate(one.r);
        const b = rate(two.r);
        const change = w === 'watch-fanout' ? 'same load over 2 processes' : '2 processes, 2× concurrency';
        const clientCpu: [number | null, number | null] = [one.r.extra['clientCpuCores'] ?? null, two.r.extra['clientCpuCores'] ?? null];
        const serverCpu: [number | null, number | null] = [one.serverCores, two.serverCores];
        ctx.generatorCheck.push({
          workload: w, metric: w === 'watch-fanout' ? 'events/s' : 'op/s', oneProcess: a, twoProcesses: b, change,
          saturated: a === null || b === null ? null : b <= a * 1.15, clientCpu, serverCpu,
        });
        if (w === 'watch-fanout') {
          ctx.generatorCheck.push({
            workload: w, metric: 'p99 delivery ms', oneProcess: one.r.hist.quantile(0.99), twoProcesses: two.r.hist.quantile(0.99), change,
            saturated: null, clientCpu, serverCpu,
          });
        }
        ctx.log(`    etcd generator check ${w}: ${a?.toFixed(0) ?? 'n/a'} → ${b?.toFixed(0) ?? 'n/a'}`);
      }
    });
  });
}

/** Runs the chosen phases in order: generator check, then each phase `repeats` times alternating etcd and ours. */
export async function runSuite(ctx: SuiteContext): Promise<void> {
  defineRows(ctx.rec, ctx.params, ctx.phases);
  const p = ctx.params;
  for (const phase of ctx.phases) {
    const t0 = performance.now();
    ctx.log(`== ${phase}`);
    switch (phase) {
      case 'generator-check':
        await generatorCheckPhase(ctx);
        break;
      case 'writes':
      case 'reads':
      case 'cluster':
      case 'datascale':
      case 'restart':
        for (let r = 0; r < p.repeats; r++) {
          ctx.log(`  repeat ${r + 1}/${p.repeats}`);
          for (const k of KINDS) {
            if (phase === 'writes') await writesPhase(ctx, k);
            else if (phase === 'reads') await readsPhase(ctx, k);
            else if (phase === 'cluster') await clusterPhase(ctx, k);
            else if (phase === 'datascale') await datascalePhase(ctx, k);
            else await restartPhase(ctx, k);
          }
        }
        break;
      case 'check-perf':
        for (const load of p.checkPerfLoads) for (const k of KINDS) await checkPerfPhase(ctx, k, load);
        break;
    }
    ctx.log(`== ${phase} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
}
