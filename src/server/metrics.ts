/**
 * Metrics: one registry per process (made by the composition root and handed to whoever records),
 * counters, gauges and histograms with labels, rendered in the Prometheus text exposition format
 * 0.0.4 the way Go's client library renders it (etcd's /metrics):
 *
 *   # HELP etcd_server_has_leader Whether or not a leader exists. 1 is existence, 0 is not.
 *   # TYPE etcd_server_has_leader gauge
 *   etcd_server_has_leader 1
 *   # HELP grpc_server_started_total Total number of RPCs started on the server.
 *   # TYPE grpc_server_started_total counter
 *   grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3
 *
 * - families are sorted by name; within a family, label pairs are sorted by label name and series
 *   by their label values; a labelled family with no series is left out;
 * - numbers are printed as Go's strconv.FormatFloat(v, 'g', -1, 64): `20480`, `0.15`,
 *   `2.7242496e+07`, `1e-05`, `+Inf`;
 * - HELP text escapes `\` and newline; label values escape `\`, `"` and newline;
 * - histogram buckets are cumulative, with `le` as the last label and a final `le="+Inf"`.
 *
 * Values that mirror state elsewhere (db size, key count, process memory) are gauges refreshed by
 * collectors that run at the start of every `render()`.
 */
import * as fs from 'node:fs';
import { makeRange } from '../mvcc/key-range';
import type { EtcdServer } from './etcd-server';

/** Label name → value of one series. */
export type Labels = Readonly<Record<string, string>>;

/** The Content-Type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Formats a sample value as Go's strconv.FormatFloat(v, 'g', -1, 64) does: the shortest digits
 * that round-trip, in exponent form (at least two exponent digits) when the decimal exponent is
 * below -4 or at least 6; `+Inf`, `-Inf` and `NaN` for the special values.
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  const sign = v < 0 ? '-' : '';
  const a = Math.abs(v);
  const [mantissa = '0', expText = '0'] = a.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const e = Math.abs(exp);
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  // Within this exponent range JavaScript prints the same shortest digits in fixed notation.
  return `${sign}${String(a)}`;
}

/** `count` bucket upper bounds start, start·factor, start·factor², … (Prometheus' ExponentialBuckets). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  if (count < 1 || start <= 0 || factor <= 1) throw new RangeError('exponentialBuckets needs count ≥ 1, start > 0, factor > 1');
  const out: number[] = [];
  let b = start;
  for (let i = 0; i < count; i++) {
    out.push(b);
    b *= factor;
  }
  return out;
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Definition shared by every metric kind. */
export interface MetricOptions {
  /** Metric name, e.g. "etcd_server_has_leader". */
  name: string;
  /** One-line description shown in the HELP line. */
  help: string;
  /** Label names every series of the metric carries (none by default). */
  labelNames?: readonly string[];
}

/** Options of a histogram: bucket upper bounds in increasing order (+Inf is implicit). */
export interface HistogramOptions extends MetricOptions {
  buckets: readonly number[];
}

