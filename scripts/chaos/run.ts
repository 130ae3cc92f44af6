/**
 * One chaos run: start the cluster behind the fault proxy, run the workload and the watchers while
 * faults are injected on a seeded schedule, heal, run the final phase, check everything, report.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Anomaly } from '../../src/check/anomaly';
import { formatAnomaly } from '../../src/check/anomaly';
import { checkKvHistory } from '../../src/check/check-kv';
import type { KvCheckResult } from '../../src/check/check-kv';
import { checkDurability } from '../../src/check/events';
import type { KvOp, KvRecord, RevisionEvents, WatchSession } from '../../src/check/history';
import { prefixEnd } from '../../src/check/history';
import type { WatchCheckResult } from '../../src/check/watch-check';
import { checkWatches } from '../../src/check/watch-check';
import { ChaosCluster } from './cluster';
import type { Target } from './cluster';
import { FaultInjector } from './faults';
import type { FaultKind, FaultRecord } from './faults';
import { finalPhase } from './final';
import type { FinalState } from './final';
import { repoRoot } from './grpc';
import type { ProxyStats } from './proxy';
import { Random } from './rng';
import { WatchClient } from './watchers';
import type { WatchSpec } from './watchers';
import { Recorder, Workload } from './workload';

/** Options of a run. */
export interface ChaosOptions {
  readonly target: Target;
  readonly members: number;
  readonly durationMs: number;
  readonly seed: number;
  readonly faults: readonly FaultKind[];
  /** KV client processes (default 2 per member). */
  readonly clients?: number;
  /** Keys under test (default 8). */
  readonly keys?: number;
  /** List+watch clients (default 3). */
  readonly watchers?: number;
  /** Deadline of each client call, ms (default 3000). */
  readonly timeoutMs?: number;
  /** Where data dirs, logs and the recorded histories go (default a new temp dir). */
  readonly dir?: string;
  /** Keep the members' data dirs after the run. */
  readonly keepData?: boolean;
  /** Progress output (default: none). */
  readonly log?: (line: string) => void;
  /** The command line that reproduces the run (for the report). */
  readonly command?: string;
}

/** What a run found. */
export interface ChaosResult {
  readonly options: ChaosOptions;
  readonly dir: string;
  readonly anomalies: readonly Anomaly[];
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: Readonly<Record<string, number>>;
  readonly kv: KvCheckResult;
  readonly watch: WatchCheckResult;
  readonly final: FinalState;
  /** Operations by type and outcome. */
  readonly byType: Readonly<Record<string, { ok: number; fail: number; unknown: number }>>;
  /** Wall-clock seconds of the fault phase. */
  readonly seconds: number;
  /** Watchers that did not catch up with the final revision. */
  readonly stalledWatchers: readonly number[];
  /** What the fault proxy did. */
  readonly proxy: ProxyStats;
  /** The printed summary. */
  readonly summary: string;
}

const PREFIX = '/chaos/k/';

