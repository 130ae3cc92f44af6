/**
 * Promoting a learner that has not caught up is refused with etcd's error, whichever member the
 * request reaches (a follower asks the leader, which alone knows the learner's progress); the
 * same commands against the real etcd give the same answers.
 */
import { startCluster } from './cluster-harness';
import { etcdctl, freePort, sleep, stopAll } from './harness';

afterAll(stopAll);

test.each(['etcd', 'ours'] as const)('a learner that never caught up is not promoted, through a follower or the leader (%s)', async (kind) => {
  const c = await startCluster(3, [], kind);
  const leader = await c.waitLeader();
  const follower = c.slots.find((s) => s !== leader)!;
  // A learner that is added but never started has replicated nothing.
  // etcd refuses changes until its members have been connected for a while ("unhealthy cluster").
  const peerUrl = `--peer-urls=http://127.0.0.1:${await freePort()}`;
  let add = await c.ctl(['member', 'add', 'learner', '--learner', peerUrl, '-w', 'json']);
  for (let i = 0; i < 40 && add.stderr.includes('unhealthy cluster'); i++) {
    await sleep(500);
    add = await c.ctl(['member', 'add', 'learner', '--learner', peerUrl, '-w', 'json']);
  }
  expect({ code: add.code, err: add.stderr }).toEqual({ code: 0, err: '' });
  // The 64-bit id is read from the text (JSON numbers lose its low bits).
  const id = BigInt(/"member":\{"ID":(\d+)/.exec(add.stdout)![1]!).toString(16);
  const expected = 'etcdserver: can only promote a learner member which is in sync with leader';
  for (const s of [follower, leader]) {
    const r = await etcdctl(`127.0.0.1:${s.clientPort}`, ['member', 'promote', id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(expected);
  }
  // Still a learner.
  const list = await c.ctl(['member', 'list', '-w', 'json']);
  const learner = /\{"ID":(\d+),"peerURLs":\[[^\]]*\],"isLearner":true\}/.exec(list.stdout);
  expect(learner === null ? undefined : BigInt(learner[1]!).toString(16)).toBe(id);
}, 90000);
