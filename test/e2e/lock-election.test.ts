/**
 * The Lock and Election services on one member: the same calls answer as etcd 3.4.23 answers them
 * (compared response by response), mutual exclusion under contention (through the Lock service
 * alone, and mixed with client-side locking as `etcdctl lock` does it), `etcdctl lock` / `etcdctl
 * elect` against the services, lock waiters served in request order, leader failover when a
 * leader's lease runs out (also with campaigners in their own processes, killed with SIGKILL), and
 * a waiter whose lease expired while it queued.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { CallFailure, ClientMutex, Clients, CtlProcess, KeepAliveLoop, Msg, prefixEnd } from './concurrency-client';
import { Member, ROOT, etcdctl, freePort, sleep, startMember, stopAll, stopMember } from './harness';

/** Campaigner processes (test/e2e/fixtures/campaigner.js) still running. */
const campaigners = new Set<Campaigner>();

afterAll(async () => {
  for (const p of [...campaigners]) await p.kill();
  await stopAll();
});

/** One campaigner process: its lease (hex) once granted, and when it reported leading. */
class Campaigner {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  leaderAt: number | undefined;
  readonly exited: Promise<void>;

  constructor(endpoint: string, name: string, readonly proposal: string, ttl: number) {
    const script = path.join(ROOT, 'test', 'e2e', 'fixtures', 'campaigner.js');
    this.proc = spawn(process.execPath, [script, endpoint, name, proposal, String(ttl)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      if (this.leaderAt === undefined && /^leader /m.test(this.stdout)) this.leaderAt = Date.now();
    });
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', () => resolve()));
    campaigners.add(this);
  }

  /** Waits until stdout matches `re`; resolves with the match (throws with the output after `timeoutMs`). */
  async waitOutput(re: RegExp, timeoutMs = 10000): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.stdout);
      if (m !== null) return m;
      if (Date.now() > deadline || this.proc.exitCode !== null) {
        throw new Error(`campaigner ${this.proposal} never printed ${String(re)}:\n${this.stdout}\n${this.stderr}`);
      }
      await sleep(50);
    }
  }

  /** kill -9 and wait for the exit. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
    campaigners.delete(this);
  }
}

type Outcome = { ok: Msg } | { err: CallFailure };

/** Renders an outcome as JSON with bytes as text and lease ids replaced by their order of appearance. */
function render(o: Outcome | Msg[], leases: Map<string, string>): string {
  const text = JSON.stringify(o, (_k, v: unknown) => {
    if (typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer') {
      return Buffer.from((v as { data: number[] }).data).toString();
    }
    return v;
  });
  let out = text;
  for (const [dec, label] of leases) {
    out = out.split(dec).join(label).split(BigInt(dec).toString(16)).join(label);
  }
  // A call that outlives its deadline ends in one of two ways, by timing alone: the client's timer
  // fires first (DEADLINE_EXCEEDED with a text naming timings), or the server's copy of the
  // deadline does and it answers UNKNOWN "context deadline exceeded". Both mean the same here.
  return out
    .replace(/"code":4,"details":"Deadline exceeded[^"]*"/g, '"deadline":true')
    .replace(/"code":2,"details":"context deadline exceeded"/g, '"deadline":true');
}

function bytes(s: string): Buffer {
  return Buffer.from(s);
}

