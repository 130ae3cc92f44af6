/**
 * Operating the server with the real etcdctl: endpoint health/status/hashkv (--cluster), alarms and
 * the backend quota, defrag (with reads going on), snapshot save, and a tested disaster-recovery
 * procedure (snapshot a 3-member cluster under writes, restore into a new 3-member cluster, prove
 * the restored data is the original's at the snapshot's revision). Also the Maintenance.Hash RPC and
 * the gRPC health service (Check and Watch), which etcdctl does not call.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Cluster, Slot } from './cluster-harness';
import { startCluster } from './cluster-harness';
import { ROOT, etcdctl, freePort, run, sleep, startMember, stopAll, stopMember, tmpDir } from './harness';
import { KvClient } from './client';

afterAll(stopAll);

function revisionOf(out: string): number {
  return Number((JSON.parse(out) as { header: { revision: number | string } }).header.revision);
}

test('quota: writes fail with NOSPACE past the quota; compact + defrag + disarm recover it, nothing lost', async () => {
  const m = await startMember({ extraArgs: ['--quota-backend-bytes', '400000'] });
  const big = 'x'.repeat(4000);
  let failedAt = -1;
  for (let i = 0; i < 400; i++) {
    const r = await etcdctl(m, ['put', `q/${i}`, big]);
    if (r.code !== 0) {
      expect(r.stderr).toContain('etcdserver: mvcc: database space exceeded');
      failedAt = i;
      break;
    }
  }
  expect(failedAt).toBeGreaterThan(10);
  // The alarm is up; reads and deletes still work, puts do not.
  await sleep(1200);
  expect((await etcdctl(m, ['alarm', 'list'])).stdout).toMatch(/alarm:NOSPACE/);
  expect((await etcdctl(m, ['put', 'small', 'v'])).stderr).toContain('database space exceeded');
  expect((await etcdctl(m, ['get', 'q/0', '--print-value-only'])).stdout.trim()).toBe(big);
  const status = await etcdctl(m, ['endpoint', 'status']);
  expect(status.stdout).toContain('alarm:NOSPACE');
  // Recover: delete half, compact, defrag, disarm.
  for (let i = 0; i < failedAt; i += 2) expect((await etcdctl(m, ['del', `q/${i}`])).code).toBe(0);
  const rev = revisionOf((await etcdctl(m, ['get', 'q/1', '-w', 'json'])).stdout);
  expect((await etcdctl(m, ['compaction', String(rev), '--physical'])).code).toBe(0);
  const d = await etcdctl(m, ['defrag']);
  expect(d.stdout).toContain('Finished defragmenting etcd member');
  await sleep(1200);
  expect((await etcdctl(m, ['alarm', 'disarm'])).code).toBe(0);
  expect((await etcdctl(m, ['alarm', 'list'])).stdout).toBe('');
  expect((await etcdctl(m, ['put', 'small', 'v'])).code).toBe(0);
  for (let i = 1; i < failedAt; i += 2) expect((await etcdctl(m, ['get', `q/${i}`, '--print-value-only'])).stdout.trim()).toBe(big);
}, 120000);

async function valueCount(s: Slot, prefix: string): Promise<number> {
  const r = await etcdctl(`127.0.0.1:${s.clientPort}`, ['get', prefix, '--prefix', '--limit', '1', '-w', 'json', '--consistency=s']);
  return Number((JSON.parse(r.stdout) as { count?: number }).count ?? 0);
}

/** Waits until every member in `slots` has applied revision `rev` (its serializable reads are at `rev` or later). */
async function waitApplied(slots: Slot[], rev: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const s of slots) {
    for (;;) {
      const r = await etcdctl(`127.0.0.1:${s.clientPort}`, ['get', 'probe', '-w', 'json', '--consistency=s']);
      if (r.code === 0 && revisionOf(r.stdout) >= rev) break;
      if (Date.now() > deadline) throw new Error(`${s.name} did not apply revision ${rev}: ${r.stdout}${r.stderr}`);
      await sleep(100);
    }
  }
}

/** The hashes of `etcdctl endpoint hashkv -w json` output, one per endpoint. */
function hashesOf(out: string): number[] {
  return (JSON.parse(out) as { HashKV: { hash: number } }[]).map((h) => h.HashKV.hash);
}

