#!/usr/bin/env node
/**
 * The server command: etcd's flags and ETCD_* variables → configuration → one running member with
 * its gRPC front end. The only place a real clock and real process signals are wired in.
 */

import { ConfigError, VERSION_TEXT, bindHostFor, helpText, parseConfig } from './server/config';
import { createLogger } from './server/logger';
import { EtcdServer } from './server/etcd-server';
import { createGrpcServer } from './api/grpc-server';
import { ClientListener, notFoundHandler } from './api/client-listener';
import { kvHandlers } from './api/kv-service';
import { watchHandlers } from './api/watch-service';
import { clusterHandlers } from './api/cluster-service';
import { maintenanceHandlers } from './api/maintenance-service';
import { leaseHandlers } from './api/lease-service';
import { IdGenerator } from './server/ids';

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
  });

  const leaseIds = new IdGenerator(server.memberId ^ 0x5a5an, Date.now());
  const grpcServer = createGrpcServer(
    {
      'etcdserverpb.KV': kvHandlers(server, { maxTxnOps: cfg.maxTxnOps }),
      'etcdserverpb.Cluster': clusterHandlers(server, { token: cfg.initialClusterToken, maxLearners: cfg.maxLearners }),
      'etcdserverpb.Maintenance': maintenanceHandlers(server),
      'etcdserverpb.Lease': leaseHandlers(server, leaseIds.id.bind(leaseIds)),
      'etcdserverpb.Watch': watchHandlers(server, server.hub, {
        progressIntervalMs: cfg.progressNotifyIntervalMs,
        maxRequestBytes: cfg.maxRequestBytes,
      }),
    },
    {
      maxReceiveBytes: cfg.maxRequestBytes + 512 * 1024,
      guard: { hasLeader: () => server.leader !== 0n, isLearner: () => server.isLearner(), electionMs: cfg.electionTimeoutMs },
    },
  );
  for (const hp of cfg.listenClient) {
    const host = bindHostFor(hp.host);
    const listener = new ClientListener({ host, port: hp.port, grpcServer, http1: notFoundHandler, logger });
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

