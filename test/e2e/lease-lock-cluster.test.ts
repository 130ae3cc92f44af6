/**
 * Leases, locks and elections on a 3-member cluster of ours: an expired lease's keys go at one
 * revision on every member; locks and elections taken through different members (the services,
 * client-side locking, `etcdctl lock` and `etcdctl elect`) exclude each other; `etcdctl lease`
 * commands sent to followers act on every member; a lease kept alive through the survivors outlives
 * a leader kill.
 */
import { Cluster, Slot, startCluster } from './cluster-harness';
import { ClientMutex, Clients, CtlProcess, KeepAliveLoop, Msg, WatchCollector, prefixEnd } from './concurrency-client';
import { RunResult, etcdctl, sleep, stopAll } from './harness';

afterAll(stopAll);

let c: Cluster;
const ep = (s: Slot): string => `127.0.0.1:${s.clientPort}`;

beforeAll(async () => {
  c = await startCluster(3);
}, 60000);

/** A serializable read of `prefix` on one member at `rev` (0: current), once that member has reached `atLeast`. */
async function localRead(cl: Clients, prefix: string, rev: number, atLeast: number): Promise<{ revision: number; kvs: Msg[] }> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const now = await cl.call(cl.kv, 'Range', { key: Buffer.from(prefix), range_end: prefixEnd(prefix), serializable: true });
    if (Number((now.header as Msg).revision) >= atLeast) break;
    if (Date.now() > deadline) throw new Error(`${cl.endpoint} never reached revision ${atLeast}`);
    await sleep(100);
  }
  const r = await cl.call(cl.kv, 'Range', { key: Buffer.from(prefix), range_end: prefixEnd(prefix), serializable: true, revision: rev });
  return { revision: Number((r.header as Msg).revision), kvs: r.kvs as Msg[] };
}

test('a revoke reports the revision of its deletes, even when puts are applied in the same batch', async () => {
  const leader = await c.waitLeader();
  const cl = new Clients(ep(leader));
  try {
    for (let round = 0; round < 5; round++) {
      const lease = await cl.grant(3600);
      const start = await cl.put(`rv/${round}/k`, 'leased', lease);
      const w = new WatchCollector(cl, `rv/${round}/k`, Buffer.alloc(0), start + 1);
      // The revoke and the puts leave together, so the leader applies them in one batch.
      const revoke = cl.call(cl.lease, 'LeaseRevoke', { ID: lease });
      const puts = Array.from({ length: 30 }, (_, i) => cl.put(`rv/${round}/p${i}`, 'x'));
      const [r] = await Promise.all([revoke, ...puts]);
      await w.until((ev) => ev.length >= 1, 10000);
      w.close();
      expect(w.events[0]!.type).toBe('DELETE');
      expect(Number(((r as Msg).header as Msg).revision)).toBe(w.events[0]!.modRevision);
    }
  } finally {
    cl.close();
  }
});

test('an expired lease deletes its keys at one revision, the same on every member', async () => {
  const leader = await c.waitLeader();
  const followers = c.slots.filter((s) => s !== leader);
  const writer = new Clients(ep(followers[0]!));
  const lease = await writer.grant(2);
  let last = 0;
  for (let i = 0; i < 5; i++) last = await writer.put(`exp/k${i}`, `v${i}`, lease);
  last = await writer.put('exp/keep', 'no lease');
  const watcher = new Clients(ep(followers[1]!));
  const w = new WatchCollector(watcher, 'exp/', prefixEnd('exp/'), last + 1);
  await w.until((ev) => ev.length >= 5, 15000);
  await sleep(300); // nothing else may follow
  w.close();
  expect(w.events.every((e) => e.type === 'DELETE')).toBe(true);
  expect(w.events.map((e) => e.key).sort()).toEqual(['exp/k0', 'exp/k1', 'exp/k2', 'exp/k3', 'exp/k4']);
  const revs = new Set(w.events.map((e) => e.modRevision));
  expect(revs.size).toBe(1);
  const R = [...revs][0]!;
  expect(R).toBe(last + 1);

  const before: string[] = [];
  for (const s of c.slots) {
    const cl = new Clients(ep(s));
    const at = await localRead(cl, 'exp/', R - 1, R);
    const after = await localRead(cl, 'exp/', R, R);
    expect(at.kvs.map((kv) => (kv.key as Buffer).toString())).toEqual(['exp/k0', 'exp/k1', 'exp/k2', 'exp/k3', 'exp/k4', 'exp/keep']);
    expect(after.kvs.map((kv) => (kv.key as Buffer).toString())).toEqual(['exp/keep']);
    before.push(JSON.stringify(at.kvs));
    cl.close();
  }
  expect(new Set(before).size).toBe(1);
  writer.close();
  watcher.close();
}, 40000);

