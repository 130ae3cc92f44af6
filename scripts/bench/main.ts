/**
 * `npm run bench` / `npm run bench:quick`: runs the same workloads against the real etcd and
 * against this server, one after the other, prints one comparison table, and writes the results
 * as JSON plus an SVG chart of the ratios under bench/results/. Exits non-zero when any workload
 * failed to run on either server.
 *
 * Flags: `--quick` (reduced set, under 3 minutes), `--only=phase,...` (see PHASES), `--repeats=N`,
 * `--benchmark=PATH` (etcd's benchmark tool; also `ETCD_BENCHMARK`), `--out=DIR`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeMachine, MachineInfo, measureFdatasync } from './machine';
import { Recorder } from './recorder';
import { formatNumber, renderMarkdown, renderSvg, renderTable, Row } from './report';
import { ensureEtcdInstalled, ROOT, SERVER_JS, tools, which } from './servers';
import { FULL_ONLY, FULL_PARAMS, PhaseName, PHASES, QUICK_PARAMS } from './plan';
import { GeneratorCheckRow, runSuite, SuiteContext } from './suite';

/** The JSON document written for each run. */
export interface BenchResult {
  mode: 'full' | 'quick';
  startedAt: string;
  finishedAt: string;
  elapsedSec: number;
  machine: MachineInfo;
  /** Load averages when the run ended (the machine may be shared). */
  loadAverageAtEnd: number[];
  /** fdatasync rounds per second measured again when the run ended. */
  fdatasyncPerSecAtEnd: number;
  versions: { etcd: string; ours: string };
  phases: string[];
  repeats: number;
  rows: Row[];
  generatorCheck: GeneratorCheckRow[];
  failures: { kind: string; workload: string; message: string }[];
  commands: string[];
}

function parseArgs(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of argv) {
    const x = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!x) throw new Error(`unexpected argument ${a}`);
    m.set(x[1]!, x[2] ?? 'true');
  }
  return m;
}

/**
 * Finds etcd's benchmark tool: --benchmark, $ETCD_BENCHMARK, `etcd-benchmark` on PATH, the cache the
 * build script uses, or the build script itself in ../shared/tools beside the checkout (it builds
 * the tool on its first call).
 */
function findBenchmark(flag: string | undefined): string {
  const candidates = [flag, process.env['ETCD_BENCHMARK'], which('etcd-benchmark') ?? undefined,
    path.join(process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'etcd-benchmark', 'benchmark'),
    path.join(ROOT, '..', 'shared', 'tools', 'etcd-benchmark')];
  for (const c of candidates) {
    if (c !== undefined && c !== '' && fs.existsSync(c)) return c;
  }
  throw new Error(
    "etcd's benchmark tool (tools/benchmark of etcd 3.4) was not found: pass --benchmark=PATH, set ETCD_BENCHMARK, " +
      'or put it on PATH as etcd-benchmark (see bench/README.md for how to build it from Debian\'s etcd source)',
  );
}

function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n')[0]?.trim() || 'unknown';
}