/** Runs one chaos run. Never throws for anomalies; throws only when the cluster cannot start. */
export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? ((): void => undefined);
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `chaos-${o.target}-${o.seed}-`));
  fs.mkdirSync(dir, { recursive: true });
  const root = new Random(o.seed);
  const faultRandom = root.fork();
  const workRandom = root.fork();
  const clusterRandom = root.fork();
  const finalRandom = root.fork();
  const snapshotCount = 200;
  const catchupEntries = 100;

  log(`chaos: ${o.target}, ${o.members} members, ${(o.durationMs / 1000).toFixed(0)} s, seed ${o.seed}, faults ${o.faults.join(',')}; files in ${dir}`);
  const cluster = await ChaosCluster.start({
    target: o.target,
    members: o.members,
    dir,
    token: `chaos-${o.seed}`,
    snapshotCount,
    catchupEntries,
    etcdBinary: '/usr/bin/etcd',
    ourEntry: path.join(repoRoot(), 'dist', 'src', 'main.js'),
    random: () => clusterRandom.float(),
  });
  try {
    const leader = await cluster.waitLeader(60000);
    if (leader === undefined) throw new Error(`no leader after 60 s; see the logs in ${dir}`);
    await cluster.refreshIds();
    log(`  cluster up, leader ${leader.name}`);

    const rec = new Recorder(performance.now());
    const keys = Array.from({ length: o.keys ?? 8 }, (_, i) => `${PREFIX}${String(i).padStart(3, '0')}`);
    const workload = new Workload(cluster, rec, {
      keys,
      prefix: PREFIX,
      prefixEnd: prefixEnd(PREFIX),
      timeoutMs: o.timeoutMs ?? 3000,
      thinkMs: [0, 15],
      leaseTtl: 3600,
      leaseIdBase: BigInt(o.seed % 1000000) * 1000000n + 7000000000000n,
    });
    const specs: WatchSpec[] = [
      { key: PREFIX, rangeEnd: prefixEnd(PREFIX), prevKv: true, progressRequests: true },
      { key: PREFIX, rangeEnd: prefixEnd(PREFIX), prevKv: false, progressRequests: false },
      { key: keys[0]!, rangeEnd: '', prevKv: true, progressRequests: true },
    ];
    const watchers = Array.from({ length: o.watchers ?? 3 }, (_, i) => new WatchClient(i, cluster, specs[i % specs.length]!, rec, o.timeoutMs ?? 3000));
    for (const w of watchers) w.start();
    workload.start(o.clients ?? 2 * o.members, workRandom);

    const injector = new FaultInjector(cluster, {
      kinds: o.faults,
      random: faultRandom,
      now: () => rec.now(),
      snapshotFill: o.target === 'ours' ? snapshotCount + catchupEntries + 150 : snapshotCount + 5000 + 1300,
      log,
    });
    const t0 = Date.now();
    if (o.faults.length > 0) await injector.run(o.durationMs);
    else await new Promise((r) => setTimeout(r, o.durationMs));
    await injector.healAll();
    const seconds = (Date.now() - t0) / 1000;
    log(`  faults done after ${seconds.toFixed(1)} s; healing and stopping the workload`);
    await workload.stop();

    const final = await finalPhase(cluster, rec, finalRandom, { key: PREFIX, rangeEnd: prefixEnd(PREFIX) }, log);
    const stalledWatchers: number[] = [];
    await Promise.all(
      watchers.map(async (w) => {
        if (!(await w.finish(final.revision, 30000))) stalledWatchers.push(w.id);
      }),
    );
    const ops = rec.finished();

    log(`  checking ${ops.length} operations, ${final.events?.length ?? 0} revisions of events, ${watchers.reduce((a, w) => a + w.sessions.length, 0)} watch sessions`);
    const sessions = watchers.flatMap((w) => w.sessions);
    const checked = checkRecorded({ ops, events: final.events, sessions, revision: final.revision, kvs: final.kvs, leases: final.leases });
    const { kv, watch } = checked;
    const anomalies = [...final.anomalies, ...checked.anomalies];

    const faultCounts: Record<string, number> = {};
    for (const f of injector.records) {
      if (!f.injected) continue;
      faultCounts[f.kind] = (faultCounts[f.kind] ?? 0) + 1;
      if (f.shape !== '') faultCounts[`${f.kind}/${f.shape}`] = (faultCounts[`${f.kind}/${f.shape}`] ?? 0) + 1;
    }
    const byType: Record<string, { ok: number; fail: number; unknown: number }> = {};
    for (const op of ops) {
      const t = (byType[op.input.type] ??= { ok: 0, fail: 0, unknown: 0 });
      t[op.status]++;
    }
    const proxy = { ...cluster.proxy.stats };
    const result: Omit<ChaosResult, 'summary'> = { options: o, dir, anomalies, faults: injector.records, faultCounts, kv, watch, final, byType, seconds, stalledWatchers, proxy };
    const summary = formatSummary(result);
    fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify(ops));
    fs.writeFileSync(path.join(dir, 'events.json'), JSON.stringify(final.events ?? null));
    fs.writeFileSync(path.join(dir, 'watches.json'), JSON.stringify(sessions));
    fs.writeFileSync(path.join(dir, 'faults.json'), JSON.stringify(injector.records, null, 1));
    fs.writeFileSync(path.join(dir, 'final.json'), JSON.stringify({ revision: final.revision, kvs: final.kvs, leases: final.leases === undefined ? null : [...final.leases] }));
    fs.writeFileSync(path.join(dir, 'summary.txt'), summary + '\n');
    return { ...result, summary };
  } finally {
    await cluster.stop();
    if (o.keepData !== true) for (const s of cluster.slots) fs.rmSync(s.dataDir, { recursive: true, force: true });
  }
}

/** What a run recorded, as the checkers take it. */
export interface Recorded {
  readonly ops: readonly KvOp[];
  readonly events: readonly RevisionEvents[] | undefined;
  readonly sessions: readonly WatchSession[];
  /** The final quorum read: its revision, pairs, and the leases left. */
  readonly revision: number;
  readonly kvs: readonly KvRecord[];
  readonly leases: ReadonlySet<string> | undefined;
}

/** Runs every checker on what a run recorded. */
export function checkRecorded(r: Recorded): { kv: KvCheckResult; watch: WatchCheckResult; anomalies: Anomaly[] } {
  const isChecked = (k: string): boolean => k.startsWith(PREFIX);
  const kv = checkKvHistory(r.ops, {
    ...(r.events !== undefined ? { events: r.events } : {}),
    ...(r.leases !== undefined ? { finalLeases: r.leases } : {}),
    isChecked,
  });
  const durability = checkDurability(r.ops, r.kvs, r.revision, { isChecked });
  const watch: WatchCheckResult = r.events !== undefined ? checkWatches(r.sessions, r.events) : { anomalies: [], sessions: r.sessions.length, eventsDelivered: 0, progressNotifications: 0 };
  return { kv, watch, anomalies: [...kv.anomalies, ...durability, ...watch.anomalies] };
}