/** The series of one metric, keyed by their label values. */
abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Label names in sorted order with their index in `labelNames`. */
  private readonly sortedLabels: readonly { name: string; index: number }[];
  protected readonly series = new Map<string, { values: readonly string[]; state: S }>();

  constructor(opts: MetricOptions, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name "${opts.name}"`);
    const names = opts.labelNames ?? [];
    const seen = new Set<string>();
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith('__') || reserved.includes(l)) throw new Error(`invalid label name "${l}" for ${opts.name}`);
      if (seen.has(l)) throw new Error(`duplicate label name "${l}" for ${opts.name}`);
      seen.add(l);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = [...names];
    this.sortedLabels = names.map((name, index) => ({ name, index })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Prometheus type name. */
  abstract readonly type: 'counter' | 'gauge' | 'histogram';

  protected abstract initial(): S;

  /** The state of the series with these labels, created at its zero value on first use. */
  protected state(labels: Labels | undefined): S {
    if (labels === undefined && this.labelNames.length === 0) {
      const only = this.series.get('');
      if (only !== undefined) return only.state;
    }
    const values = this.labelNames.map((l) => {
      const v = labels?.[l];
      if (v === undefined) throw new Error(`metric ${this.name} needs label "${l}"`);
      return v;
    });
    if (labels !== undefined && Object.keys(labels).length !== this.labelNames.length) {
      throw new Error(`metric ${this.name} takes labels ${this.labelNames.join(', ') || '(none)'}`);
    }
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      s = { values, state: this.initial() };
      this.series.set(key, s);
    }
    return s.state;
  }

  /** Removes every series (a labelled family then renders nothing until used again). */
  reset(): void {
    this.series.clear();
  }

  /** Series in exposition order: label values compared in sorted-label-name order. */
  protected sortedSeries(): { labels: string; state: S }[] {
    const rows = [...this.series.values()].map((s) => ({
      key: this.sortedLabels.map((l) => s.values[l.index] ?? ''),
      labels: this.sortedLabels.map((l) => `${l.name}="${escapeLabelValue(s.values[l.index] ?? '')}"`).join(','),
      state: s.state,
    }));
    rows.sort((a, b) => {
      for (let i = 0; i < a.key.length; i++) {
        const x = a.key[i] ?? '';
        const y = b.key[i] ?? '';
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    });
    return rows;
  }

  /** Appends this family's lines (nothing when a labelled family has no series). */
  render(out: string[]): void {
    if (this.labelNames.length === 0 && this.series.size === 0) this.state(undefined);
    if (this.series.size === 0) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    this.renderSeries(out);
  }

  protected abstract renderSeries(out: string[]): void;
}

function sample(name: string, labels: string, value: number): string {
  return labels === '' ? `${name} ${formatValue(value)}` : `${name}{${labels}} ${formatValue(value)}`;
}

/** One series of a Counter; see Counter.handle. */
export class CounterSeries {
  constructor(
    private readonly name: string,
    private readonly st: { v: number },
  ) {}

  /** Adds `by` (default 1, must be ≥ 0). */
  inc(by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} cannot decrease`);
    this.st.v += by;
  }
}

/** A value that only goes up (reset only by a restart). */
export class Counter extends Family<{ v: number }> {
  readonly type = 'counter' as const;

  protected initial(): { v: number } {
    return { v: 0 };
  }

