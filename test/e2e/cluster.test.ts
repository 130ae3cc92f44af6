/**
 * Multi-process clusters of the real server, driven by the real etcdctl: leader failure, catch-up
 * by log and by snapshot, membership changes, leadership transfer.
 */
import { Cluster, Slot, startCluster } from './cluster-harness';
import { etcdctl, freePort, sleep, startMember, stopAll, tmpDir } from './harness';
import { KvClient, callError } from './client';
import * as path from 'node:path';

afterAll(stopAll);

async function putUntilOk(c: Cluster, key: string, value: string, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const r = await c.ctl(['put', key, value, '--command-timeout=2s']);
    if (r.code === 0) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`put ${key} did not succeed within ${timeoutMs} ms`);
}

async function valueOn(slot: Slot, key: string): Promise<string> {
  const r = await etcdctl(`127.0.0.1:${slot.clientPort}`, ['get', key, '--print-value-only', '--consistency=s']);
  return r.stdout.trim();
}

async function waitValue(slot: Slot, key: string, value: string, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await valueOn(slot, key)) === value) return;
    await sleep(200);
  }
  throw new Error(`${slot.name} never got ${key}=${value} (has "${await valueOn(slot, key)}")`);
}

test('3 members: kill -9 the leader, writes go on, the member comes back and catches up by log', async () => {
  const c = await startCluster(3);
  expect((await c.ctl(['put', 'before', '1'])).code).toBe(0);
  const leader = await c.waitLeader();
  await c.kill(leader);
  const took = await putUntilOk(c, 'after', '2', 15000);
  expect(took).toBeLessThan(10000); // a few election timeouts (1 s each by default)
  for (let i = 0; i < 20; i++) expect((await c.ctl(['put', `k${i}`, `v${i}`])).code).toBe(0);
  await c.start(leader);
  await waitValue(leader, 'k19', 'v19');
  expect(await valueOn(leader, 'before')).toBe('1');
  expect(await valueOn(leader, 'after')).toBe('2');
  // Every member answers the same for a linearizable read of everything.
  const outs = await Promise.all(c.slots.map((s) => etcdctl(`127.0.0.1:${s.clientPort}`, ['get', '', '--prefix', '-w', 'json'])));
  const kvs = outs.map((o) => JSON.stringify((JSON.parse(o.stdout) as { kvs: unknown }).kvs));
  expect(new Set(kvs).size).toBe(1);
}, 90000);

test('a member that fell behind a compacted log catches up by snapshot', async () => {
  const c = await startCluster(3, ['--snapshot-count', '50', '--experimental-snapshot-catchup-entries', '10']);
  const leader = await c.waitLeader();
  const lagging = c.slots.find((s) => s !== leader)!;
  await c.kill(lagging);
  for (let i = 0; i < 200; i++) expect((await c.ctl(['put', `s${i}`, `v${i}`])).code).toBe(0);
  expect((await c.ctl(['del', 's0'])).code).toBe(0);
  await c.start(lagging);
  await waitValue(lagging, 's199', 'v199');
  expect(await valueOn(lagging, 's0')).toBe('');
  const log = lagging.member!.logs.join('');
  expect(log).toContain('installed state snapshot');
  // History came along: an old revision reads the same on the caught-up member as on the leader.
  const mine = await etcdctl(`127.0.0.1:${lagging.clientPort}`, ['get', 's0', '--rev', '10', '-w', 'json', '--consistency=s']);
  const theirs = await etcdctl(`127.0.0.1:${leader.clientPort}`, ['get', 's0', '--rev', '10', '-w', 'json', '--consistency=s']);
  expect((JSON.parse(mine.stdout) as { kvs: unknown }).kvs).toEqual((JSON.parse(theirs.stdout) as { kvs: unknown }).kvs);
  // And it keeps working as a member afterwards.
  expect((await c.ctl(['put', 'after-snap', 'x'])).code).toBe(0);
  await waitValue(lagging, 'after-snap', 'x');
}, 120000);

