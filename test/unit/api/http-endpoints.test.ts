/**
 * The HTTP endpoints over a scripted member: /health (alarms, exclusions, leader, serializable,
 * range errors and timeout), /livez and /readyz (verbose, failures, exclusions, single checks),
 * /version, /metrics (text and gzip), method and path errors, CORS, and the health metrics.
 */
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { HealthSource, createHttpHandler, versionJson } from '../../../src/api/http-endpoints';
import { EXPOSITION_CONTENT_TYPE, MetricsRegistry, ServerMetrics } from '../../../src/server/metrics';
import { httpRequest } from './http-request';

interface Script {
  alarms: string[];
  leader: boolean;
  learner: boolean;
  /** Result of a read by consistency: undefined = ok, an Error = fails, 'hang' = never answers. */
  serializable?: Error | 'hang';
  linearizable?: Error | 'hang';
  reads: boolean[];
}

function source(s: Script): HealthSource {
  const outcome = (r: Error | 'hang' | undefined): Promise<void> =>
    r === undefined ? Promise.resolve() : r === 'hang' ? new Promise<void>(() => undefined) : Promise.reject(r);
  return {
    alarms: () => s.alarms,
    hasLeader: () => s.leader,
    isLearner: () => s.learner,
    readOneKey: (serializable) => {
      s.reads.push(serializable);
      return outcome(serializable ? s.serializable : s.linearizable);
    },
    requestTimeoutMs: 200,
  };
}

function fresh(): Script {
  return { alarms: [], leader: true, learner: false, reads: [] };
}