test('disaster recovery: snapshot a cluster under writes, restore a new cluster, same data and HashKV everywhere', async () => {
  const c = await startCluster(3);
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      if ((await c.ctl(['put', `dr/${written}`, `v${written}`])).code === 0) written++;
    }
  })();
  await sleep(1500);
  const file = path.join(tmpDir('snap-'), 'backup.db');
  const save = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['snapshot', 'save', file]);
  expect(save.stdout).toContain('Snapshot saved at');
  await sleep(500);
  writing = false;
  await writer;
  expect(written).toBeGreaterThan(5);
  // The cluster still agrees with itself, at the last write's revision (which a follower may still
  // be applying when the writer stops: wait for every member to reach it first).
  const last = revisionOf((await c.ctl(['get', 'dr/', '--prefix', '--limit', '1', '-w', 'json'])).stdout);
  await waitApplied(c.slots, last);
  const hk = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['endpoint', 'hashkv', '--cluster', '--rev', String(last), '-w', 'json']);
  expect({ code: hk.code, err: hk.stderr }).toEqual({ code: 0, err: '' });
  const hashes = hashesOf(hk.stdout);
  expect(hashes.length).toBe(3);
  expect(new Set(hashes).size).toBe(1);

  // Restore into a brand-new 3-member cluster.
  const dir = tmpDir('restore-');
  const slots: Slot[] = [];
  for (let i = 1; i <= 3; i++) slots.push({ name: `r${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(dir, `r${i}.etcd`), member: undefined });
  const ic = slots.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  for (const s of slots) {
    const r = await run(process.execPath, [
      path.join(ROOT, 'dist', 'src', 'utl.js'), 'snapshot', 'restore', file, '--name', s.name, '--data-dir', s.dataDir,
      '--initial-cluster', ic, '--initial-cluster-token', 'restored', '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peerPort}`,
    ]);
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: '' });
  }
  const restored = new Cluster(slots, ic, ['--initial-cluster-token', 'restored']);
  await Promise.all(slots.map((s) => restored.start(s)));
  await restored.waitLeader();
  // The data is the snapshot's: some of the writes, all members the same, the old revision kept.
  const n = await valueCount(slots[0]!, 'dr/');
  expect(n).toBeGreaterThan(0);
  expect(n).toBeLessThanOrEqual(written);
  const all = await etcdctl(restored.endpoints(), ['get', 'dr/', '--prefix', '-w', 'json']);
  const rev = revisionOf(all.stdout);
  for (let i = 0; i < n; i++) {
    const r = await etcdctl(`127.0.0.1:${slots[i % 3]!.clientPort}`, ['get', `dr/${i}`, '--print-value-only', '--consistency=s']);
    expect(r.stdout.trim()).toBe(`v${i}`);
  }
  const hk2 = await etcdctl(`127.0.0.1:${slots[0]!.clientPort}`, ['endpoint', 'hashkv', '--cluster', '--rev', String(rev), '-w', 'json']);
  const hashes2 = hashesOf(hk2.stdout);
  expect(hashes2.length).toBe(3);
  expect(new Set(hashes2).size).toBe(1);
  // The restored data is exactly the original cluster's at the snapshot's revision: the original
  // (still running, and written to after the snapshot) hashes the same at that revision and holds
  // the same number of keys there.
  expect(rev).toBeLessThanOrEqual(last);
  const hkOriginal = await etcdctl(c.endpoints(), ['endpoint', 'hashkv', '--rev', String(rev), '-w', 'json']);
  expect({ code: hkOriginal.code, err: hkOriginal.stderr }).toEqual({ code: 0, err: '' });
  const originalHashes = hashesOf(hkOriginal.stdout);
  expect(originalHashes).toEqual([hashes2[0], hashes2[0], hashes2[0]]);
  const atRev = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['get', 'dr/', '--prefix', '--limit', '1', '--rev', String(rev), '-w', 'json']);
  expect(Number((JSON.parse(atRev.stdout) as { count?: number }).count ?? 0)).toBe(n);
  // It is a new cluster: writes go on from there.
  expect((await restored.ctl(['put', 'after-restore', 'ok'])).code).toBe(0);
  const members = await restored.ctl(['member', 'list']);
  expect(members.stdout).toContain('r1');
  expect(members.stdout).not.toContain('m1');
}, 150000);

