/**
 * The plain HTTP endpoints etcd serves beside gRPC, with etcd's paths, status codes, headers and
 * bodies:
 *
 *   GET /health   200 {"health":"true","reason":""}; 503 {"health":"false","reason":"…"}\n
 *                 checks alarms (?exclude=NOSPACE skips one; repeatable), then the leader (unless
 *                 ?serializable=true), then a Range of one key (keys only, serializable with
 *                 ?serializable=true) within the request timeout: reasons "ALARM NOSPACE",
 *                 "ALARM CORRUPT", "RAFT NO LEADER", "RANGE ERROR:<error>"
 *   GET /livez, /readyz (and /livez/<check>, /readyz/<check>)
 *                 "ok\n" (with ?verbose, first one "[+]<check> ok" line per check); 503 with
 *                 "[+]…"/"[-]<check> failed: <error>" lines on failure; ?exclude=<check> skips one.
 *                 livez: serializable_read; readyz: data_corruption, serializable_read,
 *                 linearizable_read, non_learner
 *   GET /version  {"etcdserver":"3.6.11","etcdcluster":"3.6.0","storage":"3.6.0"} (storage from 3.6)
 *   /metrics      the metrics registry in the Prometheus text format (gzip when accepted)
 *   /v3/…         the JSON gateway, when one is given (client port only)
 *
 * Other methods on /health, /livez, /readyz and /version get 405 with "Allow: GET"; unknown paths
 * get Go's "404 page not found". On the client port every answer carries etcd's default CORS
 * headers (--cors=*), and OPTIONS is answered 200 with no body.
 */
import type * as http from 'node:http';
import * as zlib from 'node:zlib';
import type { Logger } from '../server/logger';
import { EXPOSITION_CONTENT_TYPE, MetricsRegistry, ServerMetrics } from '../server/metrics';
import { AlarmType } from '../server/alarms';
import type { EtcdServer } from '../server/etcd-server';
import type { Gateway } from './gateway';

/** What the health endpoints ask of the member. */
export interface HealthSource {
  /** Names of the active alarms ("NOSPACE", "CORRUPT"), in the member's order. */
  alarms(): readonly string[];
  /** True when the member knows a leader. */
  hasLeader(): boolean;
  /** True when the member is a learner. */
  isLearner(): boolean;
  /**
   * Reads one key (keys only, limit 1), linearizably unless `serializable`; resolves when the
   * read was served, rejects with the server's error (its message is reported).
   */
  readOneKey(serializable: boolean): Promise<void>;
  /** The request timeout in ms (etcd: 5 s + 2 × election timeout). */
  requestTimeoutMs: number;
}

/** Options of the HTTP endpoints. */
export interface HttpEndpointsOptions {
  /** The member's health. */
  health: HealthSource;
  /** Rendered at /metrics. */
  registry: MetricsRegistry;
  /** Health counters (etcd_server_health_*, etcd_server_healthcheck*); none when absent. */
  serverMetrics?: ServerMetrics;
  /** The reported etcd version, e.g. "3.6.11", served at /version; no /version when absent (metrics listeners). */
  version?: string;
  /** Serves /v3/…; absent on the metrics listeners. */
  gateway?: Gateway;
  /** Adds etcd's default CORS headers and answers OPTIONS (the client port does, --listen-metrics-urls does not). */
  cors?: boolean;
  /** Where failed health checks are logged. */
  logger?: Logger;
}

/** One named check of /livez or /readyz; rejects (or throws) with the failure. */
type Check = () => Promise<void>;

/** Health JSON as etcd marshals it. */
function healthJson(ok: boolean, reason: string): string {
  return JSON.stringify({ health: ok ? 'true' : 'false', reason });
}