/** One scripted session of Lock and Election calls; returns every outcome and the observed leaders. */
async function session(m: Member): Promise<{ steps: [string, Outcome][]; observed: Msg[]; leases: Map<string, string> }> {
  const c = new Clients(m.endpoint);
  const steps: [string, Outcome][] = [];
  const leases = new Map<string, string>();
  const note = (id: string): void => {
    if (id !== '0' && !leases.has(id)) leases.set(id, `LEASE${leases.size}`);
  };
  const step = async (label: string, client: 'lock' | 'election' | 'kv' | 'lease', method: string, req: Msg, deadlineMs = 5000): Promise<Msg | undefined> => {
    const o = await c.attempt(c[client], method, req, deadlineMs);
    if ('ok' in o) {
      const r = o.ok;
      if (typeof r.ID === 'string') note(r.ID);
      const leader = r.leader as Msg | null | undefined;
      if (leader !== null && leader !== undefined) note(leader.lease as string);
      const kv = r.kv as Msg | null | undefined;
      if (kv !== null && kv !== undefined) note(kv.lease as string);
      // A lease the server granted itself (lease 0) shows only in the key it returns.
      if (r.key instanceof Buffer) note(BigInt(`0x${r.key.toString().split('/').pop()!}`).toString());
    }
    steps.push([label, o]);
    return 'ok' in o ? o.ok : undefined;
  };
  const observed: Msg[] = [];
  const obs = (c.election as unknown as { Observe(r: Msg): NodeJS.EventEmitter & { cancel(): void } }).Observe({ name: bytes('O') });
  obs.on('data', (r: Msg) => observed.push(r));
  obs.on('error', () => undefined);
  try {
    const a = (await step('grant A', 'lease', 'LeaseGrant', { TTL: 30 }))!.ID as string;
    const b = (await step('grant B', 'lease', 'LeaseGrant', { TTL: 30 }))!.ID as string;
    await step('lock, unknown lease', 'lock', 'Lock', { name: bytes('L'), lease: '12345' });
    const held = await step('lock', 'lock', 'Lock', { name: bytes('L'), lease: a });
    await step('lock again, same lease', 'lock', 'Lock', { name: bytes('L'), lease: a });
    await step('lock held by another: deadline', 'lock', 'Lock', { name: bytes('L'), lease: b }, 1000);
    await sleep(300);
    await step('the waiter withdrew its key', 'kv', 'Range', { key: bytes('L/'), range_end: bytes('L0') });
    await step('lock with lease 0', 'lock', 'Lock', { name: bytes('Z'), lease: '0' });
    await step('unlock', 'lock', 'Unlock', { key: held!.key });
    await step('unlock missing key', 'lock', 'Unlock', { key: bytes('nokey') });
    await step('unlock empty key', 'lock', 'Unlock', {});
    await step('lock empty name', 'lock', 'Lock', { lease: a });
    await step('leader, none', 'election', 'Leader', { name: bytes('E') });
    await step('campaign, unknown lease', 'election', 'Campaign', { name: bytes('E'), lease: '999', value: bytes('v') });
    const won = await step('campaign', 'election', 'Campaign', { name: bytes('E'), lease: a, value: bytes('v1') });
    const leader = won!.leader as Msg;
    await step('campaign again, new value', 'election', 'Campaign', { name: bytes('E'), lease: a, value: bytes('v1b') });
    await step('leader', 'election', 'Leader', { name: bytes('E') });
    await step('proclaim', 'election', 'Proclaim', { leader, value: bytes('v2') });
    await step('proclaim, wrong rev', 'election', 'Proclaim', { leader: { ...leader, rev: '1' }, value: bytes('v3') });
    await step('proclaim, no leader field', 'election', 'Proclaim', { value: bytes('v3') });
    await step('proclaim, empty key', 'election', 'Proclaim', { leader: { ...leader, key: Buffer.alloc(0) }, value: bytes('v3') });
    await step('resign, no leader field', 'election', 'Resign', {});
    await step('resign, wrong rev', 'election', 'Resign', { leader: { ...leader, rev: '1' } });
    await step('campaign behind a leader: deadline', 'election', 'Campaign', { name: bytes('E'), lease: b, value: bytes('w') }, 1000);
    await sleep(300);
    await step('the campaigner resigned', 'kv', 'Range', { key: bytes('E/'), range_end: bytes('E0') });
    await step('resign', 'election', 'Resign', { leader });
    await step('leader after resign', 'election', 'Leader', { name: bytes('E') });
    await step('campaign with lease 0', 'election', 'Campaign', { name: bytes('F'), value: bytes('x') });
    await step('leader of the empty name', 'election', 'Leader', {});
    // Observe: the first campaigner, its new value, then the next leader after it resigns.
    const o1 = await step('observed campaign 1', 'election', 'Campaign', { name: bytes('O'), lease: a, value: bytes('one') });
    await sleep(200);
    const second = c.call(c.election, 'Campaign', { name: bytes('O'), lease: b, value: bytes('two') });
    await sleep(200);
    await step('observed proclaim', 'election', 'Proclaim', { leader: o1!.leader, value: bytes('one-b') });
    await sleep(200);
    await step('observed resign', 'election', 'Resign', { leader: o1!.leader });
    steps.push(['observed campaign 2', { ok: await second }]);
    await sleep(300);
  } finally {
    obs.cancel();
    c.close();
  }
  return { steps, observed, leases };
}