test('etcdctl endpoint health/status/hashkv, defrag and check perf on one member', async () => {
  const m = await startMember();
  expect((await etcdctl(m, ['endpoint', 'health'])).stderr).toContain('is healthy');
  expect((await etcdctl(m, ['put', 'status-probe', 'v'])).code).toBe(0);
  const st = await etcdctl(m, ['endpoint', 'status', '-w', 'json']);
  const s = (
    JSON.parse(st.stdout) as {
      Status: { version: string; dbSize: number; leader: unknown; raftIndex: number; raftAppliedIndex?: number; dbSizeInUse?: number; isLearner?: boolean };
    }[]
  )[0]!.Status;
  expect(s.version).toMatch(/^3\.6\./);
  expect(s.dbSize).toBeGreaterThan(0);
  expect(s.raftAppliedIndex).toBeGreaterThan(0);
  expect(s.raftAppliedIndex).toBeLessThanOrEqual(s.raftIndex);
  expect(s.dbSizeInUse).toBeGreaterThan(0);
  expect(s.dbSizeInUse).toBeLessThanOrEqual(s.dbSize);
  // etcdctl prints the protobuf's JSON, which leaves out a false isLearner.
  expect(s.isLearner ?? false).toBe(false);
  expect((await etcdctl(m, ['endpoint', 'hashkv'])).stdout).toMatch(/127\.0\.0\.1:\d+, \d+/);
  expect((await etcdctl(m, ['defrag'])).stdout).toContain('Finished defragmenting');
  const perf = await etcdctl(m, ['check', 'perf', '--load=s']);
  expect(perf.stdout).toContain('PASS');
}, 150000);