  /** Adds `by` (default 1, must be ≥ 0) to the series with `labels` (omit for an unlabelled counter). */
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} cannot decrease`);
    this.state(labels).v += by;
  }

  /** Creates the series at 0 if absent, so it is exported before its first increment. */
  init(labels?: Labels): void {
    this.state(labels);
  }

  /**
   * A handle on the series with `labels` (created at 0 if absent), for hot paths that count the
   * same series again and again: its inc() skips the label lookup. It stays valid until reset().
   */
  handle(labels?: Labels): CounterSeries {
    return new CounterSeries(this.name, this.state(labels));
  }

  /** Current value of a series (0 when absent). */
  get(labels?: Labels): number {
    return this.state(labels).v;
  }

  protected renderSeries(out: string[]): void {
    for (const s of this.sortedSeries()) out.push(sample(this.name, s.labels, s.state.v));
  }
}

/** A value that goes up and down. */
export class Gauge extends Family<{ v: number }> {
  readonly type = 'gauge' as const;

  protected initial(): { v: number } {
    return { v: 0 };
  }

  /** Sets the series with `labels` (omit for an unlabelled gauge) to `v`. */
  set(v: number, labels?: Labels): void {
    this.state(labels).v = v;
  }

  /** Adds `by` (default 1). */
  inc(labels?: Labels, by = 1): void {
    this.state(labels).v += by;
  }

  /** Subtracts `by` (default 1). */
  dec(labels?: Labels, by = 1): void {
    this.state(labels).v -= by;
  }

  /** Current value of a series (0 when absent). */
  get(labels?: Labels): number {
    return this.state(labels).v;
  }

  protected renderSeries(out: string[]): void {
    for (const s of this.sortedSeries()) out.push(sample(this.name, s.labels, s.state.v));
  }
}

interface HistogramState {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** Observations counted into buckets, with their sum and count. */
export class Histogram extends Family<HistogramState> {
  readonly type = 'histogram' as const;
  /** Upper bounds, strictly increasing, without +Inf. */
  readonly buckets: readonly number[];

  constructor(opts: HistogramOptions) {
    super(opts, ['le']);
    const b = opts.buckets.filter((x) => x !== Infinity);
    for (let i = 1; i < b.length; i++) {
      if (!((b[i] ?? 0) > (b[i - 1] ?? 0))) throw new Error(`histogram ${opts.name}: buckets must increase`);
    }
    this.buckets = b;
  }

  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation `v` (in the metric's unit, e.g. seconds). */
  observe(v: number, labels?: Labels): void {
    const s = this.state(labels);
    let i = 0;
    while (i < this.buckets.length && v > (this.buckets[i] ?? Infinity)) i++;
    s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += v;
    s.count++;
  }

  /** Number of observations of a series so far. */
  count(labels?: Labels): number {
    return this.state(labels).count;
  }

  protected renderSeries(out: string[]): void {
    for (const s of this.sortedSeries()) {
      const prefix = s.labels === '' ? '' : `${s.labels},`;
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.state.counts[i] ?? 0;
        out.push(`${this.name}_bucket{${prefix}le="${formatValue(b)}"} ${formatValue(cumulative)}`);
      });
      out.push(`${this.name}_bucket{${prefix}le="+Inf"} ${formatValue(s.state.count)}`);
      out.push(sample(`${this.name}_sum`, s.labels, s.state.sum));
      out.push(sample(`${this.name}_count`, s.labels, s.state.count));
    }
  }
}

/** Runs at the start of each render to refresh gauges that mirror state kept elsewhere. */
export type Collector = () => void | Promise<void>;

/** The set of metrics of one process. Names are unique; registration order does not matter. */
export class MetricsRegistry {
  private readonly families = new Map<string, Family<unknown>>();
  private readonly collectors: Collector[] = [];

  private add<F extends Family<unknown>>(f: F): F {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} is already registered`);
    this.families.set(f.name, f);
    return f;
  }

  /** Registers a counter. Throws if the name is taken or a name is invalid. */
  counter(opts: MetricOptions): Counter {
    return this.add(new Counter(opts));
  }

  /** Registers a gauge. Throws if the name is taken or a name is invalid. */
  gauge(opts: MetricOptions): Gauge {
    return this.add(new Gauge(opts));
  }

  /** Registers a histogram. Throws if the name is taken, a name is invalid or buckets do not increase. */
  histogram(opts: HistogramOptions): Histogram {
    return this.add(new Histogram(opts));
  }

  /**
   * Adds a collector run before every render. A collector that throws or rejects leaves its
   * gauges at their previous values; the others still run.
   */
  addCollector(fn: Collector): void {
    this.collectors.push(fn);
  }

  /** Runs the collectors, then renders every family (text format 0.0.4, ends with a newline). */
  async render(): Promise<string> {
    await Promise.all(
      this.collectors.map(async (c) => {
        try {
          await c();
        } catch {
          // keep the previous values
        }
      }),
    );
    const out: string[] = [];
    const names = [...this.families.keys()].sort();
    for (const n of names) this.families.get(n)?.render(out);
    return out.length === 0 ? '' : `${out.join('\n')}\n`;
  }
}

// ------------------------------------------------------------------------------------------------
// Process metrics

/** Reads a file as text (the default reads the real file system). */
export type ReadText = (path: string) => string;

const readText: ReadText = (p) => fs.readFileSync(p, 'utf8');

function limitOf(limits: string, title: string, column: 'soft' | 'hard'): number | undefined {
  for (const line of limits.split('\n')) {
    if (!line.startsWith(title)) continue;
    const cols = line.slice(title.length).trim().split(/\s+/);
    const v = column === 'soft' ? cols[0] : cols[1];
    if (v === undefined) return undefined;
    return v === 'unlimited' ? 18446744073709551615 : Number(v);
  }
  return undefined;
}

/**
 * Registers the standard process metrics (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_virtual_memory_max_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds) and Node.js heap gauges. Values come from /proc where
 * available (Linux) and from Node's process API otherwise; a value that cannot be read keeps 0.
 * `startTimeSeconds` is the process start as Unix seconds.
 */