describe('HTTP endpoints', () => {
  let script: Script;
  let reg: MetricsRegistry;
  let metrics: ServerMetrics;
  const servers: http.Server[] = [];
  let port = 0;
  let plainPort = 0;

  async function listen(handler: http.RequestListener): Promise<number> {
    const srv = http.createServer(handler);
    servers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const a = srv.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  beforeAll(async () => {
    script = fresh();
    reg = new MetricsRegistry();
    metrics = new ServerMetrics(reg, '3.6.11');
    // Each test scripts a fresh member; the handlers always consult the current one.
    const proxy: HealthSource = {
      alarms: () => script.alarms,
      hasLeader: () => script.leader,
      isLearner: () => script.learner,
      readOneKey: (ser) => source(script).readOneKey(ser),
      requestTimeoutMs: 200,
    };
    port = await listen(createHttpHandler({ health: proxy, registry: reg, serverMetrics: metrics, version: '3.6.11', cors: true }));
    plainPort = await listen(createHttpHandler({ health: proxy, registry: reg }));
  });

  beforeEach(() => {
    script = fresh();
  });

  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  describe('/health', () => {
    it('answers 200 with etcd JSON and counts the success', async () => {
      const before = metrics.healthSuccess.get();
      const r = await httpRequest(port, 'GET', '/health');
      expect(r.status).toBe(200);
      expect(r.text).toBe('{"health":"true","reason":""}');
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(script.reads).toEqual([false]);
      expect(metrics.healthSuccess.get()).toBe(before + 1);
    });

    it('fails on an alarm unless excluded, in alarm order', async () => {
      script.alarms = ['NOSPACE', 'CORRUPT'];
      const before = metrics.healthFailures.get();
      let r = await httpRequest(port, 'GET', '/health');
      expect(r.status).toBe(503);
      expect(r.text).toBe('{"health":"false","reason":"ALARM NOSPACE"}\n');
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(metrics.healthFailures.get()).toBe(before + 1);
      r = await httpRequest(port, 'GET', '/health?exclude=NOSPACE');
      expect(r.text).toBe('{"health":"false","reason":"ALARM CORRUPT"}\n');
      r = await httpRequest(port, 'GET', '/health?exclude=NOSPACE&exclude=CORRUPT');
      expect(r.status).toBe(200);
      expect(script.reads).toEqual([false]);
    });

    it('fails without a leader unless serializable, which reads locally', async () => {
      script.leader = false;
      let r = await httpRequest(port, 'GET', '/health');
      expect(r.status).toBe(503);
      expect(r.text).toBe('{"health":"false","reason":"RAFT NO LEADER"}\n');
      expect(script.reads).toEqual([]);
      r = await httpRequest(port, 'GET', '/health?serializable=true');
      expect(r.status).toBe(200);
      expect(script.reads).toEqual([true]);
    });

    it('reports a failed read and a read that outlives the request timeout', async () => {
      script.linearizable = new Error('etcdserver: request timed out');
      let r = await httpRequest(port, 'GET', '/health');
      expect(r.text).toBe('{"health":"false","reason":"RANGE ERROR:etcdserver: request timed out"}\n');
      script.linearizable = 'hang';
      const t0 = Date.now();
      r = await httpRequest(port, 'GET', '/health');
      expect(r.status).toBe(503);
      expect(r.text).toBe('{"health":"false","reason":"RANGE ERROR:context deadline exceeded"}\n');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    });

    it('refuses other methods with 405 and Allow: GET', async () => {
      for (const path of ['/health', '/version', '/livez', '/readyz/non_learner']) {
        const r = await httpRequest(port, 'POST', path, '{}');
        expect(r.status).toBe(405);
        expect(r.headers.allow).toBe('GET');
        expect(r.text).toBe('Method Not Allowed\n');
      }
    });
  });

  describe('/livez and /readyz', () => {
    it('answers ok, with the checks listed when verbose', async () => {
      let r = await httpRequest(port, 'GET', '/livez');
      expect([r.status, r.text]).toEqual([200, 'ok\n']);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
      r = await httpRequest(port, 'GET', '/livez?verbose');
      expect(r.text).toBe('[+]serializable_read ok\nok\n');
      r = await httpRequest(port, 'GET', '/readyz?verbose=1');
      expect(r.text).toBe('[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n');
    });

    it('fails with 503 and every check listed', async () => {
      script.learner = true;
      script.alarms = ['CORRUPT'];
      script.linearizable = new Error('etcdserver: request timed out');
      const r = await httpRequest(port, 'GET', '/readyz');
      expect(r.status).toBe(503);
      expect(r.text).toBe(
        '[-]data_corruption failed: alarm activated: CORRUPT\n[+]serializable_read ok\n' +
          '[-]linearizable_read failed: etcdserver: request timed out\n[-]non_learner failed: not supported for learner\n\n',
      );
      const text = await reg.render();
      expect(text).toContain('etcd_server_healthcheck{name="non_learner",type="readyz"} 0');
      expect(text).toContain('etcd_server_healthcheck{name="serializable_read",type="readyz"} 1');
      expect(text).toMatch(/etcd_server_healthchecks_total\{name="data_corruption",status="error",type="readyz"\} [1-9]/);
    });

    it('skips excluded checks and runs one check on its own path', async () => {
      script.learner = true;
      let r = await httpRequest(port, 'GET', '/readyz?exclude=non_learner&exclude=nope&verbose');
      expect(r.status).toBe(200);
      expect(r.text).not.toContain('non_learner');
      r = await httpRequest(port, 'GET', '/readyz/non_learner');
      expect([r.status, r.text]).toEqual([503, '[-]non_learner failed: not supported for learner\n\n']);
      r = await httpRequest(port, 'GET', '/readyz/serializable_read?verbose');
      expect([r.status, r.text]).toEqual([200, '[+]serializable_read ok\nok\n']);
      script.serializable = new Error('boom');
      r = await httpRequest(port, 'GET', '/livez/serializable_read');
      expect([r.status, r.text]).toEqual([503, '[-]serializable_read failed: boom\n\n']);
    });

    it('answers 404 for unknown checks', async () => {
      for (const path of ['/readyz/nope', '/livez/linearizable_read', '/readyz/', '/livez/a/b']) {
        const r = await httpRequest(port, 'GET', path);
        expect([r.status, r.text]).toEqual([404, '404 page not found\n']);
      }
    });
  });

  it('serves /version on the client port only', async () => {
    const r = await httpRequest(port, 'GET', '/version');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.text).toBe('{"etcdserver":"3.6.11","etcdcluster":"3.6.0","storage":"3.6.0"}');
    expect(versionJson('3.5.17')).toBe('{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}');
    expect((await httpRequest(plainPort, 'GET', '/version')).status).toBe(404);
  });

  it('serves /metrics as text, gzipped when accepted', async () => {
    let r = await httpRequest(port, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe(EXPOSITION_CONTENT_TYPE);
    expect(r.text).toContain('# TYPE etcd_server_health_success counter');
    r = await httpRequest(plainPort, 'GET', '/metrics', undefined, { 'Accept-Encoding': 'gzip' });
    expect(r.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(r.body).toString()).toContain('etcd_server_version{server_version="3.6.11"} 1');
  });

  it("adds etcd's CORS headers and answers OPTIONS on the client port only", async () => {
    let r = await httpRequest(port, 'GET', '/nope');
    expect([r.status, r.text]).toEqual([404, '404 page not found\n']);
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers['access-control-allow-methods']).toBe('POST, GET, OPTIONS, PUT, DELETE');
    expect(r.headers['access-control-allow-headers']).toBe('accept, content-type, authorization');
    r = await httpRequest(port, 'OPTIONS', '/v3/kv/range');
    expect([r.status, r.text]).toEqual([200, '']);
    r = await httpRequest(plainPort, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect((await httpRequest(plainPort, 'POST', '/v3/kv/range', '{}')).status).toBe(404);
  });
});
