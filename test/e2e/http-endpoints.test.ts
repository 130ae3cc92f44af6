import * as crypto from 'node:crypto';
/**
 * The HTTP side of the server process: /health, /livez, /readyz, /version and /metrics on the
 * client port and on --listen-metrics-urls, metric values after real traffic, a member without a
 * leader, the NOSPACE alarm, and `etcdctl check datascale` (which reads process memory from
 * /metrics). Run `npm run build` first.
 */
import { httpRequest } from '../unit/api/http-request';
import { Member, etcdctl, freePort, sleep, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

/** Samples of a /metrics text: "name{labels}" → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const r = await httpRequest(port, 'GET', '/metrics');
  expect(r.status).toBe(200);
  return parseMetrics(r.text);
}

/** Waits until the member answers HTTP on its client port. */
async function waitHttp(port: number, path = '/livez'): Promise<void> {
  const deadline = Date.now() + 30000;
  for (;;) {
    try {
      const r = await httpRequest(port, 'GET', path);
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no HTTP answer on ${port}${path}`);
    await sleep(100);
  }
}

describe('a healthy member', () => {
  let m: Member;
  let metricsPort: number;

  beforeAll(async () => {
    metricsPort = await freePort();
    m = await startMember({ extraArgs: ['--listen-metrics-urls', `http://127.0.0.1:${metricsPort}`] });
  });

  afterAll(async () => {
    await stopMember(m);
  });

  it('serves the health endpoints on the client port', async () => {
    let r = await httpRequest(m.clientPort, 'GET', '/health');
    expect([r.status, r.text]).toEqual([200, '{"health":"true","reason":""}']);
    r = await httpRequest(m.clientPort, 'GET', '/health?serializable=true&exclude=NOSPACE');
    expect([r.status, r.text]).toEqual([200, '{"health":"true","reason":""}']);
    r = await httpRequest(m.clientPort, 'GET', '/livez?verbose');
    expect([r.status, r.text]).toEqual([200, '[+]serializable_read ok\nok\n']);
    r = await httpRequest(m.clientPort, 'GET', '/readyz?verbose');
    expect([r.status, r.text]).toEqual([200, '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n']);
    r = await httpRequest(m.clientPort, 'GET', '/readyz/linearizable_read');
    expect([r.status, r.text]).toEqual([200, 'ok\n']);
    r = await httpRequest(m.clientPort, 'PUT', '/health');
    expect([r.status, r.headers.allow, r.text]).toEqual([405, 'GET', 'Method Not Allowed\n']);
    r = await httpRequest(m.clientPort, 'GET', '/version');
    expect([r.status, r.text]).toEqual([200, '{"etcdserver":"3.6.11","etcdcluster":"3.6.0","storage":"3.6.0"}']);
    expect(r.headers['access-control-allow-origin']).toBe('*');
  });

  it('counts real traffic in /metrics', async () => {
    for (const k of ['k1', 'k2', 'k3']) expect((await etcdctl(m, ['put', k, 'v'])).code).toBe(0);
    expect((await etcdctl(m, ['del', 'k3'])).code).toBe(0);
    const bad = await etcdctl(m, ['put', '', 'v']);
    expect(bad.stderr).toContain('key is not provided');
    const s = await scrape(m.clientPort);
    const kv = (method: string, code: string): number | undefined =>
      s.get(`grpc_server_handled_total{grpc_code="${code}",grpc_method="${method}",grpc_service="etcdserverpb.KV",grpc_type="unary"}`);
    expect(kv('Put', 'OK')).toBe(3);
    expect(kv('Put', 'InvalidArgument')).toBe(1);
    expect(kv('DeleteRange', 'OK')).toBe(1);
    expect(kv('Compact', 'OK')).toBe(0);
    expect(s.get('grpc_server_started_total{grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"}')).toBe(4);
    expect(s.get('etcd_server_has_leader')).toBe(1);
    expect(s.get('etcd_server_is_leader')).toBe(1);
    expect(s.get('etcd_server_leader_changes_seen_total')).toBe(1);
    expect(s.get('etcd_server_proposals_pending')).toBe(0);
    expect(s.get('etcd_server_proposals_failed_total')).toBe(0);
    const applied = s.get('etcd_server_proposals_applied_total') ?? 0;
    expect(applied).toBeGreaterThanOrEqual(4);
    expect(s.get('etcd_server_proposals_committed_total')).toBeGreaterThanOrEqual(applied);
    expect(s.get('etcd_debugging_mvcc_keys_total')).toBe(2);
    expect(s.get('etcd_mvcc_db_total_size_in_bytes')).toBeGreaterThan(0);
    expect(s.get('etcd_disk_wal_fsync_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    expect(s.get('etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}')).toBe(s.get('etcd_disk_wal_fsync_duration_seconds_count'));
    expect(s.get('etcd_disk_backend_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(s.get('etcd_server_version{server_version="3.6.11"}')).toBe(1);
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(10e6);
    expect(s.get('process_open_fds')).toBeGreaterThan(5);
    expect(s.get('etcd_server_health_success')).toBeGreaterThanOrEqual(2);
  });

  it('serves /metrics and the health endpoints, but not /version or the gateway, on --listen-metrics-urls', async () => {
    const s = await scrape(metricsPort);
    expect(s.get('etcd_server_has_leader')).toBe(1);
    let r = await httpRequest(metricsPort, 'GET', '/health');
    expect([r.status, r.text]).toEqual([200, '{"health":"true","reason":""}']);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    r = await httpRequest(metricsPort, 'GET', '/readyz');
    expect([r.status, r.text]).toEqual([200, 'ok\n']);
    expect((await httpRequest(metricsPort, 'GET', '/version')).status).toBe(404);
    expect((await httpRequest(metricsPort, 'POST', '/v3/kv/range', '{"key":"azE="}')).status).toBe(404);
  });

  it('passes etcdctl check datascale, which reads process memory from /metrics', async () => {
    const r = await etcdctl(`http://127.0.0.1:${m.clientPort}`, ['check', 'datascale', '--load=s']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/PASS: Approximate system memory used : \d+\.\d+ MB\./);
  }, 60000);
});

test('a member without a leader fails /health and /readyz but serves serializable checks', async () => {
  const peerPort = await freePort();
  const otherPeer = await freePort();
  const m = await startMember({
    peerPort,
    waitReady: false,
    extraArgs: [
      '--initial-cluster', `default=http://127.0.0.1:${peerPort},other=http://127.0.0.1:${otherPeer}`,
      '--heartbeat-interval', '20', '--election-timeout', '100',
    ],
  });
  await waitHttp(m.clientPort);
  let r = await httpRequest(m.clientPort, 'GET', '/health');
  expect([r.status, r.text]).toEqual([503, '{"health":"false","reason":"RAFT NO LEADER"}\n']);
  expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
  r = await httpRequest(m.clientPort, 'GET', '/health?serializable=true');
  expect([r.status, r.text]).toEqual([200, '{"health":"true","reason":""}']);
  r = await httpRequest(m.clientPort, 'GET', '/livez');
  expect([r.status, r.text]).toEqual([200, 'ok\n']);
  r = await httpRequest(m.clientPort, 'GET', '/readyz');
  expect(r.status).toBe(503);
  expect(r.text).toMatch(/^\[\+\]data_corruption ok\n\[\+\]serializable_read ok\n\[-\]linearizable_read failed: etcdserver: request timed out[^\n]*\n\[\+\]non_learner ok\n\n$/);
  const s = await scrape(m.clientPort);
  expect(s.get('etcd_server_has_leader')).toBe(0);
  expect(s.get('etcd_server_health_failures')).toBe(1);
  expect(s.get('etcd_server_healthcheck{name="linearizable_read",type="readyz"}')).toBe(0);
  await stopMember(m);
}, 60000);

test('the NOSPACE alarm fails /health unless excluded', async () => {
  const m = await startMember({ extraArgs: ['--quota-backend-bytes', '400000'] });
  // Incompressible values: LevelDB compresses its tables, so repeated bytes would barely grow it.
  const value = crypto.randomBytes(4000).toString('base64');
  let full = false;
  for (let i = 0; i < 400 && !full; i++) {
    const r = await httpRequest(m.clientPort, 'POST', '/v3/kv/put', JSON.stringify({ key: Buffer.from(`q/${i}`).toString('base64'), value }));
    if (r.status !== 200) {
      expect([r.status, JSON.parse(r.text)]).toEqual([429, { error: 'etcdserver: mvcc: database space exceeded', message: 'etcdserver: mvcc: database space exceeded', code: 8 }]);
      full = true;
    }
  }
  expect(full).toBe(true);
  const deadline = Date.now() + 10000;
  let r = await httpRequest(m.clientPort, 'GET', '/health');
  while (r.status === 200 && Date.now() < deadline) {
    await sleep(100);
    r = await httpRequest(m.clientPort, 'GET', '/health');
  }
  expect([r.status, r.text]).toEqual([503, '{"health":"false","reason":"ALARM NOSPACE"}\n']);
  r = await httpRequest(m.clientPort, 'GET', '/health?exclude=NOSPACE');
  expect([r.status, r.text]).toEqual([200, '{"health":"true","reason":""}']);
  r = await httpRequest(m.clientPort, 'GET', '/readyz/data_corruption');
  expect([r.status, r.text]).toEqual([200, 'ok\n']);
  expect((await etcdctl(m, ['alarm', 'list'])).stdout).toContain('alarm:NOSPACE');
  await stopMember(m);
}, 120000);