export function registerProcessMetrics(reg: MetricsRegistry, startTimeSeconds: number, read: ReadText = readText): void {
  const cpu = reg.counter({ name: 'process_cpu_seconds_total', help: 'Total user and system CPU time spent in seconds.' });
  const rss = reg.gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.' });
  const vsize = reg.gauge({ name: 'process_virtual_memory_bytes', help: 'Virtual memory size in bytes.' });
  const vmax = reg.gauge({ name: 'process_virtual_memory_max_bytes', help: 'Maximum amount of virtual memory available in bytes.' });
  const start = reg.gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.' });
  const openFds = reg.gauge({ name: 'process_open_fds', help: 'Number of open file descriptors.' });
  const maxFds = reg.gauge({ name: 'process_max_fds', help: 'Maximum number of open file descriptors.' });
  const heapTotal = reg.gauge({ name: 'nodejs_heap_size_total_bytes', help: 'Process heap size from Node.js in bytes.' });
  const heapUsed = reg.gauge({ name: 'nodejs_heap_size_used_bytes', help: 'Process heap size used from Node.js in bytes.' });
  const external = reg.gauge({ name: 'nodejs_external_memory_bytes', help: 'Node.js external memory size in bytes.' });
  const versionInfo = reg.gauge({
    name: 'nodejs_version_info',
    help: 'Node.js version info.',
    labelNames: ['version', 'major', 'minor', 'patch'],
  });
  const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
  versionInfo.set(1, { version: process.version, major, minor, patch });
  start.set(startTimeSeconds);
  reg.addCollector(() => {
    const u = process.cpuUsage();
    const total = (u.user + u.system) / 1e6;
    cpu.inc(undefined, Math.max(0, total - cpu.get()));
    const mem = process.memoryUsage();
    rss.set(mem.rss);
    heapTotal.set(mem.heapTotal);
    heapUsed.set(mem.heapUsed);
    external.set(mem.external);
    try {
      // /proc/self/stat: the command may contain spaces, so count fields after its closing paren.
      const stat = read('/proc/self/stat');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const vs = Number(fields[20]);
      if (Number.isFinite(vs)) vsize.set(vs);
    } catch {
      // not Linux
    }
    try {
      const limits = read('/proc/self/limits');
      const files = limitOf(limits, 'Max open files', 'soft');
      if (files !== undefined) maxFds.set(files);
      const as = limitOf(limits, 'Max address space', 'soft');
      if (as !== undefined) vmax.set(as);
    } catch {
      // not Linux
    }
    try {
      openFds.set(fs.readdirSync('/proc/self/fd').length);
    } catch {
      // not Linux
    }
  });
}

// ------------------------------------------------------------------------------------------------
// etcd's server metrics

/** etcd's bucket bounds for disk latencies: 0.001·2^i seconds, i = 0..13 (1 ms to 8.192 s). */
export const DISK_LATENCY_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 14);

/** What the server-state gauges read at scrape time. */
export interface ServerStateSource {
  /** True when the member knows a leader. */
  hasLeader(): boolean;
  /** True when this member is the leader. */
  isLeader(): boolean;
  /** The Raft commit index. */
  committedIndex(): number;
  /** The last applied log index. */
  appliedIndex(): number;
  /** Proposals waiting for their result. */
  pendingProposals(): number;
  /** Keys live at the current revision. */
  keysTotal(): number;
  /** Size of the state database files in bytes. */
  dbSizeBytes(): Promise<number>;
  /** Bytes of the database logically in use. */
  dbSizeInUseBytes(): Promise<number>;
}

/** The metric handles the server records into (etcd's names, types and help texts). */
export class ServerMetrics {
  /** etcd_server_leader_changes_seen_total. */
  readonly leaderChanges: Counter;
  /** etcd_server_proposals_failed_total. */
  readonly proposalsFailed: Counter;
  /** etcd_disk_wal_fsync_duration_seconds. */
  readonly walFsync: Histogram;
  /** etcd_disk_backend_commit_duration_seconds. */
  readonly backendCommit: Histogram;
  /** etcd_server_health_success. */
  readonly healthSuccess: Counter;
  /** etcd_server_health_failures. */
  readonly healthFailures: Counter;
  /** etcd_server_healthcheck{type,name}: 1 when the last run of a /livez or /readyz check passed. */
  readonly healthCheck: Gauge;
  /** etcd_server_healthchecks_total{type,name,status}. */
  readonly healthChecks: Counter;

  private readonly hasLeader: Gauge;
  private readonly isLeader: Gauge;
  private readonly committed: Gauge;
  private readonly applied: Gauge;
  private readonly pending: Gauge;
  private readonly keys: Gauge;
  private readonly dbSize: Gauge;
  private readonly dbInUse: Gauge;
  private readonly serverId: Gauge;

