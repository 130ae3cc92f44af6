#!/usr/bin/env node
/**
 * The server command: etcd's flags and ETCD_* variables → configuration → one running member with
 * its gRPC front end. The only place a real clock and real process signals are wired in.
 */

import * as http from 'node:http';
import * as v8 from 'node:v8';
import type { UntypedHandleCall } from '@grpc/grpc-js';
import { ConfigError, ETCD_COMPAT_VERSION, VERSION_TEXT, bindHostFor, helpText, parseConfig } from './server/config';
import { createLogger } from './server/logger';
import { EtcdServer } from './server/etcd-server';
import { createGrpcServer, createNativeGrpcServer } from './api/grpc-server';
import { ClientListener } from './api/client-listener';
import { MetricsRegistry, ServerMetrics, registerProcessMetrics, serverStateOf } from './server/metrics';
import { GrpcServerMetrics } from './api/grpc-metrics';
import { Gateway } from './api/gateway';
import { createHttpHandler, healthSourceOf } from './api/http-endpoints';
import { kvHandlers } from './api/kv-service';
import { watchHandlers } from './api/watch-service';
import { clusterHandlers } from './api/cluster-service';
import { maintenanceHandlers } from './api/maintenance-service';
import { leaseHandlers } from './api/lease-service';
import { lockHandlers } from './api/lock-service';
import { healthHandlers } from './api/health-service';
import { electionHandlers } from './api/election-service';
import { IdGenerator } from './server/ids';

/**
 * While the heap is small, the old generation may grow to 1.8 × what survived the last full
 * collection before the next one starts. V8's own factor (up to 4×) lets the short-lived objects
 * of requests that outlived a young-generation collection pile up: under 1,000 writing clients the
 * peak RSS was about 190 MB against about 145 MB with this bound. On a large heap (a few hundred
 * MB of keys) the bound would cost throughput for little gain, so past HEAP_BOUND_OFF_BYTES in use
 * V8 decides again, until the heap is back under HEAP_BOUND_ON_BYTES. A `--heap-growing-percent`
 * given to node disables this.
 */
const HEAP_GROWING_PERCENT = 80;
const HEAP_BOUND_ON_BYTES = 80 * 1024 * 1024;
const HEAP_BOUND_OFF_BYTES = 120 * 1024 * 1024;
function boundHeapGrowthWhileSmall(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return;
  let bounded = false;
  const check = (): void => {
    const used = v8.getHeapStatistics().used_heap_size;
    const want = bounded ? used < HEAP_BOUND_OFF_BYTES : used < HEAP_BOUND_ON_BYTES;
    if (want === bounded) return;
    bounded = want;
    v8.setFlagsFromString(`--heap-growing-percent=${want ? HEAP_GROWING_PERCENT : 0}`);
  };
  check();
  setInterval(check, 500).unref();
}
boundHeapGrowthWhileSmall();

/**
 * Crash-test support: ETCD_TS_FAILPOINT="<point>:<n>" makes the process exit abruptly (no cleanup,
 * like kill -9) the n-th time the Raft loop passes <point> (after-persist, after-send, after-apply,
 * after-advance). Unset in normal operation.
 */