test('Lock and Election answer every call as etcd 3.4.23 does', async () => {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const run = async (kind: 'ours' | 'etcd'): Promise<{ steps: [string, string][]; observed: string }> => {
    const m = await startMember({ kind, name: 'locks', clientPort, peerPort });
    try {
      const s = await session(m);
      return { steps: s.steps.map(([l, o]) => [l, render(o, s.leases)]), observed: render(s.observed, s.leases) };
    } finally {
      await stopMember(m);
    }
  };
  const theirs = await run('etcd');
  const ours = await run('ours');
  // Anchors, so two servers failing alike cannot pass.
  const byLabel = new Map(ours.steps);
  expect(byLabel.get('lock, unknown lease')).toBe('{"err":{"code":2,"details":"etcdserver: requested lease not found"}}');
  expect(byLabel.get('leader, none')).toBe('{"err":{"code":2,"details":"election: no leader"}}');
  expect(byLabel.get('proclaim, wrong rev')).toBe('{"err":{"code":2,"details":"election: not leader"}}');
  expect(byLabel.get('the waiter withdrew its key')).toContain('"count":"1"');
  expect(ours.observed).toContain('"value":"one-b"');
  expect(ours.steps.length).toBe(theirs.steps.length);
  for (let i = 0; i < theirs.steps.length; i++) expect(ours.steps[i]).toEqual(theirs.steps[i]);
  expect(ours.observed).toBe(theirs.observed);
}, 60000);