test('member add (learner), join, promote, list, remove; move-leader', async () => {
  const c = await startCluster(3, ['--initial-cluster-token', 'join-test']);
  for (let i = 0; i < 30; i++) expect((await c.ctl(['put', `d${i}`, `v${i}`])).code).toBe(0);
  const peerPort = await freePort();
  const clientPort = await freePort();
  const add = await c.ctl(['member', 'add', 'm4', `--peer-urls=http://127.0.0.1:${peerPort}`, '--learner']);
  expect(add.code).toBe(0);
  expect(add.stdout).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"');
  const ic = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(add.stdout)![1]!;
  const slot: Slot = { name: 'm4', clientPort, peerPort, dataDir: path.join(tmpDir('join-'), 'm4.etcd'), member: undefined };
  c.slots.push(slot);
  // The joining member is started as `etcdctl member add` suggests: without the cluster token.
  slot.member = await startMember({
    kind: 'ours', name: 'm4', clientPort, peerPort, dataDir: slot.dataDir,
    extraArgs: ['--initial-cluster', ic, '--initial-cluster-state', 'existing'], waitReady: false,
  });
  await waitValue(slot, 'd29', 'v29');
  // The learner says so in its status.
  const learnerStatus = await etcdctl(`127.0.0.1:${clientPort}`, ['endpoint', 'status', '-w', 'json']);
  expect((JSON.parse(learnerStatus.stdout) as { Status: { isLearner?: boolean } }[])[0]!.Status.isLearner).toBe(true);
  let list = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['member', 'list']); // not the learner: it serves no MemberList
  expect(list.stdout).toMatch(/m4, http:\/\/127\.0\.0\.1:\d+, http:\/\/127\.0\.0\.1:\d+, true/);
  const id = /^([0-9a-f]+), started, m4,/m.exec(list.stdout)![1]!;
  // Promote (retry: the learner must first be in sync with the leader).
  let promoted = false;
  for (let i = 0; i < 50 && !promoted; i++) {
    promoted = (await c.ctl(['member', 'promote', id])).code === 0;
    if (!promoted) await sleep(200);
  }
  expect(promoted).toBe(true);
  list = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['member', 'list']); // not the learner: it serves no MemberList
  expect(list.stdout).toMatch(new RegExp(`${id}, started, m4, .*, false`));
  // move-leader to m4
  const leader = await c.waitLeader();
  const mv = await etcdctl(c.endpoints(), ['move-leader', id]);
  expect(mv.stderr + mv.stdout).toContain('Leadership transferred');
  expect((await c.waitLeader()).name).toBe('m4');
  expect(leader.name).not.toBe('m4');
  // remove m4 (it stops itself); the cluster keeps working
  const rm = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['member', 'remove', id]);
  expect(rm.code).toBe(0);
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([slot.member!.exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 15000)))]);
  clearTimeout(timer);
  expect(exit).not.toBe('still running');
  slot.member = undefined;
  await putUntilOk(c, 'after-remove', '1', 15000);
  list = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['member', 'list']); // not the learner: it serves no MemberList
  expect(list.stdout).not.toContain('m4');
  expect(list.stdout.trim().split('\n').length).toBe(3);
}, 150000);

test('a joining member restarted before it applied anything still joins, by a snapshot that includes it', async () => {
  // Snapshots every 50 entries: the leader's last saved snapshot predates the member add below.
  const c = await startCluster(3, ['--snapshot-count', '50', '--experimental-snapshot-catchup-entries', '10']);
  for (let i = 0; i < 120; i++) expect((await c.ctl(['put', `r${i}`, `v${i}`])).code).toBe(0);
  const peerPort = await freePort();
  const add = await c.ctl(['member', 'add', 'm4', `--peer-urls=http://127.0.0.1:${peerPort}`, '--learner']);
  expect(add.code).toBe(0);
  const ic = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(add.stdout)![1]!;
  const slot: Slot = { name: 'm4', clientPort: await freePort(), peerPort, dataDir: path.join(tmpDir('rejoin-'), 'm4.etcd'), member: undefined };
  c.slots.push(slot);
  // Without a quorum nobody leads, so the new member learns the cluster but receives nothing.
  const second = c.slots[1]!;
  const third = c.slots[2]!;
  await c.kill(second);
  await c.kill(third);
  await sleep(3000);
  const joined = await c.start(slot, 'existing', ic);
  const deadline = Date.now() + 20000;
  while (!joined.logs.join('').includes('ready to serve client requests')) {
    if (Date.now() > deadline) throw new Error(`m4 did not start: ${joined.logs.join('')}`);
    await sleep(100);
  }
  await sleep(1000);
  await c.kill(slot);
  expect(joined.logs.join('')).not.toContain('installed state snapshot');
  // Its state holds no member but itself now. Bring the quorum back, then the new member.
  await c.start(second);
  await c.start(third);
  await c.waitLeader();
  const again = await c.start(slot, 'existing', ic);
  await waitValue(slot, 'r119', 'v119', 30000);
  expect(again.logs.join('')).toContain('installed state snapshot');
  expect(await valueOn(slot, 'r0')).toBe('v0');
}, 150000);

