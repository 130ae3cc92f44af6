/**
 * The benchmark's own load generator, for what etcd's benchmark tool does not cover: watch
 * fan-out, lease grant + keep-alive, lock acquire/release and list+watch. It speaks gRPC through
 * @grpc/grpc-js with the project's proto files.
 *
 * One process runs one workload. Several processes can share a workload (each takes its slice of
 * the concurrency and watchers) so that the client side can be given more CPU; `runLoadgen` starts
 * them, releases them at the same moment and merges their results exactly (counts add, latency
 * histograms merge).
 *
 * As a command: `node loadgen.js <workload> --endpoints=h:p[,h:p] [--concurrency=N] [--conns=N]
 * [--duration-ms=N] [--watchers=N] [--streams=N] [--put-rate=N] [--value-size=N] [--prefix=P]
 * [--worker-index=I --workers=W] [--wait-go]`. It prints `READY` once set up, waits for a `GO`
 * line on stdin when `--wait-go` is given, and ends with one line `RESULT <json>`.
 */
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { LOADGEN_WORKLOADS, LoadgenOptions, LoadgenResult, LoadgenWorkload, prepare } from './loadgen-workloads';
import { LatencyHistogram } from './stats';

function resultToJson(r: LoadgenResult): string {
  return JSON.stringify({ ...r, hist: r.hist.toJSON() });
}

function resultFromJson(s: string): LoadgenResult {
  const v = JSON.parse(s) as Omit<LoadgenResult, 'hist'> & { hist: unknown };
  return { ...v, hist: LatencyHistogram.fromJSON(v.hist) };
}

/**
 * Merges per-process results: ops, errors and histograms add up; the rate is total ops over the
 * longest process's span (for watch-fanout the span runs until the last event arrived).
 */
export function mergeResults(rs: LoadgenResult[]): LoadgenResult {
  const first = rs[0];
  if (first === undefined) throw new Error('no results to merge');
  const hist = new LatencyHistogram();
  const errors: Record<string, number> = {};
  const extra: Record<string, number> = {};
  let ops = 0;
  let spanMs = 0;
  for (const r of rs) {
    hist.merge(r.hist);
    ops += r.ops;
    spanMs = Math.max(spanMs, r.opsPerSec > 0 ? (r.ops * 1000) / r.opsPerSec : 0);
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(r.extra)) extra[k] = k.endsWith('Ms') ? Math.max(extra[k] ?? 0, v) : (extra[k] ?? 0) + v;
  }
  if (first.workload === 'list-watch') extra['keysListedPerOp'] = ops > 0 ? (extra['keysListedPerOp'] ?? 0) / rs.length : 0;
  return { workload: first.workload, ops, opsPerSec: spanMs > 0 ? (ops * 1000) / spanMs : 0, hist, errors, unimplemented: rs.some((r) => r.unimplemented), extra };
}

/** Options for `runLoadgen` beyond the workload's own. */
export interface RunLoadgenOptions {
  /** Generator processes sharing the workload (default 1). */
  processes?: number;
  /** Path of the compiled loadgen.js (defaults to this file's own compiled path). */
  script?: string;
  /** Extra ms allowed for setup and drain beyond the window (default 90 s). */
  slackMs?: number;
}

/**
 * Runs the workload in `processes` generator processes released together, and returns the merged
 * result. Rejects when a process fails, prints no result, or exceeds the time limit.
 */
export function runLoadgen(o: LoadgenOptions, ro: RunLoadgenOptions = {}): Promise<LoadgenResult> {
  const n = Math.max(1, Math.floor(ro.processes ?? 1));
  if (!Number.isFinite(n)) return Promise.reject(new Error('processes must be a number'));
  const script = ro.script ?? __filename;
  const limitMs = o.durationMs + (ro.slackMs ?? 90000);
  return new Promise((resolve, reject) => {
    let ready = 0;
    let settled = false;
    const results: LoadgenResult[] = [];
    const failures: string[] = [];
    let exited = 0;
    const procs = Array.from({ length: n }, (_, i) => {
      const args = [
        script, o.workload, `--endpoints=${o.endpoints.join(',')}`, `--concurrency=${o.concurrency}`, `--conns=${o.conns}`,
        `--duration-ms=${o.durationMs}`, `--watchers=${o.watchers}`, `--streams=${o.streams}`, `--put-rate=${o.putRate}`,
        `--value-size=${o.valueSize}`, `--prefix=${o.prefix}`, `--worker-index=${i}`, `--workers=${n}`, '--wait-go',
      ];
      const p = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      readline.createInterface({ input: p.stdout }).on('line', (line) => {
        if (line === 'READY') {
          ready += 1;
          if (ready === n) for (const q of procs) q.stdin.write('GO\n');
        } else if (line.startsWith('RESULT ')) {
          try {
            results.push(resultFromJson(line.slice(7)));
          } catch (e) {
            failures.push(`bad result line: ${String(e)}`);
          }
        }
      });
      p.on('exit', (code) => {
        exited += 1;
        if (code !== 0) failures.push(`loadgen process ${i} exited with ${code}: ${stderr.trim()}`);
        if (exited === n) finish();
      });
      return p;
    });
    const timer = setTimeout(() => {
      failures.push(`loadgen did not finish within ${limitMs} ms`);
      for (const p of procs) p.kill('SIGKILL');
    }, limitMs);
    function finish(): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (failures.length > 0 || results.length !== n) reject(new Error(failures.join('\n') || 'loadgen printed no result'));
      else resolve(mergeResults(results));
    }
  });
}

/** Parses `--name=value` flags. */
function parseFlags(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of argv) {
    const x = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (x) m.set(x[1]!, x[2] ?? 'true');
  }
  return m;
}

async function main(argv: string[]): Promise<void> {
  const workload = argv[0] as LoadgenWorkload | undefined;
  if (workload === undefined || !LOADGEN_WORKLOADS.includes(workload)) {
    throw new Error(`usage: loadgen <${LOADGEN_WORKLOADS.join('|')}> --endpoints=host:port [flags]`);
  }
  const f = parseFlags(argv.slice(1));
  const int = (k: string, d: number): number => {
    const v = f.get(k);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a non-negative number`);
    return n;
  };
  const o: LoadgenOptions = {
    workload,
    endpoints: (f.get('endpoints') ?? '127.0.0.1:2379').split(',').filter((s) => s !== ''),
    concurrency: int('concurrency', 16),
    conns: int('conns', 4),
    durationMs: int('duration-ms', 5000),
    watchers: int('watchers', 1000),
    streams: int('streams', 4),
    putRate: int('put-rate', 100),
    valueSize: int('value-size', 64),
    prefix: f.get('prefix') ?? `bench-${workload}/`,
  };
  const index = int('worker-index', 0);
  const workers = Math.max(1, int('workers', 1));
  const p = await prepare(o, index, workers);
  process.stdout.write('READY\n');
  if (f.has('wait-go')) {
    await new Promise<void>((resolve, reject) => {
      let go = false;
      const rl = readline.createInterface({ input: process.stdin });
      rl.on('line', (l) => {
        if (l.trim() === 'GO') {
          go = true;
          rl.close();
          resolve();
        }
      });
      rl.on('close', () => {
        if (!go) reject(new Error('stdin closed before GO'));
      });
    });
  }
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const r = await p.run();
  const cpu = process.cpuUsage(cpu0);
  r.extra['clientCpuCores'] = (cpu.user + cpu.system) / 1000 / (performance.now() - wall0);
  p.close();
  process.stdout.write(`RESULT ${resultToJson(r)}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
