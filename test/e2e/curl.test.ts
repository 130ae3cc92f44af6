/**
 * The HTTP side of one member driven by the real `curl`, as an operator would: /health, /livez,
 * /readyz, /version, /metrics and the JSON gateway (put, range, deleterange, lease grant, errors).
 * The same curl session runs first against a fresh real etcd 3.4 and then against a fresh server of
 * ours on the same ports with the same member name (so cluster and member ids and revisions agree);
 * gateway answers must be byte-for-byte equal. Differences that come from the versions are checked
 * separately: this server answers as etcd 3.6 does (/health carries a "reason", /livez and /readyz
 * exist, /version has a "storage" field), etcd 3.4 does not.
 * Run `npm run build` first.
 */
import { Member, onBothServers, requireTool, run, sleep, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** One curl answer. */
interface CurlAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Runs the real curl against 127.0.0.1:port; POSTs `body` if given (as etcd's docs do, with -d). */
async function curl(port: number, urlPath: string, body?: string): Promise<CurlAnswer> {
  const args = ['-sS', '--max-time', '10', '-w', '\n%{http_code} %{content_type}'];
  if (body !== undefined) args.push('-X', 'POST', '-d', body);
  args.push(`http://127.0.0.1:${port}${urlPath}`);
  const r = await run(requireTool('curl'), args);
  if (r.code !== 0) throw new Error(`curl ${urlPath} failed (${r.code}): ${r.stderr}`);
  const i = r.stdout.lastIndexOf('\n');
  const tail = r.stdout.slice(i + 1);
  const sp = tail.indexOf(' ');
  return { status: Number(tail.slice(0, sp)), contentType: tail.slice(sp + 1), body: r.stdout.slice(0, i) };
}

/** Sample value of an unlabelled metric in a /metrics text. */
function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/** Sample names (without labels) in a /metrics text. */
function metricNames(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    out.add(/^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)![0]);
  }
  return out;
}

/** Gateway requests, in order: name → [path, body]. */
const GATEWAY: [string, string, string][] = [
  ['put', '/v3/kv/put', `{"key": "${b64('foo')}", "value": "${b64('bar')}"}`],
  ['put-prev', '/v3/kv/put', `{"key": "${b64('foo')}", "value": "${b64('baz')}", "prev_kv": true}`],
  ['range', '/v3/kv/range', `{"key": "${b64('foo')}"}`],
  ['range-old-revision', '/v3/kv/range', `{"key": "${b64('foo')}", "revision": "2"}`],
  ['lease-grant', '/v3/lease/grant', '{"TTL": 60, "ID": 4660}'],
  ['put-leased', '/v3/kv/put', `{"key": "${b64('leased')}", "value": "${b64('v')}", "lease": "4660"}`],
  ['range-prefix', '/v3/kv/range', `{"key": "${b64('f')}", "range_end": "${b64('g')}", "keys_only": true}`],
  ['deleterange', '/v3/kv/deleterange', `{"key": "${b64('foo')}", "prev_kv": true}`],
  ['range-after-delete', '/v3/kv/range', `{"key": "${b64('foo')}"}`],
  ['error-empty-key', '/v3/kv/range', '{"key": ""}'],
  ['error-malformed', '/v3/kv/range', '{"key":'],
  ['error-future-revision', '/v3/kv/range', `{"key": "${b64('foo')}", "revision": "1000"}`],
  ['error-unknown-lease', '/v3/kv/put', `{"key": "${b64('x')}", "value": "${b64('y')}", "lease": "777"}`],
];

interface Session {
  health: CurlAnswer;
  healthSerializable: CurlAnswer;
  livez: CurlAnswer;
  readyz: CurlAnswer;
  version: CurlAnswer;
  metrics: CurlAnswer;
  gateway: Map<string, CurlAnswer>;
}

async function session(kind: 'etcd' | 'ours', clientPort: number, peerPort: number): Promise<Session> {
  const m: Member = await startMember({ kind, clientPort, peerPort });
  const s: Session = {
    health: await curl(clientPort, '/health'),
    healthSerializable: await curl(clientPort, '/health?serializable=true'),
    livez: await curl(clientPort, '/livez'),
    readyz: await curl(clientPort, '/readyz'),
    version: await curl(clientPort, '/version'),
    metrics: await curl(clientPort, '/metrics'),
    gateway: new Map(),
  };
  for (const [name, p, body] of GATEWAY) s.gateway.set(name, await curl(clientPort, p, body));
  await stopMember(m);
  await sleep(200);
  return s;
}