describe('one member of ours', () => {
  let m: Member;
  beforeAll(async () => {
    m = await startMember({ kind: 'ours' });
  });

  /** `workers` clients each add 1 to a counter `rounds` times under the lock, reading then writing. */
  async function countUnderLock(name: string, counter: string, workers: number, rounds: number, clientSide: (i: number) => boolean): Promise<void> {
    const jobs = Array.from({ length: workers }, async (_, i) => {
      const c = new Clients(m.endpoint);
      const lease = await c.grant(120);
      const mutex = new ClientMutex(c, name, lease);
      try {
        for (let r = 0; r < rounds; r++) {
          let key: Buffer;
          if (clientSide(i)) key = await mutex.lock();
          else key = (await c.call(c.lock, 'Lock', { name: Buffer.from(name), lease }, 60000)).key as Buffer;
          const n = Number((await c.get(counter)) || '0');
          await c.put(counter, String(n + 1));
          if (clientSide(i)) await mutex.unlock();
          else await c.call(c.lock, 'Unlock', { key });
        }
        await c.call(c.lease, 'LeaseRevoke', { ID: lease });
      } finally {
        c.close();
      }
    });
    await Promise.all(jobs);
  }

  test('20 clients × 50 increments under the Lock service lose nothing', async () => {
    await countUnderLock('count-lock', 'counter-a', 20, 50, () => false);
    const c = new Clients(m.endpoint);
    expect(await c.get('counter-a')).toBe('1000');
    c.close();
  }, 90000);

  test('the Lock service and client-side locking exclude each other: 10 + 10 clients × 50 increments', async () => {
    await countUnderLock('count-mixed', 'counter-b', 20, 50, (i) => i % 2 === 0);
    const c = new Clients(m.endpoint);
    expect(await c.get('counter-b')).toBe('1000');
    c.close();
  }, 90000);

  test('etcdctl lock waits for a lock held through the Lock service, and the other way round', async () => {
    const c = new Clients(m.endpoint);
    const lease = await c.grant(60);
    const held = await c.call(c.lock, 'Lock', { name: Buffer.from('shared'), lease });
    const ctl = etcdctl(m, ['lock', 'shared', 'echo', 'got-it']);
    let finished = false;
    void ctl.then(() => (finished = true));
    await sleep(1000);
    expect(finished).toBe(false);
    await c.call(c.lock, 'Unlock', { key: held.key });
    const r = await ctl;
    expect(r.stdout).toBe('got-it\n');

    // etcdctl holds it (printing its key), the Lock service waits until etcdctl lets go.
    const holder = new CtlProcess(m.endpoint, ['lock', 'shared']);
    await holder.waitOutput(/^shared\/[0-9a-f]+\n/);
    let got = false;
    const waiter = c.call(c.lock, 'Lock', { name: Buffer.from('shared'), lease }, 20000).then((x) => {
      got = true;
      return x;
    });
    await sleep(1000);
    expect(got).toBe(false);
    await holder.stop('SIGINT');
    const w = await waiter;
    expect((w.key as Buffer).toString()).toBe(`shared/${BigInt(lease).toString(16)}`);
    c.close();
  }, 30000);

  test('etcdctl elect competes with Campaign; elect -l and Observe follow the leader', async () => {
    const c = new Clients(m.endpoint);
    const lease = await c.grant(60);
    const observer = new CtlProcess(m.endpoint, ['elect', '-l', 'vote']);
    const ctlLeader = new CtlProcess(m.endpoint, ['elect', 'vote', 'from-etcdctl']);
    await ctlLeader.waitOutput(/^vote\/[0-9a-f]+\nfrom-etcdctl\n$/);
    const leader = await c.call(c.election, 'Leader', { name: Buffer.from('vote') });
    expect(((leader.kv as Msg).value as Buffer).toString()).toBe('from-etcdctl');
    let won = false;
    const campaign = c.call(c.election, 'Campaign', { name: Buffer.from('vote'), lease, value: Buffer.from('from-grpc') }, 20000).then((x) => {
      won = true;
      return x;
    });
    await sleep(1000);
    expect(won).toBe(false);
    await ctlLeader.stop('SIGINT');
    const res = await campaign;
    expect(((res.leader as Msg).key as Buffer).toString()).toBe(`vote/${BigInt(lease).toString(16)}`);
    await c.call(c.election, 'Proclaim', { leader: res.leader, value: Buffer.from('proclaimed') });
    await observer.waitOutput(/from-etcdctl\n[^\n]+\nfrom-grpc\n[^\n]+\nproclaimed\n$/);
    await observer.stop('SIGINT');
    c.close();
  }, 30000);

  test('when the leader stops keeping its lease alive, the next campaigner leads; Observe reports each change in order', async () => {
    const c = new Clients(m.endpoint);
    const observed: string[] = [];
    const obs = (c.election as unknown as { Observe(r: Msg): NodeJS.EventEmitter & { cancel(): void } }).Observe({ name: Buffer.from('failover') });
    obs.on('data', (r: Msg) => observed.push(((r.kv as Msg).value as Buffer).toString()));
    obs.on('error', () => undefined);
    const leases: string[] = [];
    const loops: KeepAliveLoop[] = [];
    for (let i = 0; i < 3; i++) {
      leases.push(await c.grant(2));
      loops.push(new KeepAliveLoop([m.endpoint], leases[i]!, 500));
    }
    const campaigns: Promise<Msg>[] = [];
    const wonAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      campaigns.push(
        c.call(c.election, 'Campaign', { name: Buffer.from('failover'), lease: leases[i]!, value: Buffer.from(`leader-${i}`) }, 30000).then((r) => {
          wonAt[i] = Date.now();
          return r;
        }),
      );
      await sleep(200); // campaign in order 0, 1, 2
    }
    const first = await campaigns[0]!;
    await sleep(2500);
    expect(wonAt[1]).toBeUndefined(); // leases kept alive: nobody else leads
    const killed = Date.now();
    await loops[0]!.stop(); // campaigner 0 "dies"
    await campaigns[1];
    expect(wonAt[1]! - killed).toBeGreaterThan(1000); // only once its lease has run out
    expect(wonAt[2]).toBeUndefined();
    const leader = await c.call(c.election, 'Leader', { name: Buffer.from('failover') });
    expect(((leader.kv as Msg).value as Buffer).toString()).toBe('leader-1');
    // A Proclaim by the deposed leader fails.
    const stale = await c.attempt(c.election, 'Proclaim', { leader: first.leader, value: Buffer.from('stale') });
    expect(stale).toEqual({ err: { code: 2, details: 'election: not leader' } });
    await loops[1]!.stop();
    const third = await campaigns[2]!;
    await c.call(c.election, 'Proclaim', { leader: third.leader, value: Buffer.from('leader-2b') });
    await sleep(300);
    expect(observed).toEqual(['leader-0', 'leader-1', 'leader-2', 'leader-2b']);
    await loops[2]!.stop();
    obs.cancel();
    c.close();
  }, 40000);

  test('lock waiters obtain the lock one at a time, in the order they asked for it', async () => {
    const c = new Clients(m.endpoint);
    const name = 'fair';
    const holderLease = await c.grant(60);
    const held = await c.call(c.lock, 'Lock', { name: Buffer.from(name), lease: holderLease });
    const waiters = Array.from({ length: 5 }, () => new Clients(m.endpoint));
    const leases: string[] = [];
    const order: number[] = [];
    let holding = 0;
    let overlaps = 0;
    const done: Promise<void>[] = [];
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      const lease = await w.grant(60);
      leases.push(lease);
      done.push(
        w.call(w.lock, 'Lock', { name: Buffer.from(name), lease }, 30000).then(async (r) => {
          if (++holding > 1) overlaps++;
          order.push(i);
          expect((r.key as Buffer).toString()).toBe(`${name}/${BigInt(lease).toString(16)}`);
          await sleep(20);
          holding--;
          await w.call(w.lock, 'Unlock', { key: r.key });
        }),
      );
      // The next waiter asks only once this one's key exists, so the create revisions give the order.
      const key = Buffer.from(`${name}/${BigInt(lease).toString(16)}`);
      const deadline = Date.now() + 10000;
      while ((await c.call(c.kv, 'Range', { key, count_only: true })).count !== '1') {
        if (Date.now() > deadline) throw new Error(`waiter ${i} never queued`);
        await sleep(20);
      }
    }
    const queued = await c.call(c.kv, 'Range', { key: Buffer.from(`${name}/`), range_end: prefixEnd(`${name}/`), sort_target: 1, sort_order: 1 });
    expect((queued.kvs as Msg[]).map((kv) => (kv.key as Buffer).toString())).toEqual([
      (held.key as Buffer).toString(),
      ...leases.map((l) => `${name}/${BigInt(l).toString(16)}`),
    ]);
    await sleep(500);
    expect(order).toEqual([]); // all still waiting behind the holder
    await c.call(c.lock, 'Unlock', { key: held.key });
    await Promise.all(done);
    expect(order).toEqual([0, 1, 2, 3, 4]);
    expect(overlaps).toBe(0);
    for (const l of [holderLease, ...leases]) await c.call(c.lease, 'LeaseRevoke', { ID: l });
    for (const w of waiters) w.close();
    c.close();
  }, 30000);

  test('campaigners in their own processes: kill -9 the leader, the next leads once its lease expires; Observe and elect -l report each leader in order', async () => {
    const c = new Clients(m.endpoint);
    const name = 'proc-elect';
    const observed: string[] = [];
    const obs = (c.election as unknown as { Observe(r: Msg): NodeJS.EventEmitter & { cancel(): void } }).Observe({ name: Buffer.from(name) });
    obs.on('data', (r: Msg) => observed.push(((r.kv as Msg).value as Buffer).toString()));
    obs.on('error', () => undefined);
    const ctlObserver = new CtlProcess(m.endpoint, ['elect', '-l', name]);
    const procs: Campaigner[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const p = new Campaigner(m.endpoint, name, `campaigner-${i}`, 2);
        procs.push(p);
        const lease = (await p.waitOutput(/^lease ([0-9a-f]+)$/m))[1]!;
        // The next one starts only once this one's key exists: they campaign in order 0, 1, 2.
        const deadline = Date.now() + 10000;
        while ((await c.get(`${name}/${lease}`)) !== `campaigner-${i}`) {
          if (Date.now() > deadline) throw new Error(`campaigner ${i} never campaigned:\n${p.stdout}\n${p.stderr}`);
          await sleep(50);
        }
      }
      const [p0, p1, p2] = procs as [Campaigner, Campaigner, Campaigner];
      await p0.waitOutput(/^leader proc-elect\/[0-9a-f]+ \d+$/m);
      await sleep(3000); // longer than the TTL: the running processes keep their leases alive
      expect(p1.leaderAt).toBeUndefined();
      expect(p2.leaderAt).toBeUndefined();

      const killed = Date.now();
      await p0.kill();
      await p1.waitOutput(/^leader /m, 15000);
      expect(p1.leaderAt! - killed).toBeGreaterThan(1000); // only once the dead leader's lease has run out
      expect(p2.leaderAt).toBeUndefined();
      const leader = await c.call(c.election, 'Leader', { name: Buffer.from(name) });
      expect(((leader.kv as Msg).value as Buffer).toString()).toBe('campaigner-1');

      await p1.kill();
      await p2.waitOutput(/^leader /m, 15000);
      await sleep(300);
      expect(observed).toEqual(['campaigner-0', 'campaigner-1', 'campaigner-2']);
      await ctlObserver.waitOutput(/^[^\n]+\ncampaigner-0\n[^\n]+\ncampaigner-1\n[^\n]+\ncampaigner-2\n$/);
    } finally {
      for (const p of procs) await p.kill();
      await ctlObserver.stop('SIGINT');
      obs.cancel();
      c.close();
    }
  }, 60000);

  test('a waiter whose lease expired while it queued gets "mutex: session is expired"', async () => {
    const c = new Clients(m.endpoint);
    const holderLease = await c.grant(60);
    const waiterLease = await c.grant(2);
    const held = await c.call(c.lock, 'Lock', { name: Buffer.from('expiring'), lease: holderLease });
    const waiting = c.attempt(c.lock, 'Lock', { name: Buffer.from('expiring'), lease: waiterLease }, 20000);
    // The waiter's key goes with its lease (2 s, never kept alive).
    const deadline = Date.now() + 10000;
    while (Number((await c.call(c.lease, 'LeaseTimeToLive', { ID: waiterLease })).TTL) !== -1) {
      if (Date.now() > deadline) throw new Error('the waiter lease never expired');
      await sleep(200);
    }
    expect(await c.get(`expiring/${BigInt(waiterLease).toString(16)}`)).toBe('');
    await c.call(c.lock, 'Unlock', { key: held.key });
    expect(await waiting).toEqual({ err: { code: 2, details: 'mutex: session is expired' } });
    c.close();
  }, 30000);
});
