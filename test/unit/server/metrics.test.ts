/**
 * The metrics registry: Go-compatible number formatting, the text exposition format (HELP/TYPE,
 * ordering, labels, escaping, cumulative histogram buckets), collectors, and etcd's server metric
 * set.
 */
import fc from 'fast-check';
import {
  DISK_LATENCY_BUCKETS,
  MetricsRegistry,
  ServerMetrics,
  ServerStateSource,
  exponentialBuckets,
  formatValue,
  registerProcessMetrics,
} from '../../../src/server/metrics';

/** Lines of a rendering that are samples of `name` (exact metric name, with or without labels). */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
}

describe('formatValue (Go strconv.FormatFloat(v, g, -1, 64))', () => {
  it.each([
    [0, '0'],
    [1, '1'],
    [0.15, '0.15'],
    [20480, '20480'],
    [123456, '123456'],
    [999999, '999999'],
    [1000000, '1e+06'],
    [1234567, '1.234567e+06'],
    [27242496, '2.7242496e+07'],
    [4079136, '4.079136e+06'],
    [1795577676.76, '1.79557767676e+09'],
    [2147483648, '2.147483648e+09'],
    [18446744073709551615, '1.8446744073709552e+19'],
    [0.007718973999999999, '0.007718973999999999'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [1e100, '1e+100'],
    [5e-324, '5e-324'],
    [-2.5, '-2.5'],
    [-1234567, '-1.234567e+06'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ])('%p → %s', (v, text) => {
    expect(formatValue(v)).toBe(text);
  });

  it('round-trips and uses an exponent exactly when the decimal exponent is < -4 or ≥ 6', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
        const s = formatValue(v);
        expect(Number(s)).toBe(Object.is(v, -0) ? -0 : v);
        if (v === 0) return;
        const exp = Math.floor(Math.log10(Math.abs(v)));
        // log10 can be off by one right at powers of ten; the digits decide there.
        const e = Number(Math.abs(v).toExponential().split('e')[1]);
        expect(Math.abs(e - exp)).toBeLessThanOrEqual(1);
        expect(s.includes('e')).toBe(e < -4 || e >= 6);
        if (s.includes('e')) expect(s).toMatch(/e[+-]\d{2,3}$/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('exponentialBuckets', () => {
  it('gives etcd disk latency bounds 1 ms … 8.192 s', () => {
    expect(DISK_LATENCY_BUCKETS.map(formatValue)).toEqual([
      '0.001', '0.002', '0.004', '0.008', '0.016', '0.032', '0.064', '0.128', '0.256', '0.512', '1.024', '2.048', '4.096', '8.192',
    ]);
  });

  it('rejects meaningless parameters', () => {
    expect(() => exponentialBuckets(0, 2, 3)).toThrow();
    expect(() => exponentialBuckets(1, 1, 3)).toThrow();
    expect(() => exponentialBuckets(1, 2, 0)).toThrow();
  });
});

describe('MetricsRegistry rendering', () => {
  it('writes HELP and TYPE, sorts families by name and leaves out labelled families without series', async () => {
    const reg = new MetricsRegistry();
    const b = reg.gauge({ name: 'b_gauge', help: 'A gauge.' });
    reg.counter({ name: 'a_total', help: 'A counter.' });
    reg.counter({ name: 'c_total', help: 'Labelled, unused.', labelNames: ['x'] });
    b.set(2.5);
    expect(await reg.render()).toBe(
      '# HELP a_total A counter.\n# TYPE a_total counter\na_total 0\n' + '# HELP b_gauge A gauge.\n# TYPE b_gauge gauge\nb_gauge 2.5\n',
    );
  });

  it('sorts label pairs by name and series by label values, and escapes', async () => {
    const reg = new MetricsRegistry();
    const c = reg.counter({ name: 'req_total', help: 'Back\\slash and\nnewline.', labelNames: ['method', 'code'] });
    c.inc({ method: 'Put', code: 'OK' }, 3);
    c.inc({ method: 'Get', code: 'OK' });
    c.inc({ method: 'Get', code: 'NotFound' });
    c.inc({ method: 'a"b\\c\nd', code: 'OK' });
    const text = await reg.render();
    expect(text.split('\n').slice(0, 2)).toEqual(['# HELP req_total Back\\\\slash and\\nnewline.', '# TYPE req_total counter']);
    expect(samples(text, 'req_total')).toEqual([
      'req_total{code="NotFound",method="Get"} 1',
      'req_total{code="OK",method="Get"} 1',
      'req_total{code="OK",method="Put"} 3',
      'req_total{code="OK",method="a\\"b\\\\c\\nd"} 1',
    ]);
  });

  it('renders histograms with cumulative buckets, le last, +Inf, sum and count', async () => {
    const reg = new MetricsRegistry();
    const h = reg.histogram({ name: 'lat_seconds', help: 'Latency.', buckets: [0.1, 1, 10], labelNames: ['op'] });
    for (const v of [0.05, 0.1, 0.5, 5, 50]) h.observe(v, { op: 'x' });
    expect(samples(await reg.render(), 'lat_seconds_bucket').concat(samples(await reg.render(), 'lat_seconds_sum'), samples(await reg.render(), 'lat_seconds_count'))).toEqual([
      'lat_seconds_bucket{op="x",le="0.1"} 2',
      'lat_seconds_bucket{op="x",le="1"} 3',
      'lat_seconds_bucket{op="x",le="10"} 4',
      'lat_seconds_bucket{op="x",le="+Inf"} 5',
      'lat_seconds_sum{op="x"} 55.65',
      'lat_seconds_count{op="x"} 5',
    ]);
    expect(h.count({ op: 'x' })).toBe(5);
  });

  it('counts every observation in exactly the buckets at or above it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { maxLength: 50 }), async (values) => {
        const reg = new MetricsRegistry();
        const h = reg.histogram({ name: 'h', help: 'h', buckets: DISK_LATENCY_BUCKETS });
        for (const v of values) h.observe(v);
        const text = await reg.render();
        for (const b of DISK_LATENCY_BUCKETS) {
          const line = samples(text, 'h_bucket').find((l) => l.startsWith(`h_bucket{le="${formatValue(b)}"}`));
          expect(line).toBe(`h_bucket{le="${formatValue(b)}"} ${values.filter((v) => v <= b).length}`);
        }
        expect(samples(text, 'h_count')).toEqual([`h_count ${values.length}`]);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects duplicate names, bad names, wrong labels and decreasing counters', () => {
    const reg = new MetricsRegistry();
    const c = reg.counter({ name: 'x_total', help: 'x', labelNames: ['a'] });
    expect(() => reg.gauge({ name: 'x_total', help: 'again' })).toThrow(/already registered/);
    expect(() => reg.gauge({ name: '1bad', help: 'x' })).toThrow(/invalid metric name/);
    expect(() => reg.gauge({ name: 'ok', help: 'x', labelNames: ['__reserved'] })).toThrow(/invalid label name/);
    expect(() => reg.histogram({ name: 'h', help: 'x', buckets: [1], labelNames: ['le'] })).toThrow(/invalid label name/);
    expect(() => reg.histogram({ name: 'h2', help: 'x', buckets: [2, 1] })).toThrow(/increase/);
    expect(() => c.inc({ b: 'x' })).toThrow(/label "a"/);
    expect(() => c.inc({ a: 'x', b: 'y' })).toThrow(/takes labels/);
    expect(() => c.inc({ a: 'x' }, -1)).toThrow(/cannot decrease/);
  });

  it('a counter handle counts into the same series as inc(), created at 0 when taken', async () => {
    const reg = new MetricsRegistry();
    const c = reg.counter({ name: 'calls_total', help: 'x', labelNames: ['m'] });
    const plain = reg.counter({ name: 'plain_total', help: 'x' });
    const h = c.handle({ m: 'put' });
    expect(samples(await reg.render(), 'calls_total')).toEqual(['calls_total{m="put"} 0']);
    h.inc();
    h.inc(2);
    c.inc({ m: 'put' });
    c.inc({ m: 'get' });
    plain.inc();
    plain.handle().inc(4);
    expect(c.get({ m: 'put' })).toBe(4);
    expect(samples(await reg.render(), 'calls_total')).toEqual(['calls_total{m="get"} 1', 'calls_total{m="put"} 4']);
    expect(samples(await reg.render(), 'plain_total')).toEqual(['plain_total 5']);
    expect(() => h.inc(-1)).toThrow(/cannot decrease/);
    expect(() => c.handle({ x: 'put' })).toThrow(/label "m"/);
  });

  it('runs collectors before rendering; a failing one keeps the old value and the others still run', async () => {
    const reg = new MetricsRegistry();
    const g = reg.gauge({ name: 'g', help: 'g' });
    const g2 = reg.gauge({ name: 'g2', help: 'g2' });
    let n = 0;
    reg.addCollector(async () => {
      n++;
      if (n === 2) throw new Error('boom');
      g.set(n * 10);
    });
    reg.addCollector(() => g2.set(n));
    expect(samples(await reg.render(), 'g')).toEqual(['g 10']);
    const second = await reg.render();
    expect(samples(second, 'g')).toEqual(['g 10']);
    expect(samples(second, 'g2')).toEqual(['g2 2']);
  });
});

describe('process metrics', () => {
  it('reports memory, cpu, start time and limits from /proc-style files', async () => {
    const reg = new MetricsRegistry();
    const stat = '1234 (node with) spaces) S 1 1234 1234 0 -1 4194560 5 0 0 0 7 3 0 0 20 0 11 0 100 987654321 5000 rest';
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\nMax address space         unlimited            unlimited            bytes\n';
    registerProcessMetrics(reg, 1795577676.76, (p) => (p.endsWith('stat') ? stat : limits));
    const text = await reg.render();
    expect(samples(text, 'process_start_time_seconds')).toEqual(['process_start_time_seconds 1.79557767676e+09']);
    expect(samples(text, 'process_virtual_memory_bytes')).toEqual(['process_virtual_memory_bytes 9.87654321e+08']);
    expect(samples(text, 'process_max_fds')).toEqual(['process_max_fds 1024']);
    expect(samples(text, 'process_virtual_memory_max_bytes')).toEqual(['process_virtual_memory_max_bytes 1.8446744073709552e+19']);
    const rss = Number(samples(text, 'process_resident_memory_bytes')[0]?.split(' ')[1]);
    expect(rss).toBeGreaterThan(1e6);
    const cpu = Number(samples(text, 'process_cpu_seconds_total')[0]?.split(' ')[1]);
    expect(cpu).toBeGreaterThan(0);
    expect(text).toContain('# TYPE process_cpu_seconds_total counter');
    expect(samples(text, 'nodejs_version_info')[0]).toContain(`version="${process.version}"`);
  });
});

describe('ServerMetrics', () => {
  it("registers etcd's names and reads server state at scrape time", async () => {
    const reg = new MetricsRegistry();
    const m = new ServerMetrics(reg, '3.6.11');
    let leader = false;
    const src: ServerStateSource = {
      hasLeader: () => leader,
      isLeader: () => leader,
      committedIndex: () => 42,
      appliedIndex: () => 41,
      pendingProposals: () => 3,
      keysTotal: () => 7,
      dbSizeBytes: async () => 20480,
      dbSizeInUseBytes: async () => 16384,
    };
    m.bindServer(src, 0x8e9e05c52164694dn);
    m.leaderChanges.inc();
    m.walFsync.observe(0.0015);
    m.backendCommit.observe(0.02);
    let text = await reg.render();
    expect(samples(text, 'etcd_server_has_leader')).toEqual(['etcd_server_has_leader 0']);
    leader = true;
    text = await reg.render();
    expect(samples(text, 'etcd_server_has_leader')).toEqual(['etcd_server_has_leader 1']);
    expect(samples(text, 'etcd_server_is_leader')).toEqual(['etcd_server_is_leader 1']);
    expect(samples(text, 'etcd_server_leader_changes_seen_total')).toEqual(['etcd_server_leader_changes_seen_total 1']);
    expect(samples(text, 'etcd_server_proposals_committed_total')).toEqual(['etcd_server_proposals_committed_total 42']);
    expect(samples(text, 'etcd_server_proposals_applied_total')).toEqual(['etcd_server_proposals_applied_total 41']);
    expect(samples(text, 'etcd_server_proposals_pending')).toEqual(['etcd_server_proposals_pending 3']);
    expect(samples(text, 'etcd_server_proposals_failed_total')).toEqual(['etcd_server_proposals_failed_total 0']);
    expect(samples(text, 'etcd_debugging_mvcc_keys_total')).toEqual(['etcd_debugging_mvcc_keys_total 7']);
    expect(samples(text, 'etcd_mvcc_db_total_size_in_bytes')).toEqual(['etcd_mvcc_db_total_size_in_bytes 20480']);
    expect(samples(text, 'etcd_mvcc_db_total_size_in_use_in_bytes')).toEqual(['etcd_mvcc_db_total_size_in_use_in_bytes 16384']);
    expect(samples(text, 'etcd_server_version')).toEqual(['etcd_server_version{server_version="3.6.11"} 1']);
    expect(samples(text, 'etcd_server_id')).toEqual(['etcd_server_id{server_id="8e9e05c52164694d"} 1']);
    expect(samples(text, 'etcd_disk_wal_fsync_duration_seconds_bucket').slice(0, 2)).toEqual([
      'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 0',
      'etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 1',
    ]);
    expect(samples(text, 'etcd_disk_backend_commit_duration_seconds_count')).toEqual(['etcd_disk_backend_commit_duration_seconds_count 1']);
    // Types as etcd declares them (the proposal indexes are gauges there too).
    expect(text).toContain('# TYPE etcd_server_proposals_committed_total gauge');
    expect(text).toContain('# TYPE etcd_server_leader_changes_seen_total counter');
    expect(text).toContain('# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.');
  });
});