describe('curl against one member', () => {
  let etcd: Session;
  let ours: Session;

  beforeAll(async () => {
    requireTool('curl');
    ({ theirs: etcd, ours } = await onBothServers(session));
  }, 60000);

  it('GET /health and /health?serializable=true answer healthy', () => {
    for (const a of [ours.health, ours.healthSerializable]) {
      expect(a).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: '{"health":"true","reason":""}' });
    }
    // etcd 3.4 has no "reason" yet; the rest is the same.
    for (const a of [etcd.health, etcd.healthSerializable]) {
      expect(a).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: '{"health":"true"}' });
    }
  });

  it('GET /livez and /readyz answer ok', () => {
    expect(ours.livez).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'ok\n' });
    expect(ours.readyz).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'ok\n' });
    // These came with etcd 3.5.
    expect(etcd.livez.status).toBe(404);
    expect(etcd.readyz.status).toBe(404);
  });

  it('GET /version answers JSON with etcdserver and etcdcluster', () => {
    expect(ours.version).toEqual({ status: 200, contentType: 'application/json', body: '{"etcdserver":"3.6.11","etcdcluster":"3.6.0","storage":"3.6.0"}' });
    expect(etcd.version.status).toBe(200);
    expect(etcd.version.contentType).toBe(ours.version.contentType);
    const theirs = JSON.parse(etcd.version.body) as Record<string, unknown>;
    const mine = JSON.parse(ours.version.body) as Record<string, unknown>;
    expect(theirs).toEqual({ etcdserver: expect.stringMatching(/^3\.4\.\d+$/), etcdcluster: '3.4.0' });
    for (const field of Object.keys(theirs)) expect(typeof mine[field]).toBe('string');
  });

  it('GET /metrics is Prometheus text with the same etcd metric names', () => {
    expect(ours.metrics.status).toBe(200);
    expect(ours.metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(ours.metrics.contentType).toBe(etcd.metrics.contentType);
    for (const s of [ours, etcd]) {
      expect(metricValue(s.metrics.body, 'etcd_server_has_leader')).toBe(1);
      expect(metricValue(s.metrics.body, 'etcd_server_is_leader')).toBe(1);
    }
    const mine = metricNames(ours.metrics.body);
    const theirs = metricNames(etcd.metrics.body);
    for (const name of [
      'etcd_server_has_leader',
      'etcd_server_is_leader',
      'etcd_server_leader_changes_seen_total',
      'etcd_server_proposals_applied_total',
      'etcd_server_proposals_committed_total',
      'etcd_server_proposals_pending',
      'etcd_server_proposals_failed_total',
      'etcd_server_version',
      'etcd_server_id',
      'etcd_cluster_version',
      'etcd_mvcc_db_total_size_in_bytes',
      'etcd_mvcc_db_total_size_in_use_in_bytes',
      'etcd_debugging_mvcc_keys_total',
      'etcd_disk_wal_fsync_duration_seconds_bucket',
      'etcd_disk_backend_commit_duration_seconds_count',
      'grpc_server_started_total',
      'grpc_server_handled_total',
      'process_resident_memory_bytes',
      'process_open_fds',
    ]) {
      expect([name, mine.has(name)]).toEqual([name, true]);
      expect([name, theirs.has(name)]).toEqual([name, true]);
    }
    expect(ours.metrics.body).toContain('etcd_server_version{server_version="3.6.11"} 1\n');
  });

  it('the JSON gateway answers every request exactly as etcd does', () => {
    const differing = GATEWAY.map(([name]) => ({ name, etcd: etcd.gateway.get(name), ours: ours.gateway.get(name) })).filter(
      (d) => JSON.stringify(d.etcd) !== JSON.stringify(d.ours),
    );
    expect(differing).toEqual([]);
  });

  it('the JSON gateway: base64 keys and values, 64-bit integers as strings', () => {
    const json = (name: string): Record<string, unknown> => {
      const a = ours.gateway.get(name)!;
      expect([name, a.status, a.contentType]).toEqual([name, 200, 'application/json']);
      return JSON.parse(a.body) as Record<string, unknown>;
    };
    const header = (revision: string): unknown => ({
      cluster_id: expect.stringMatching(/^\d+$/),
      member_id: expect.stringMatching(/^\d+$/),
      revision,
      raft_term: '2',
    });
    const kv = (key: string, value: string, create: string, mod: string, version: string, lease?: string): unknown => ({
      key: b64(key),
      create_revision: create,
      mod_revision: mod,
      version,
      value: b64(value),
      ...(lease === undefined ? {} : { lease }),
    });
    expect(json('put')).toEqual({ header: header('2') });
    expect(json('put-prev')).toEqual({ header: header('3'), prev_kv: kv('foo', 'bar', '2', '2', '1') });
    expect(json('range')).toEqual({ header: header('3'), kvs: [kv('foo', 'baz', '2', '3', '2')], count: '1' });
    expect(json('range-old-revision')).toEqual({ header: header('3'), kvs: [kv('foo', 'bar', '2', '2', '1')], count: '1' });
    expect(json('lease-grant')).toEqual({ header: header('3'), ID: '4660', TTL: '60' });
    expect(json('put-leased')).toEqual({ header: header('4') });
    expect(json('range-prefix')).toEqual({ header: header('4'), kvs: [{ key: b64('foo'), create_revision: '2', mod_revision: '3', version: '2' }], count: '1' });
    expect(json('deleterange')).toEqual({ header: header('5'), deleted: '1', prev_kvs: [kv('foo', 'baz', '2', '3', '2')] });
    expect(json('range-after-delete')).toEqual({ header: header('5') });
    // Every answer carries the same cluster id.
    const ids = ['put', 'range', 'deleterange'].map((n) => JSON.stringify((json(n).header as Record<string, unknown>).cluster_id));
    expect(new Set(ids).size).toBe(1);
  });

  it('the JSON gateway: errors carry the HTTP status of their gRPC code and a JSON body', () => {
    const error = (message: string, code: number): string => JSON.stringify({ error: message, message, code });
    expect(ours.gateway.get('error-empty-key')).toEqual({ status: 400, contentType: 'application/json', body: error('etcdserver: key is not provided', 3) });
    expect(ours.gateway.get('error-malformed')).toEqual({ status: 400, contentType: 'application/json', body: error('unexpected EOF', 3) });
    expect(ours.gateway.get('error-future-revision')).toEqual({
      status: 400,
      contentType: 'application/json',
      body: error('etcdserver: mvcc: required revision is a future revision', 11),
    });
    expect(ours.gateway.get('error-unknown-lease')).toEqual({ status: 404, contentType: 'application/json', body: error('etcdserver: requested lease not found', 5) });
  });
});
