/**
 * Operating the server with the real etcdctl: endpoint health/status/hashkv (--cluster), alarms and
 * the backend quota, defrag, snapshot save, and a tested disaster-recovery procedure (snapshot a
 * 3-member cluster under writes, restore into a new 3-member cluster).
 */
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Cluster, Slot } from './cluster-harness';
import { startCluster } from './cluster-harness';
import { ROOT, etcdctl, freePort, run, sleep, startMember, stopAll, tmpDir } from './harness';

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
  // The cluster still agrees with itself.
  const hk = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['endpoint', 'hashkv', '--cluster', '-w', 'json']);
  expect(hk.code).toBe(0);
  const hashes = (JSON.parse(hk.stdout) as { HashKV: { hash: number } }[]).map((h) => h.HashKV.hash);
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
  const hashes2 = (JSON.parse(hk2.stdout) as { HashKV: { hash: number } }[]).map((h) => h.HashKV.hash);
  expect(hashes2.length).toBe(3);
  expect(new Set(hashes2).size).toBe(1);
  // It is a new cluster: writes go on from there.
  expect((await restored.ctl(['put', 'after-restore', 'ok'])).code).toBe(0);
  const members = await restored.ctl(['member', 'list']);
  expect(members.stdout).toContain('r1');
  expect(members.stdout).not.toContain('m1');
}, 150000);

test('etcdctl endpoint health/status/hashkv, defrag and check perf on one member', async () => {
  const m = await startMember();
  expect((await etcdctl(m, ['endpoint', 'health'])).stderr).toContain('is healthy');
  const st = await etcdctl(m, ['endpoint', 'status', '-w', 'json']);
  const s = (JSON.parse(st.stdout) as { Status: { version: string; dbSize: number; leader: unknown; raftIndex: number } }[])[0]!.Status;
  expect(s.version).toMatch(/^3\.6\./);
  expect(s.dbSize).toBeGreaterThan(0);
  expect((await etcdctl(m, ['endpoint', 'hashkv'])).stdout).toMatch(/127\.0\.0\.1:\d+, \d+/);
  expect((await etcdctl(m, ['defrag'])).stdout).toContain('Finished defragmenting');
  const perf = await etcdctl(m, ['check', 'perf', '--load=s']);
  expect(perf.stdout).toContain('PASS');
}, 150000);

test('the gRPC health service answers SERVING', async () => {
  const pl = await import('@grpc/proto-loader');
  const d = pl.loadSync(['grpc/health/v1/health.proto'], { includeDirs: [path.join(ROOT, 'proto')], keepCase: true, enums: String });
  const pkg = grpc.loadPackageDefinition(d) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const m = await startMember();
  const c = new pkg.grpc.health.v1.Health(m.endpoint, grpc.credentials.createInsecure()) as unknown as {
    Check: (req: object, cb: (e: grpc.ServiceError | null, r: { status: string }) => void) => void;
    close: () => void;
  };
  const r = await new Promise<{ status: string }>((resolve, reject) => c.Check({ service: '' }, (e, res) => (e ? reject(e) : resolve(res))));
  expect(r.status).toBe('SERVING');
  c.close();
}, 30000);
