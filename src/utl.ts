#!/usr/bin/env node
/**
 * Offline tool (like etcdutl): `snapshot restore` turns a snapshot saved with
 * `etcdctl snapshot save` into a fresh data dir for a member of a NEW cluster.
 *
 *   node dist/src/utl.js snapshot restore backup.db --name n1 --data-dir n1.etcd \
 *     --initial-cluster n1=http://10.0.0.1:2380,n2=... --initial-cluster-token new-token \
 *     --initial-advertise-peer-urls http://10.0.0.1:2380
 *
 * Every member of the new cluster restores the same file with its own --name, then starts with
 * the same --initial-cluster and --initial-cluster-state new. The key-value data, revisions,
 * compaction state and leases come from the snapshot; membership, alarms and the log start anew.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, MetaKeys, u64Bytes } from './storage/backend';
import { restoreState } from './storage/state-snapshot';
import { readSnapshotFile } from './storage/snapshot-file';
import { parseInitialCluster } from './server/config';

interface RestoreArgs {
  file: string;
  name: string;
  dataDir: string;
  initialCluster: string;
  token: string;
  peerUrls: string;
}

function usage(msg: string): never {
  process.stderr.write(`Error: ${msg}\nUsage: utl snapshot restore <file> [--name NAME] [--data-dir DIR] [--initial-cluster C] [--initial-cluster-token T] [--initial-advertise-peer-urls URLS]\n`);
  process.exit(1);
}

function parseArgs(argv: string[]): RestoreArgs {
  if (argv[0] !== 'snapshot' || argv[1] !== 'restore') usage('unknown command');
  const file = argv[2];
  if (file === undefined || file.startsWith('-')) usage('snapshot path is required');
  const opts: Record<string, string> = {};
  for (let i = 3; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) usage(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) opts[a.slice(2, eq)] = a.slice(eq + 1);
    else {
      const v = argv[++i];
      if (v === undefined) usage(`flag ${a} needs a value`);
      opts[a.slice(2)] = v;
    }
  }
  const known = new Set(['name', 'data-dir', 'initial-cluster', 'initial-cluster-token', 'initial-advertise-peer-urls']);
  for (const k of Object.keys(opts)) if (!known.has(k)) usage(`unknown flag --${k}`);
  const name = opts.name ?? 'default';
  const peerUrls = opts['initial-advertise-peer-urls'] ?? 'http://localhost:2380';
  return {
    file,
    name,
    dataDir: opts['data-dir'] ?? `${name}.etcd`,
    initialCluster: opts['initial-cluster'] ?? `${name}=${peerUrls}`,
    token: opts['initial-cluster-token'] ?? 'etcd-cluster',
    peerUrls,
  };
}

/** Restores `a.file` into a new data dir. */
export async function restore(a: RestoreArgs): Promise<void> {
  const members = parseInitialCluster(a.initialCluster);
  const mine = members.filter((m) => m.name === a.name).flatMap((m) => m.peerUrls);
  if (mine.length === 0) throw new Error(`couldn't find local name "${a.name}" in the initial cluster configuration`);
  const want = a.peerUrls.split(',').map((u) => u.trim()).sort().join(',');
  if ([...mine].sort().join(',') !== want) {
    throw new Error(`--initial-cluster has ${a.name}=${mine.join(',')} but --initial-advertise-peer-urls is ${a.peerUrls}`);
  }
  if (fs.existsSync(a.dataDir) && fs.readdirSync(a.dataDir).length > 0) throw new Error(`data-dir "${a.dataDir}" exists`);
  const memberDir = path.join(a.dataDir, 'member');
  fs.mkdirSync(memberDir, { recursive: true, mode: 0o700 });
  const stateDir = path.join(memberDir, 'state');
  const records = await restoreState(stateDir, readSnapshotFile(a.file));
  // Start the new cluster's log from scratch: no members, no alarms, nothing applied yet.
  const b = await Backend.open(stateDir);
  try {
    const ops: Parameters<Backend['write']>[0] = [];
    for await (const k of b.members.keys()) ops.push({ type: 'del', sublevel: b.members, key: k });
    for await (const k of b.meta.keys({ gte: Buffer.from('alarm/'), lt: Buffer.from('alarm0') })) ops.push({ type: 'del', sublevel: b.meta, key: k });
    ops.push({ type: 'put', sublevel: b.meta, key: MetaKeys.consistentIndex, value: u64Bytes(0) });
    ops.push({ type: 'put', sublevel: b.meta, key: MetaKeys.consistentTerm, value: u64Bytes(0) });
    await b.write(ops, true);
  } finally {
    await b.close();
  }
  process.stdout.write(`restored snapshot ${a.file} (${records} records) into ${a.dataDir} for member ${a.name}\n`);
}

if (require.main === module) {
  restore(parseArgs(process.argv.slice(2))).catch((err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