  /** Registers etcd's server metrics in `reg`; `version` is the reported etcd version ("3.6.11"). */
  constructor(
    private readonly reg: MetricsRegistry,
    version: string,
  ) {
    this.hasLeader = reg.gauge({ name: 'etcd_server_has_leader', help: 'Whether or not a leader exists. 1 is existence, 0 is not.' });
    this.isLeader = reg.gauge({ name: 'etcd_server_is_leader', help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.' });
    this.leaderChanges = reg.counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.' });
    this.committed = reg.gauge({ name: 'etcd_server_proposals_committed_total', help: 'The total number of consensus proposals committed.' });
    this.applied = reg.gauge({ name: 'etcd_server_proposals_applied_total', help: 'The total number of consensus proposals applied.' });
    this.pending = reg.gauge({ name: 'etcd_server_proposals_pending', help: 'The current number of pending proposals to commit.' });
    this.proposalsFailed = reg.counter({ name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.' });
    this.walFsync = reg.histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'The latency distributions of fsync called by WAL.',
      buckets: DISK_LATENCY_BUCKETS,
    });
    this.backendCommit = reg.histogram({
      name: 'etcd_disk_backend_commit_duration_seconds',
      help: 'The latency distributions of commit called by backend.',
      buckets: DISK_LATENCY_BUCKETS,
    });
    this.dbSize = reg.gauge({
      name: 'etcd_mvcc_db_total_size_in_bytes',
      help: 'Total size of the underlying database physically allocated in bytes.',
    });
    this.dbInUse = reg.gauge({
      name: 'etcd_mvcc_db_total_size_in_use_in_bytes',
      help: 'Total size of the underlying database logically in use in bytes.',
    });
    this.keys = reg.gauge({ name: 'etcd_debugging_mvcc_keys_total', help: 'Total number of keys.' });
    const serverVersion = reg.gauge({
      name: 'etcd_server_version',
      help: "Which version is running. 1 for 'server_version' label with current version.",
      labelNames: ['server_version'],
    });
    serverVersion.set(1, { server_version: version });
    const clusterVersion = reg.gauge({
      name: 'etcd_cluster_version',
      help: "Which version is running. 1 for 'cluster_version' label with current cluster version",
      labelNames: ['cluster_version'],
    });
    clusterVersion.set(1, { cluster_version: version.split('.').slice(0, 2).join('.') });
    this.serverId = reg.gauge({
      name: 'etcd_server_id',
      help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      labelNames: ['server_id'],
    });
    this.healthSuccess = reg.counter({ name: 'etcd_server_health_success', help: 'The total number of successful health checks' });
    this.healthFailures = reg.counter({ name: 'etcd_server_health_failures', help: 'The total number of failed health checks' });
    this.healthCheck = reg.gauge({
      name: 'etcd_server_healthcheck',
      help: 'The result of each kind of healthcheck.',
      labelNames: ['type', 'name'],
    });
    this.healthChecks = reg.counter({
      name: 'etcd_server_healthchecks_total',
      help: 'The total number of each kind of healthcheck.',
      labelNames: ['type', 'name', 'status'],
    });
  }

  /**
   * Binds the gauges that mirror server state (leader, indexes, pending proposals, keys, db size)
   * to `src`, read at every scrape; `memberId` labels etcd_server_id (hex, as etcd prints it).
   */
  bindServer(src: ServerStateSource, memberId: bigint): void {
    this.serverId.reset();
    this.serverId.set(1, { server_id: memberId.toString(16) });
    this.reg.addCollector(async () => {
      this.hasLeader.set(src.hasLeader() ? 1 : 0);
      this.isLeader.set(src.isLeader() ? 1 : 0);
      this.committed.set(src.committedIndex());
      this.applied.set(src.appliedIndex());
      this.pending.set(src.pendingProposals());
      this.keys.set(src.keysTotal());
      const [size, inUse] = await Promise.all([src.dbSizeBytes(), src.dbSizeInUseBytes()]);
      this.dbSize.set(size);
      this.dbInUse.set(inUse);
    });
  }
}

const ALL_KEYS = makeRange(Uint8Array.of(0), Uint8Array.of(0));

/** The server-state gauges' view of a running member (reads its current store and backend each time). */
export function serverStateOf(s: EtcdServer): ServerStateSource {
  return {
    hasLeader: () => s.leader !== 0n,
    isLeader: () => s.leader === s.memberId,
    committedIndex: () => s.raftStatus().commit,
    appliedIndex: () => s.appliedIndex,
    pendingProposals: () => s.pendingProposals,
    keysTotal: () => s.store.index.count(ALL_KEYS, s.store.currentRev),
    dbSizeBytes: () => s.backend.approximateSize(),
    dbSizeInUseBytes: () => s.backend.approximateSize(),
  };
}
