/**
 * A linearizable read waiting on a member when a new leader is elected fails with etcd's
 * retryable "etcdserver: leader changed" (UNAVAILABLE), on our cluster and on the real etcd's
 * alike: the leader is paused (SIGSTOP) while a follower's read waits for its read index.
 */
import { Cluster, startCluster } from './cluster-harness';
import { KvClient, callError } from './client';
import { stopAll } from './harness';

afterAll(stopAll);

async function readAcrossLeaderChange(c: Cluster): Promise<{ code: number; details: string }> {
  const leader = await c.waitLeader();
  const follower = c.slots.find((s) => s !== leader)!;
  const client = new KvClient(`127.0.0.1:${follower.clientPort}`);
  // The connection is up and a read works before the leader goes away.
  await client.call('Range', { key: Buffer.from('k') });
  leader.member!.proc.kill('SIGSTOP');
  try {
    await client.call('Range', { key: Buffer.from('k') }, 20000);
    return { code: 0, details: 'answered' };
  } catch (e) {
    return callError(e);
  } finally {
    leader.member!.proc.kill('SIGCONT');
    client.close();
  }
}

test.each(['etcd', 'ours'] as const)('a read cut off by a leader change fails with "leader changed" (%s)', async (kind) => {
  const c = await startCluster(3, [], kind);
  expect(await readAcrossLeaderChange(c)).toEqual({ code: 14, details: 'etcdserver: leader changed' });
  // The cluster serves reads and writes under its new leader.
  expect((await c.ctl(['put', 'after', 'ok'])).code).toBe(0);
  expect((await c.ctl(['get', 'after', '--print-value-only'])).stdout.trim()).toBe('ok');
}, 90000);