test('locks and elections through different members exclude each other (services, client-side, etcdctl)', async () => {
  const [a, b, d] = c.slots as [Slot, Slot, Slot];
  // Contention across members: two clients per member, half through the Lock service.
  const workers = c.slots.flatMap((s, i) => [0, 1].map((j) => ({ endpoint: ep(s), clientSide: (i + j) % 2 === 0 })));
  await Promise.all(
    workers.map(async ({ endpoint, clientSide }) => {
      const cl = new Clients(endpoint);
      const lease = await cl.grant(60);
      const mutex = new ClientMutex(cl, 'ccount', lease);
      for (let r = 0; r < 10; r++) {
        const key = clientSide ? await mutex.lock() : ((await cl.call(cl.lock, 'Lock', { name: Buffer.from('ccount'), lease }, 30000)).key as Buffer);
        const n = Number((await cl.get('ccounter')) || '0');
        await cl.put('ccounter', String(n + 1));
        if (clientSide) await mutex.unlock();
        else await cl.call(cl.lock, 'Unlock', { key });
      }
      await cl.call(cl.lease, 'LeaseRevoke', { ID: lease });
      cl.close();
    }),
  );
  const ca = new Clients(ep(a));
  expect(await ca.get('ccounter')).toBe('60');

  // etcdctl lock (through member b) waits for a lock held through member a's Lock service.
  const lease = await ca.grant(60);
  const held = await ca.call(ca.lock, 'Lock', { name: Buffer.from('clock'), lease });
  let finished = false;
  const ctl = etcdctl(ep(b), ['lock', 'clock', 'echo', 'got-it']).then((r) => {
    finished = true;
    return r;
  });
  await sleep(1000);
  expect(finished).toBe(false);
  await ca.call(ca.lock, 'Unlock', { key: held.key });
  expect((await ctl).stdout).toBe('got-it\n');

  // etcdctl elect through b leads; a Campaign through a waits; etcdctl elect -l through d sees both.
  const observer = new CtlProcess(ep(d), ['elect', '-l', 'celect']);
  const ctlLeader = new CtlProcess(ep(b), ['elect', 'celect', 'p-etcdctl']);
  await ctlLeader.waitOutput(/^celect\/[0-9a-f]+\np-etcdctl\n$/);
  let won = false;
  const campaign = ca.call(ca.election, 'Campaign', { name: Buffer.from('celect'), lease, value: Buffer.from('p-grpc') }, 20000).then((r) => {
    won = true;
    return r;
  });
  await sleep(1000);
  expect(won).toBe(false);
  await ctlLeader.stop('SIGINT');
  await campaign;
  const cd = new Clients(ep(d));
  const now = await cd.call(cd.election, 'Leader', { name: Buffer.from('celect') });
  expect(((now.kv as Msg).value as Buffer).toString()).toBe('p-grpc');
  await observer.waitOutput(/p-etcdctl\n[^\n]+\np-grpc\n$/);
  await observer.stop('SIGINT');
  ca.close();
  cd.close();
}, 60000);

/** Runs etcdctl against `s` until `pred` holds for its result (at most 10 s); returns the last result. */
async function ctlUntil(s: Slot, args: string[], pred: (r: RunResult) => boolean): Promise<RunResult> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const r = await etcdctl(ep(s), args);
    if (pred(r) || Date.now() > deadline) return r;
    await sleep(100);
  }
}