/** The human-readable summary of a run. */
export function formatSummary(r: Omit<ChaosResult, 'summary'>): string {
  const o = r.options;
  const lines: string[] = [];
  const total = r.kv.ops;
  lines.push(`chaos run: target ${o.target}, ${o.members} members, ${(r.seconds / 60).toFixed(1)} min of faults, seed ${o.seed}`);
  lines.push(`  reproduce: ${o.command ?? `npm run chaos -- --target ${o.target} --members ${o.members} --duration ${Math.round(o.durationMs / 1000)}s --seed ${o.seed} --faults ${o.faults.join(',')}`}`);
  lines.push(`operations: ${total.total} (ok ${total.ok}, failed ${total.fail}, indeterminate ${total.unknown}: ${r.kv.resolved.at} resolved at a revision, ${r.kv.resolved.happened} took effect, ${r.kv.resolved.never} never took effect, ${r.kv.resolved.candidates} deletes with candidate revisions, ${r.kv.resolved.open} open)`);
  lines.push(
    `  by type: ${Object.entries(r.byType)
      .sort()
      .map(([t, c]) => `${t} ${c.ok + c.fail + c.unknown} (ok ${c.ok}, failed ${c.fail}, indeterminate ${c.unknown})`)
      .join('; ')}`,
  );
  const kinds = Object.entries(r.faultCounts).filter(([k]) => !k.includes('/'));
  const shapes = Object.entries(r.faultCounts).filter(([k]) => k.includes('/'));
  lines.push(`faults injected: ${kinds.length === 0 ? 'none' : kinds.map(([k, n]) => `${k} ${n}`).join(', ')}${shapes.length > 0 ? ` (${shapes.map(([k, n]) => `${k.split('/')[1]} ${n}`).join(', ')})` : ''}`);
  const p = r.proxy;
  lines.push(`  peer proxy: ${p.connections} connections (${p.identified} with a known sender), ${(p.bytesForwarded / 1e6).toFixed(1)} MB forwarded, ${(p.bytesDropped / 1e3).toFixed(1)} kB dropped, ${p.resets} connections reset`);
  const notInjected = r.faults.filter((f) => !f.injected).length;
  if (notInjected > 0) lines.push(`  ${notInjected} scheduled fault(s) could not be injected (see faults.json)`);
  const f = r.final;
  lines.push(`final: quorum read at revision ${f.revision}; ${f.lagging.length === 0 ? 'every member reached it' : `lagging: ${f.lagging.join(', ')}`}`);
  if (f.comparison !== undefined) {
    const c = f.comparison;
    lines.push(
      c.method === 'HashKV'
        ? `  HashKV at revision ${c.revisions[0]}: ${c.equal ? 'equal on every member' : 'DIFFERENT'} (${c.detail})`
        : `  HashKV is unimplemented: compared the full key-value content (serializable Range) at revisions ${c.revisions.join(', ')}: ${c.equal ? 'identical on every member' : 'DIFFERENT'}`,
    );
  }
  lines.push(`  event history: ${f.events === undefined ? `unavailable (${f.eventsNote})` : `${f.events.length} revisions from a watch at revision 1, identical on every member${f.eventsNote !== '' ? ` except: ${f.eventsNote}` : ''}`}`);
  const keysFailed = r.kv.keys.filter((k) => k.result === 'fail').length;
  lines.push(
    `histories checked: linearizability of ${r.kv.keys.length} keys (${r.kv.keys.reduce((a, k) => a + k.ops, 0)} per-key operations, ${keysFailed} failed, ${r.kv.inconclusive.length} inconclusive${r.kv.inconclusive.length > 0 ? `: ${r.kv.inconclusive.join(', ')}` : ''}); revision order; durability; reads against the event history`,
  );
  lines.push(`  watches: ${r.watch.sessions} sessions, ${r.watch.eventsDelivered} events, ${r.watch.progressNotifications} progress notifications checked${r.stalledWatchers.length > 0 ? `; watchers not caught up at the end: ${r.stalledWatchers.join(', ')}` : ''}`);
  lines.push(`anomalies: ${r.anomalies.length}`);
  const byKind = new Map<string, number>();
  for (const a of r.anomalies) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + 1);
  if (byKind.size > 0) lines.push(`  by kind: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  for (const a of r.anomalies.slice(0, 20)) lines.push(formatAnomaly(a).replace(/^/gm, '  '));
  if (r.anomalies.length > 20) lines.push(`  … ${r.anomalies.length - 20} more in ${path.join(r.dir, 'summary.txt')}`);
  lines.push(`files: ${r.dir}`);
  return lines.join('\n');
}