test('endpoint status --cluster and endpoint health --cluster reach every member', async () => {
  const c = await startCluster(3);
  const status = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['endpoint', 'status', '--cluster', '-w', 'json']);
  expect({ code: status.code, err: status.stderr }).toEqual({ code: 0, err: '' });
  const list = JSON.parse(status.stdout) as { Status: { leader: unknown; header: { member_id: unknown } } }[];
  expect(list.length).toBe(3);
  expect(list.filter((e) => String(e.Status.leader) === String(e.Status.header.member_id)).length).toBe(1);
  const health = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['endpoint', 'health', '--cluster']);
  expect(health.code).toBe(0);
  // etcdctl 3.4 prints health lines on stderr.
  expect((health.stdout + health.stderr).split('\n').filter((l) => l.includes('is healthy')).length).toBe(3);
}, 60000);

test('5 members survive losing two; with three gone the rest report no leader', async () => {
  const c = await startCluster(5);
  expect((await c.ctl(['put', 'five', '1'])).code).toBe(0);
  const leader = await c.waitLeader();
  const others = c.slots.filter((s) => s !== leader);
  await c.kill(leader);
  await c.kill(others[0]!);
  await putUntilOk(c, 'five', '2', 15000);
  await c.kill(others[1]!);
  const survivor = others[2]!;
  // Without a quorum there is no leader: a request that requires one fails at once with etcd's error,
  // one that does not waits for the request timeout.
  await sleep(3500);
  const kv = new KvClient(`127.0.0.1:${survivor.clientPort}`);
  let e = callError(await kv.call('Put', { key: Buffer.from('x'), value: Buffer.from('y') }, 5000, { hasleader: 'true' }).catch((x: unknown) => x));
  expect(e).toEqual({ code: 14, details: 'etcdserver: no leader' });
  e = callError(await kv.call('Put', { key: Buffer.from('x'), value: Buffer.from('y') }, 15000).catch((x: unknown) => x));
  expect(e.code).toBe(14);
  expect(e.details).toMatch(/^etcdserver: request timed out/);
  kv.close();
  // Bring two back: a quorum again, the data is all there.
  await c.start(leader);
  await c.start(others[0]!);
  await putUntilOk(c, 'five', '3', 20000);
  expect(await valueOn(survivor, 'five')).toBe('3');
}, 120000);

test('a member started with another cluster token is refused by the cluster', async () => {
  const c = await startCluster(3);
  const stranger = await startMember({
    kind: 'ours',
    name: 'm1',
    peerPort: await freePort(),
    extraArgs: ['--initial-cluster', c.initialCluster.replace(/^m1=http:\/\/127\.0\.0\.1:\d+/, 'm1=http://127.0.0.1:1'), '--initial-cluster-token', 'other-cluster'],
    waitReady: false,
  });
  await sleep(3000);
  const logs = c.slots.map((s) => s.member!.logs.join('')).join('') + stranger.logs.join('');
  expect(logs).toContain('cluster ID mismatch');
  expect((await c.ctl(['put', 'still', 'fine'])).code).toBe(0);
  const list = await etcdctl(`127.0.0.1:${c.slots[0]!.clientPort}`, ['member', 'list']); // not the learner: it serves no MemberList
  expect(list.stdout.trim().split('\n').length).toBe(3);
}, 60000);