/** The gRPC health service client, built from the project's proto/. */
interface HealthClient {
  Check: (req: object, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
  Watch: (req: object) => grpc.ClientReadableStream<{ status: string }>;
  close: () => void;
}

async function healthClient(endpoint: string): Promise<HealthClient> {
  const pl = await import('@grpc/proto-loader');
  const d = pl.loadSync(['grpc/health/v1/health.proto'], { includeDirs: [path.join(ROOT, 'proto')], keepCase: true, enums: String });
  const pkg = grpc.loadPackageDefinition(d) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(endpoint, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

test('the gRPC health service answers SERVING to Check, and as the first message of a Watch stream', async () => {
  const m = await startMember();
  const c = await healthClient(m.endpoint);
  const r = await new Promise<{ status: string }>((resolve, reject) => c.Check({ service: '' }, (e, res) => (e ? reject(e) : resolve(res))));
  expect(r.status).toBe('SERVING');
  // Watch: the stream's first message is the current status, and the stream stays open after it.
  const stream = c.Watch({ service: '' });
  const first = await new Promise<{ status: string }>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
    stream.once('end', () => reject(new Error('the Watch stream ended before its first message')));
  });
  expect(first).toEqual({ status: 'SERVING' });
  const ended = await Promise.race([new Promise((resolve) => stream.once('end', () => resolve('ended'))), sleep(300).then(() => 'open')]);
  expect(ended).toBe('open');
  stream.on('error', () => undefined); // the cancel below ends the call with CANCELLED
  stream.cancel();
  c.close();
  await stopMember(m);
}, 30000);

/** A Maintenance client for the Hash RPC, built from the project's proto/. */
interface MaintenanceClient {
  Hash: (req: object, cb: (e: grpc.ServiceError | null, r: { header: { revision: string }; hash: number }) => void) => void;
  close: () => void;
}

async function maintenanceClient(endpoint: string): Promise<MaintenanceClient> {
  const pl = await import('@grpc/proto-loader');
  const d = pl.loadSync(['etcdserverpb/rpc.proto'], { includeDirs: [path.join(ROOT, 'proto')], keepCase: true, longs: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(d) as unknown as { etcdserverpb: { Maintenance: grpc.ServiceClientConstructor } };
  return new pkg.etcdserverpb.Maintenance(endpoint, grpc.credentials.createInsecure()) as unknown as MaintenanceClient;
}

test('Maintenance.Hash: the same hash twice without writes, another one after a write', async () => {
  const m = await startMember();
  expect((await etcdctl(m, ['put', 'hash/a', '1'])).code).toBe(0);
  const c = await maintenanceClient(m.endpoint);
  const hash = (): Promise<{ header: { revision: string }; hash: number }> =>
    new Promise((resolve, reject) => c.Hash({}, (e, r) => (e ? reject(e) : resolve(r))));
  const h1 = await hash();
  await sleep(200);
  const h2 = await hash();
  expect(h1.hash).not.toBe(0);
  expect(h2).toEqual(h1);
  expect(h1.header.revision).toBe('2');
  expect((await etcdctl(m, ['put', 'hash/b', '2'])).code).toBe(0);
  const h3 = await hash();
  expect(h3.header.revision).toBe('3');
  expect(h3.hash).not.toBe(h1.hash);
  // Stable again once the write is in.
  expect((await hash()).hash).toBe(h3.hash);
  c.close();
  await stopMember(m);
}, 30000);

test('reads go on during a defrag: every get issued while etcdctl defrag runs succeeds', async () => {
  const m = await startMember();
  const kv = new KvClient(m.endpoint);
  // Some thousands of keys, written twice (so the defrag has garbage to drop), in transactions of 100 puts.
  const KEYS = 5000;
  // Incompressible values (LevelDB compresses its tables), 1 KB each: about 10 MB for the defrag to rewrite.
  const rnd = [1, 2].map(() => Array.from({ length: KEYS }, () => crypto.randomBytes(1000)));
  const value = (i: number, round: number): Buffer => rnd[round - 1]![i]!;
  // etcdctl --hex prints every byte as \xNN.
  const ctlHex = (b: Buffer): string => Array.from(b, (x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
  for (const round of [1, 2]) {
    for (let start = 0; start < KEYS; start += 100) {
      const success = [];
      for (let i = start; i < start + 100; i++) success.push({ request_put: { key: Buffer.from(`defrag/${i}`), value: value(i, round) } });
      await kv.call('Txn', { success });
    }
  }
  expect((await etcdctl(m, ['get', 'defrag/', '--prefix', '--limit', '1', '-w', 'json'])).stdout).toContain(`"count":${KEYS}`);
  let defragging = true;
  let defragStart = Infinity;
  const failures: string[] = [];
  // Gets that both started and finished while the etcdctl defrag command ran.
  let during = 0;
  const reader = async (serializable: boolean): Promise<void> => {
    for (let n = 0; defragging; n++) {
      const i = (n * 7919) % KEYS;
      const t0 = Date.now();
      try {
        const r = await kv.call('Range', { key: Buffer.from(`defrag/${i}`), serializable });
        const kvs = r.kvs as { value: Buffer }[];
        if (kvs.length !== 1 || !kvs[0]!.value.equals(value(i, 2))) failures.push(`defrag/${i}: ${JSON.stringify(r)}`);
        else if (t0 >= defragStart && defragging) during++;
      } catch (e) {
        failures.push(`defrag/${i}: ${String(e)}`);
      }
    }
  };
  const readers = [reader(false), reader(true), reader(false)];
  // The real client reads too, on its own connection.
  const ctlReader = (async (): Promise<void> => {
    for (let i = 0; defragging; i += 13) {
      const r = await etcdctl(m, ['get', `defrag/${i % KEYS}`, '--print-value-only', '--hex']);
      if (r.code !== 0 || r.stdout.trim() !== ctlHex(value(i % KEYS, 2))) failures.push(`etcdctl get defrag/${i % KEYS}: ${r.code} ${r.stderr}`);
    }
  })();
  await sleep(100);
  defragStart = Date.now();
  const d = await etcdctl(m, ['defrag', '--command-timeout=30s']);
  const defragMs = Date.now() - defragStart;
  defragging = false;
  await Promise.all([...readers, ctlReader]);
  kv.close();
  expect(d.stdout).toContain('Finished defragmenting etcd member');
  expect(failures).toEqual([]);
  expect({ during: during > 0, defragMs }).toEqual({ during: true, defragMs });
  expect((await etcdctl(m, ['get', `defrag/${KEYS - 1}`, '--print-value-only', '--hex'])).stdout.trim()).toBe(ctlHex(value(KEYS - 1, 2)));
  await stopMember(m);
}, 60000);