test('etcdctl lease grant, keep-alive --once, timetolive --keys, list and revoke through followers act on every member', async () => {
  const leader = await c.waitLeader();
  const [f1, f2] = c.slots.filter((s) => s !== leader) as [Slot, Slot];
  const all = [leader, f1, f2];

  const granted = await etcdctl(ep(f1), ['lease', 'grant', '30']);
  expect(granted.code).toBe(0);
  const m = /^lease ([0-9a-f]{16}) granted with TTL\(30s\)\n$/.exec(granted.stdout);
  expect(m).not.toBeNull();
  const id = m![1]!;
  // Keys attached through the other follower and through the first one.
  expect((await etcdctl(ep(f2), ['put', '--lease', id, 'll/a', '1'])).stdout).toBe('OK\n');
  expect((await etcdctl(ep(f1), ['put', '--lease', id, 'll/b', '2'])).stdout).toBe('OK\n');
  expect((await etcdctl(ep(f2), ['put', 'll/keep', '3'])).stdout).toBe('OK\n');

  // Every member knows the lease and its keys.
  const keysLine = new RegExp(`^lease ${id} granted with TTL\\(30s\\), remaining\\((\\d+)s\\), attached keys\\(\\[(ll/a ll/b|ll/b ll/a)\\]\\)\n$`);
  for (const s of all) {
    expect((await ctlUntil(s, ['lease', 'list'], (r) => r.stdout.includes(`${id}\n`))).stdout).toMatch(new RegExp(`^found \\d+ leases\n(.*\n)*${id}\n`));
    expect((await ctlUntil(s, ['lease', 'timetolive', id, '--keys'], (r) => keysLine.test(r.stdout))).stdout).toMatch(keysLine);
  }

  // A keep-alive through a follower renews the lease the leader counts down.
  await sleep(3000);
  const before = Number(keysLine.exec((await etcdctl(ep(leader), ['lease', 'timetolive', id, '--keys'])).stdout)![1]);
  expect(before).toBeLessThanOrEqual(27);
  expect((await etcdctl(ep(f2), ['lease', 'keep-alive', '--once', id])).stdout).toBe(`lease ${id} keepalived with TTL(30)\n`);
  for (const s of all) {
    const r = await etcdctl(ep(s), ['lease', 'timetolive', id, '--keys']);
    expect(r.stdout).toMatch(keysLine);
    expect(Number(keysLine.exec(r.stdout)![1])).toBeGreaterThanOrEqual(29);
  }

  // Revoked through the first follower: the lease and both its keys go on every member.
  expect((await etcdctl(ep(f1), ['lease', 'revoke', id])).stdout).toBe(`lease ${id} revoked\n`);
  for (const s of all) {
    const keys = await ctlUntil(s, ['get', 'll/', '--prefix', '--keys-only', '--consistency=s'], (r) => r.stdout === 'll/keep\n\n');
    expect(keys.stdout).toBe('ll/keep\n\n');
    expect((await etcdctl(ep(s), ['lease', 'timetolive', id])).stdout).toBe(`lease ${id} already expired\n`);
    expect((await ctlUntil(s, ['lease', 'list'], (r) => !r.stdout.includes(id))).stdout).not.toContain(id);
  }
  // Revoking it again, through the other follower, finds nothing.
  const again = await etcdctl(ep(f2), ['lease', 'revoke', id]);
  expect(again.code).not.toBe(0);
  expect(again.stderr).toContain('etcdserver: requested lease not found');
}, 60000);

test('a lease kept alive through the survivors outlives a leader kill', async () => {
  const leader = await c.waitLeader();
  const survivors = c.slots.filter((s) => s !== leader);
  const cl = new Clients(ep(survivors[0]!));
  const lease = await cl.grant(3);
  await cl.put('alive', 'yes', lease);
  const loop = new KeepAliveLoop(survivors.map(ep), lease, 500);
  await sleep(1000);
  await c.kill(leader);
  const killedAt = loop.ttls.length;
  await sleep(10000);
  expect(loop.ttls.length).toBeGreaterThan(killedAt); // keep-alives went on being answered
  expect(loop.ttls.slice(killedAt).filter((t) => t === 3).length).toBeGreaterThan(3);
  let value = '';
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    try {
      value = await cl.get('alive');
      break;
    } catch {
      await sleep(200);
    }
  }
  expect(value).toBe('yes');
  // Without keep-alives the same lease does expire: the loop was what kept it.
  await loop.stop();
  const gone = Date.now() + 15000;
  while ((await cl.get('alive', true)) !== '') {
    if (Date.now() > gone) throw new Error('the lease never expired after keep-alives stopped');
    await sleep(200);
  }
  cl.close();
}, 60000);
