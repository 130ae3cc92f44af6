/**
 * Crash points inside the Raft loop: the member dies (like kill -9) right after persisting, after
 * sending, after applying and after advancing; on restart nothing acknowledged is lost and the
 * member agrees with the others.
 */
import { KvClient, Msg } from './client';
import { startCluster } from './cluster-harness';
import { etcdctl, sleep, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

const POINTS = ['after-persist', 'after-send', 'after-apply', 'after-advance'];

async function writeUntilDeath(endpoint: string, prefix: string, acks: Map<string, number>, alive: () => boolean): Promise<void> {
  const c = new KvClient(endpoint);
  for (let i = 0; i < 2000 && alive(); i++) {
    try {
      const r = await c.call('Put', { key: Buffer.from(`${prefix}${i}`), value: Buffer.from(`v${i}`) }, 2000);
      acks.set(`${prefix}${i}`, Number((r.header as Msg).revision));
    } catch {
      break;
    }
  }
  c.close();
}

// A single member has no peers, so it never passes 'after-send'.
test.each(POINTS.filter((p) => p !== 'after-send'))('single member crashing at %s loses no acknowledged write', async (point) => {
  const m = await startMember({ env: { ETCD_TS_FAILPOINT: `${point}:40` } });
  const acks = new Map<string, number>();
  await Promise.all([0, 1, 2].map((w) => writeUntilDeath(m.endpoint, `fp/${w}/`, acks, () => m.proc.exitCode === null && m.proc.signalCode === null)));
  await m.exited;
  expect(m.logs.join('')).toContain(`failpoint ${point} reached`);
  await stopMember(m, 'SIGKILL');
  const again = await startMember({ name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort });
  expect(acks.size).toBeGreaterThan(0);
  const c = new KvClient(again.endpoint);
  for (const [k, rev] of acks) {
    const r = await c.call('Range', { key: Buffer.from(k) });
    expect({ k, mod: Number((r.kvs as Msg[])[0]?.mod_revision) }).toEqual({ k, mod: rev });
  }
  c.close();
  await stopMember(again);
}, 60000);

test('a follower crashing at each point rejoins and converges', async () => {
  const c = await startCluster(3);
  const leader = await c.waitLeader();
  const follower = c.slots.find((s) => s !== leader)!;
  for (const point of POINTS) {
    await c.kill(follower);
    follower.member = undefined;
    await c.start(follower);
    // Restart it with the failpoint armed, write until it dies, then restart it clean.
    await c.kill(follower);
    const { startMember: sm } = await import('./harness');
    let m;
    try {
      m = await sm({
        kind: 'ours', name: follower.name, clientPort: follower.clientPort, peerPort: follower.peerPort, dataDir: follower.dataDir,
        extraArgs: ['--initial-cluster', c.initialCluster], env: { ETCD_TS_FAILPOINT: `${point}:5` }, waitReady: false,
      });
    } catch (err) {
      // Catching up on the writes of the previous round can reach the failpoint before the member
      // even listens for clients; that is a crash at the same point.
      expect(String(err)).toContain(`failpoint ${point} reached`);
      follower.member = undefined;
      await c.start(follower);
      continue;
    }
    follower.member = m;
    for (let i = 0; i < 200 && m.proc.exitCode === null && m.proc.signalCode === null; i++) {
      await etcdctl(`127.0.0.1:${leader.clientPort}`, ['put', `${point}/${i}`, 'x']);
    }
    await m.exited;
    expect(m.logs.join('')).toContain(`failpoint ${point} reached`);
    follower.member = undefined;
    await c.start(follower);
  }
  expect((await etcdctl(`127.0.0.1:${leader.clientPort}`, ['put', 'final', 'yes'])).code).toBe(0);
  const deadline = Date.now() + 20000;
  let got = '';
  while (Date.now() < deadline && got !== 'yes') {
    got = (await etcdctl(`127.0.0.1:${follower.clientPort}`, ['get', 'final', '--print-value-only', '--consistency=s'])).stdout.trim();
    if (got !== 'yes') await sleep(200);
  }
  expect(got).toBe('yes');
  const a = await etcdctl(`127.0.0.1:${leader.clientPort}`, ['get', '', '--prefix', '--keys-only', '--consistency=s']);
  const b = await etcdctl(`127.0.0.1:${follower.clientPort}`, ['get', '', '--prefix', '--keys-only', '--consistency=s']);
  expect(b.stdout).toBe(a.stdout);
}, 150000);