/** Writes a text answer as Go's http.Error does (text/plain, nosniff, a newline appended). */
function httpError(res: http.ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  res.writeHead(status, {
    ...extra,
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function methodNotAllowed(res: http.ServerResponse): void {
  httpError(res, 405, 'Method Not Allowed', { Allow: 'GET' });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Rejects after `ms` with etcd's context deadline text, unless `p` settles first. */
function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('context deadline exceeded')), ms);
    p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The version answer for a reported etcd version ("3.6.11"). */
export function versionJson(version: string): string {
  const [major = '0', minor = '0'] = version.split('.');
  const cluster = `${major}.${minor}.0`;
  const withStorage = Number(major) > 3 || (Number(major) === 3 && Number(minor) >= 6);
  return JSON.stringify(withStorage ? { etcdserver: version, etcdcluster: cluster, storage: cluster } : { etcdserver: version, etcdcluster: cluster });
}

/** Values of a query parameter, empty ones dropped (etcd's getQuerySet). */
function querySet(q: URLSearchParams, name: string): Set<string> {
  return new Set(q.getAll(name).filter((v) => v !== ''));
}

/** The request listener serving the endpoints above. */
export function createHttpHandler(opts: HttpEndpointsOptions): http.RequestListener {
  const h = opts.health;
  const m = opts.serverMetrics;

  const checks: Record<'livez' | 'readyz', [string, Check][]> = {
    livez: [['serializable_read', () => h.readOneKey(true)]],
    readyz: [
      [
        'data_corruption',
        async () => {
          if (h.alarms().includes('CORRUPT')) throw new Error('alarm activated: CORRUPT');
        },
      ],
      ['serializable_read', () => h.readOneKey(true)],
      ['linearizable_read', () => h.readOneKey(false)],
      [
        'non_learner',
        async () => {
          if (h.isLearner()) throw new Error('not supported for learner');
        },
      ],
    ],
  };

  const health = async (q: URLSearchParams): Promise<{ ok: boolean; reason: string }> => {
    const excluded = querySet(q, 'exclude');
    const serializable = q.get('serializable') === 'true';
    for (const a of h.alarms()) {
      if (excluded.has(a)) continue;
      return { ok: false, reason: a === 'NOSPACE' ? 'ALARM NOSPACE' : a === 'CORRUPT' ? 'ALARM CORRUPT' : 'ALARM UNKNOWN' };
    }
    if (!serializable && !h.hasLeader()) return { ok: false, reason: 'RAFT NO LEADER' };
    try {
      await withTimeout(h.readOneKey(serializable), h.requestTimeoutMs);
    } catch (err) {
      return { ok: false, reason: `RANGE ERROR:${errorText(err)}` };
    }
    return { ok: true, reason: '' };
  };

  const serveHealth = async (q: URLSearchParams, res: http.ServerResponse): Promise<void> => {
    const r = await health(q);
    const body = healthJson(r.ok, r.reason);
    if (r.ok) {
      m?.healthSuccess.inc();
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    m?.healthFailures.inc();
    opts.logger?.warn('/health error', { output: body, 'status-code': 503 });
    httpError(res, 503, body);
  };

  const serveChecks = async (
    type: 'livez' | 'readyz',
    only: string | undefined,
    q: URLSearchParams,
    res: http.ServerResponse,
  ): Promise<void> => {
    const excluded = only === undefined ? querySet(q, 'exclude') : new Set<string>();
    const run = checks[type].filter(([name]) => (only === undefined ? !excluded.has(name) : name === only));
    let ok = true;
    let out = '';
    for (const [name, check] of run) {
      try {
        await check();
        out += `[+]${name} ok\n`;
        m?.healthCheck.set(1, { type, name });
        m?.healthChecks.inc({ type, name, status: 'success' });
      } catch (err) {
        ok = false;
        out += `[-]${name} failed: ${errorText(err)}\n`;
        m?.healthCheck.set(0, { type, name });
        m?.healthChecks.inc({ type, name, status: 'error' });
      }
    }
    if (!ok) {
      opts.logger?.error('Health check error', { path: `/${type}${only === undefined ? '' : `/${only}`}`, reason: out, 'status-code': 503 });
      httpError(res, 503, out);
      return;
    }
    const body = `${q.has('verbose') ? out : ''}ok\n`;
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  const serveMetrics = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const text = await opts.registry.render();
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    if (gzip) {
      const body = zlib.gzipSync(text);
      res.writeHead(200, { 'Content-Type': EXPOSITION_CONTENT_TYPE, 'Content-Encoding': 'gzip', 'Content-Length': body.length });
      res.end(body);
      return;
    }
    res.writeHead(200, { 'Content-Type': EXPOSITION_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    const q = url.searchParams;
    if (opts.cors === true) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE');
      res.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
      if (req.method === 'OPTIONS') {
        res.writeHead(200, { 'Content-Length': 0 });
        res.end();
        return;
      }
    }
    if (opts.gateway !== undefined && opts.gateway.handle(req, res, p)) return;
    if (p === '/metrics') return serveMetrics(req, res);
    if (p === '/health' || (p === '/version' && opts.version !== undefined) || p === '/livez' || p === '/readyz' || /^\/(livez|readyz)\/[^/]+$/.test(p)) {
      const [, type = '', only] = p.split('/');
      const known = only === undefined || (type === 'livez' || type === 'readyz' ? checks[type].some(([n]) => n === only) : false);
      if (!known) return httpError(res, 404, '404 page not found');
      if (req.method !== 'GET') return methodNotAllowed(res);
      if (p === '/health') return serveHealth(q, res);
      if (p === '/version') {
        const body = versionJson(opts.version ?? '');
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      return serveChecks(type === 'livez' ? 'livez' : 'readyz', only, q, res);
    }
    httpError(res, 404, '404 page not found');
  };

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      opts.logger?.warn('http endpoint failed', { path: req.url, error: errorText(err) });
      if (!res.headersSent) httpError(res, 500, errorText(err));
      else res.destroy();
    });
  };
}

const EMPTY = new Uint8Array(0);

/** The health view of a running member: its alarms, leader, learner state and local reads. */
export function healthSourceOf(s: EtcdServer, requestTimeoutMs: number): HealthSource {
  return {
    alarms: () => s.alarms.all().map((a) => AlarmType[a.alarm] ?? 'UNKNOWN'),
    hasLeader: () => s.leader !== 0n,
    isLearner: () => s.isLearner(),
    readOneKey: async (serializable) => {
      await s.range({
        kind: 'range',
        key: EMPTY,
        rangeEnd: EMPTY,
        limit: 1,
        revision: 0,
        sortOrder: 0,
        sortTarget: 0,
        serializable,
        keysOnly: true,
        countOnly: false,
        minModRevision: 0,
        maxModRevision: 0,
        minCreateRevision: 0,
        maxCreateRevision: 0,
      });
    },
    requestTimeoutMs,
  };
}