function failpointFromEnv(spec: string | undefined): ((name: string) => void) | undefined {
  if (spec === undefined || spec === '') return undefined;
  const [point, nth] = spec.split(':');
  let left = Number(nth ?? '1');
  return (name: string) => {
    if (name === point && --left <= 0) {
      process.stderr.write(`failpoint ${name} reached: exiting\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  };
}

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`etcd-ts: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
  if (cfg.action === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (cfg.action === 'version') {
    process.stdout.write(VERSION_TEXT);
    return;
  }
  const logger = createLogger({ level: cfg.logLevel, outputs: cfg.logOutputs });
  for (const w of cfg.warnings) logger.warn(w);
  logger.info('starting member', { name: cfg.name, 'data-dir': cfg.dataDir, 'listen-client-urls': cfg.listenClientUrls.join(',') });

  // One metrics registry for the process, handed to everything that records.
  const metrics = new MetricsRegistry();
  registerProcessMetrics(metrics, Date.now() / 1000 - process.uptime());
  const serverMetrics = new ServerMetrics(metrics, ETCD_COMPAT_VERSION);
  const server = await EtcdServer.start({
    name: cfg.name,
    dataDir: cfg.dataDir,
    initialCluster: cfg.initialCluster.map((m) => ({ name: m.name, peerUrls: [...m.peerUrls] })),
    initialClusterState: cfg.initialClusterState,
    initialClusterToken: cfg.initialClusterToken,
    peerUrls: [...cfg.initialAdvertisePeerUrls],
    clientUrls: [...cfg.advertiseClientUrls],
    listenPeer: cfg.listenPeer.map((hp) => ({ host: bindHostFor(hp.host), port: hp.port })),
    maxLearners: cfg.maxLearners,
    minLeaseTtl: cfg.minLeaseTtlSeconds,
    quotaBytes: cfg.quotaBackendBytesEffective,
    failpoint: failpointFromEnv(process.env.ETCD_TS_FAILPOINT),
    maxTxnOps: cfg.maxTxnOps,
    maxRequestBytes: cfg.maxRequestBytes,
    snapshotCount: cfg.snapshotCountEffective,
    snapshotCatchUpEntries: cfg.snapshotCatchUpEntries,
    heartbeatMs: cfg.heartbeatIntervalMs,
    electionTicks: cfg.electionTicks,
    requestTimeoutMs: cfg.requestTimeoutMs,
    logger,
    metrics: serverMetrics,
  });
  serverMetrics.bindServer(serverStateOf(server), server.memberId);
  const grpcMethods = new Map<string, UntypedHandleCall>();

  const leaseIds = new IdGenerator(server.memberId ^ 0x5a5an, Date.now());
  const grpcServer = (cfg.grpcEngine === 'grpc-js' ? createGrpcServer : createNativeGrpcServer)(
    {
      'etcdserverpb.KV': kvHandlers(server, { maxTxnOps: cfg.maxTxnOps }),
      'etcdserverpb.Cluster': clusterHandlers(server, { token: cfg.initialClusterToken, maxLearners: cfg.maxLearners }),
      'etcdserverpb.Maintenance': maintenanceHandlers(server),
      'etcdserverpb.Lease': leaseHandlers(server, leaseIds.id.bind(leaseIds)),
      'v3lockpb.Lock': lockHandlers(server, leaseIds.id.bind(leaseIds)),
      'v3electionpb.Election': electionHandlers(server, leaseIds.id.bind(leaseIds)),
      'grpc.health.v1.Health': healthHandlers(),
      'etcdserverpb.Watch': watchHandlers(server, server.hub, {
        progressIntervalMs: cfg.progressNotifyIntervalMs,
        maxRequestBytes: cfg.maxRequestBytes,
      }),
    },
    {
      maxReceiveBytes: cfg.maxRequestBytes + 512 * 1024,
      guard: { hasLeader: () => server.leader !== 0n, isLearner: () => server.isLearner(), electionMs: cfg.electionTimeoutMs },
      metrics: new GrpcServerMetrics(metrics),
      onRegister: (path, handler) => grpcMethods.set(path, handler),
    },
  );
  const endpoints = {
    health: healthSourceOf(server, cfg.requestTimeoutMs),
    registry: metrics,
    serverMetrics,
    logger,
  };
  // The client port's HTTP/1 side: health, version, metrics and the JSON gateway (with CORS, as etcd).
  const clientHttp = http.createServer(
    { requestTimeout: 0 },
    createHttpHandler({ ...endpoints, version: ETCD_COMPAT_VERSION, cors: true, gateway: new Gateway({ methods: grpcMethods, maxRequestBytes: cfg.maxRequestBytes + 512 * 1024, logger }) }),
  );
  // --listen-metrics-urls: /metrics and the health endpoints only (no CORS, no /version, no gateway).
  const metricsHttp = createHttpHandler(endpoints);
  for (const hp of cfg.listenMetrics) {
    const host = bindHostFor(hp.host);
    const srv = http.createServer(metricsHttp);
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(hp.port, host, () => resolve());
    });
    logger.info('serving metrics', { address: `${host}:${hp.port}` });
  }
  for (const hp of cfg.listenClient) {
    const host = bindHostFor(hp.host);
    const listener = new ClientListener({ host, port: hp.port, grpcServer, http1: clientHttp, logger });
    const port = await listener.start();
    logger.info('serving client traffic', { address: `${host}:${port}` });
  }
  logger.info('ready to serve client requests', {
    'member-id': server.memberId.toString(16),
    'cluster-id': server.clusterId.toString(16),
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('received signal, shutting down', { signal });
    const force = setTimeout(() => grpcServer.forceShutdown(), 2000);
    grpcServer.tryShutdown(() => {
      clearTimeout(force);
      server
        .stop()
        .then(() => logger.close())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`error during shutdown: ${String(err)}\n`);
            process.exit(1);
          },
        );
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`etcd-ts: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});