function stamp(d: Date): string {
  const p = (x: number): string => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}${p(d.getMinutes())}`;
}

function renderGeneratorCheck(rows: readonly GeneratorCheckRow[]): string {
  if (rows.length === 0) return '';
  const cores = (x: number | null): string => (x === null ? 'n/a' : x.toFixed(2));
  const lines = rows.map((r) => {
    const verdict = r.saturated === null ? '' : r.saturated ? 'no rise: the generator is not the limit' : 'ROSE by more than 15 %: the 1-process figure is limited by the client side';
    return `  ${r.workload.padEnd(13)} ${r.metric.padEnd(16)} ${formatNumber(r.oneProcess).padStart(9)} → ${formatNumber(r.twoProcesses).padStart(9)}  (${r.change}; ` +
      `client CPU ${cores(r.clientCpu[0])} → ${cores(r.clientCpu[1])} cores, etcd CPU ${cores(r.serverCpu[0])} → ${cores(r.serverCpu[1])} cores)  ${verdict}`;
  });
  return ['Generator check (our load generator against etcd: 1 process → 2 processes):', ...lines].join('\n');
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const quick = args.has('quick');
  const params = { ...(quick ? QUICK_PARAMS : FULL_PARAMS) };
  const rep = args.get('repeats');
  if (rep !== undefined) params.repeats = Math.max(1, Number(rep));
  let phases: PhaseName[] = PHASES.filter((p) => !(quick && FULL_ONLY.has(p)));
  const only = args.get('only');
  if (only !== undefined) {
    const wanted = only.split(',');
    for (const w of wanted) if (!(PHASES as readonly string[]).includes(w)) throw new Error(`unknown phase ${w}; phases: ${PHASES.join(', ')}`);
    phases = PHASES.filter((p) => wanted.includes(p));
  }
  const outDir = path.resolve(args.get('out') ?? path.join(ROOT, 'bench', 'results'));
  const log = (s: string): void => {
    process.stderr.write(`${s}\n`);
  };

  if (!fs.existsSync(SERVER_JS)) throw new Error(`${SERVER_JS} is missing: run npm run build first`);
  const found = ensureEtcdInstalled(log);
  tools.etcd = found.etcd;
  tools.etcdctl = found.etcdctl;
  const benchmark = findBenchmark(args.get('benchmark'));

  const started = new Date();
  const t0 = performance.now();
  log(`bench (${quick ? 'quick' : 'full'}): phases ${phases.join(', ')}; ${params.repeats} repeat(s); data dirs under ${os.tmpdir()}`);
  const machine = describeMachine(os.tmpdir());
  log(`machine: ${machine.nproc} × ${machine.cpuModel}, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
    `${machine.fdatasyncPerSec.toFixed(0)} fdatasync/s, load ${machine.loadAverage.map((x) => x.toFixed(2)).join(' ')}`);

  const rec = new Recorder();
  const ctx: SuiteContext = { params, phases, benchmark, rec, log, generatorCheck: [], commands: [] };
  await runSuite(ctx);

  const rows = rec.rows();
  const finished = new Date();
  const result: BenchResult = {
    mode: quick ? 'quick' : 'full',
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    elapsedSec: (performance.now() - t0) / 1000,
    machine,
    loadAverageAtEnd: os.loadavg(),
    fdatasyncPerSecAtEnd: measureFdatasync(os.tmpdir()),
    versions: { etcd: versionOf(tools.etcd, ['--version']), ours: `etcd-ts ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string}` },
    phases,
    repeats: params.repeats,
    rows,
    generatorCheck: ctx.generatorCheck,
    failures: rec.failures,
    commands: [...new Set(ctx.commands.map((c) => c.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')))],
  };

  const title = `etcd-ts vs etcd ${result.versions.etcd.replace(/^etcd Version:\s*/, '')}, ${result.mode} run on ${machine.nproc} × ${machine.cpuModel}, ${started.toISOString().slice(0, 10)}`;
  const table = renderTable(rows);
  const out: string[] = ['', title, '', table];
  const notes = rows.flatMap((r) => r.notes.map((x) => `  ${r.workload} / ${r.metric}: ${x}`));
  if (notes.length > 0) out.push('', 'Notes:', ...notes);
  const gc = renderGeneratorCheck(ctx.generatorCheck);
  if (gc !== '') out.push('', gc);
  if (rec.failures.length > 0) {
    out.push('', 'FAILED workloads:');
    for (const f of rec.failures) out.push(`  ${f.kind}: ${f.workload}: ${f.message.split('\n')[0]}`);
  }
  out.push('', `machine: ${machine.nproc} cores (${machine.cpuModel}), ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB RAM, ` +
    `${machine.fdatasyncPerSec.toFixed(0)} fdatasync/s at start and ${result.fdatasyncPerSecAtEnd.toFixed(0)} at end (4 KiB appends in ${machine.syncDir}); load average ${machine.loadAverage[0]!.toFixed(2)} at start, ` +
    `${result.loadAverageAtEnd[0]!.toFixed(2)} at end; ${result.elapsedSec.toFixed(0)} s in total`);

  fs.mkdirSync(outDir, { recursive: true });
  const suffix = quick ? '-quick' : '';
  const json = JSON.stringify(result, null, 2) + '\n';
  const dated = path.join(outDir, `${stamp(started)}-${machine.hostname}${suffix}.json`);
  fs.writeFileSync(dated, json);
  fs.writeFileSync(path.join(outDir, `latest${suffix}.json`), json);
  fs.writeFileSync(path.join(outDir, `latest${suffix}.svg`), renderSvg(rows, title));
  fs.writeFileSync(path.join(outDir, `latest${suffix}.md`), `${title}\n\n${renderMarkdown(rows)}\n`);
  out.push(`results: ${path.relative(process.cwd(), dated)}, ${path.relative(process.cwd(), path.join(outDir, `latest${suffix}.json`))}, latest${suffix}.svg, latest${suffix}.md`);
  process.stdout.write(out.join('\n') + '\n');
  return rec.failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  },
);
