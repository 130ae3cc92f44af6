/**
 * Parsers for the text that etcd's tools print: the summary of etcd's `benchmark` load generator,
 * `etcdctl check perf` and `etcdctl check datascale`.
 */

/** What etcd's benchmark tool reports for one run. Times are in milliseconds. */
export interface BenchmarkSummary {
  /** Wall time of the run, ms. */
  totalMs: number;
  slowestMs: number;
  fastestMs: number;
  averageMs: number;
  stddevMs: number;
  /** Successful requests per second. */
  requestsPerSec: number;
  /** Latency percentiles as printed: key is the percentile ("50", "99", "99.9"), value in ms. */
  percentilesMs: Record<string, number>;
  /** Error message → count, from the "Error distribution" section (empty when there were none). */
  errors: Record<string, number>;
}

/**
 * Drops the progress bar: keeps only the text after the last carriage return of each line, and
 * removes a final "59 / 60   98.33%" state that etcdctl sometimes leaves glued to the next output.
 */
function stripProgress(text: string): string[] {
  return text.split('\n').map((line) => {
    const i = line.lastIndexOf('\r');
    const rest = i >= 0 ? line.slice(i + 1) : line;
    return rest.replace(/^\s*\d+ \/ \d+\s+\d+(?:\.\d+)?%(?:\s+[0-9hms]+)?/, '').trimEnd();
  });
}

function secsToMs(s: string): number {
  return Number(s) * 1000;
}

/**
 * Parses the summary printed by etcd's benchmark tool (any subcommand that prints a report:
 * put, range, txn-put, stm, lease-keepalive, …). Accepts both the default 4-decimal output and
 * `--precise`. The progress bar (carriage-return separated) may be part of the text.
 * Throws when neither a summary nor an error distribution is found.
 */
export function parseBenchmarkOutput(text: string): BenchmarkSummary {
  const lines = stripProgress(text);
  const num = '([0-9]+(?:\\.[0-9]+)?(?:e[-+]?[0-9]+)?)';
  const field = (name: string): number | undefined => {
    const re = new RegExp(`^\\s*${name}:\\s+${num}(?: secs)?\\.?$`);
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  const percentilesMs: Record<string, number> = {};
  const pctRe = new RegExp(`^\\s*([0-9.]+)% in ${num} secs\\.$`);
  const errors: Record<string, number> = {};
  let inErrors = false;
  for (const l of lines) {
    const m = pctRe.exec(l);
    if (m) percentilesMs[m[1]!] = secsToMs(m[2]!);
    if (/^Error distribution:/.test(l)) {
      inErrors = true;
      continue;
    }
    if (inErrors) {
      const e = /^\s*\[(\d+)\]\s+(.*)$/.exec(l);
      if (e) errors[e[2]!] = (errors[e[2]!] ?? 0) + Number(e[1]);
      else if (l.trim() !== '') inErrors = false;
    }
  }
  const total = field('Total');
  const rps = field('Requests/sec');
  if (total === undefined || rps === undefined) {
    if (Object.keys(errors).length > 0) {
      return { totalMs: NaN, slowestMs: NaN, fastestMs: NaN, averageMs: NaN, stddevMs: NaN, requestsPerSec: 0, percentilesMs, errors };
    }
    throw new Error('benchmark output has no summary');
  }
  return {
    totalMs: total * 1000,
    slowestMs: (field('Slowest') ?? NaN) * 1000,
    fastestMs: (field('Fastest') ?? NaN) * 1000,
    averageMs: (field('Average') ?? NaN) * 1000,
    stddevMs: (field('Stddev') ?? NaN) * 1000,
    requestsPerSec: rps,
    percentilesMs,
    errors,
  };
}

/** The verdict of `etcdctl check perf`. */
export interface CheckPerfResult {
  /** True when the final line is PASS. */
  pass: boolean;
  /** The throughput it printed (writes/s), if it got that far. */
  writesPerSec: number | null;
  /** Slowest request in seconds, if printed. */
  slowestSec: number | null;
  /** Standard deviation in seconds, if printed. */
  stddevSec: number | null;
  /** Every PASS/FAIL line, in order (progress bar removed). */
  lines: string[];
  /** The "FAIL: ERROR(<error>) -> <count>" lines: requests the server failed. */
  errorLines: string[];
}

/** Parses the output of `etcdctl check perf`. Throws when there is neither a PASS nor a FAIL line. */
export function parseCheckPerf(text: string): CheckPerfResult {
  const lines = stripProgress(text).filter((l) => l.trim() !== '');
  const verdictLines = lines.filter((l) => /^(PASS|FAIL)\b|too long|too high/.test(l));
  const tp = /(?:Throughput is|Throughput too low:) (\d+) writes\/s/;
  const slow = /Slowest request took(?: too long)?:? ([0-9.]+)s/;
  const sd = /Stddev (?:is|too high:) ([0-9.]+)s/;
  let writesPerSec: number | null = null;
  let slowestSec: number | null = null;
  let stddevSec: number | null = null;
  for (const l of lines) {
    const a = tp.exec(l);
    if (a) writesPerSec = Number(a[1]);
    const b = slow.exec(l);
    if (b) slowestSec = Number(b[1]);
    const c = sd.exec(l);
    if (c) stddevSec = Number(c[1]);
  }
  const final = [...lines].reverse().find((l) => /^(PASS|FAIL)/.test(l));
  if (final === undefined) throw new Error('check perf output has no PASS or FAIL line');
  const errorLines = lines.filter((l) => l.startsWith('FAIL: ERROR('));
  return { pass: final.trim() === 'PASS', writesPerSec, slowestSec, stddevSec, lines: verdictLines, errorLines };
}

/** The result of `etcdctl check datascale`. */
export interface DatascaleResult {
  pass: boolean;
  /** "Approximate system memory used" in MB, when it passed. */
  memoryMb: number | null;
  /** The first FAIL line, when it failed. */
  failure: string | null;
}

/** Parses the output of `etcdctl check datascale`. Throws when neither a PASS nor a FAIL line is present. */
export function parseDatascale(text: string): DatascaleResult {
  const lines = stripProgress(text);
  for (const l of lines) {
    const m = /^PASS: Approximate system memory used : ([0-9.]+) MB\./.exec(l);
    if (m) return { pass: true, memoryMb: Number(m[1]), failure: null };
  }
  const fail = lines.find((l) => l.startsWith('FAIL'));
  if (fail !== undefined) return { pass: false, memoryMb: null, failure: fail };
  throw new Error('check datascale output has no PASS or FAIL line');
}
