/**
 * A Kubernetes-style reflector (list at R, then watch from R+1 with prev_kv, reconnecting to another
 * member with start_revision = last seen + 1 when its stream breaks) against a 3-member cluster
 * under concurrent puts, deletes and txns, a compaction, and a leader kill. Every write lands under
 * the watched prefix and bumps the revision once, so the events must cover every revision after R
 * exactly once, in order; the reflector's final view must equal a fresh list.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import { KvClient, Msg } from './client';
import { startCluster } from './cluster-harness';
import { ROOT, etcdctl, sleep, stopAll } from './harness';

afterAll(stopAll);

const def = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
  includeDirs: [path.join(ROOT, 'proto')], keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, grpc.ServiceClientConstructor> };

const PREFIX = '/r/';
const END = '/r0';

interface Seen {
  rev: number;
  type: number;
  key: string;
  value: string;
  hasPrev: boolean;
  version: number;
}

test('list+watch sees every change exactly once, in order, across a leader kill and a compaction', async () => {
  const c = await startCluster(3);
  const eps = c.slots.map((s) => `127.0.0.1:${s.clientPort}`);
  // Some history before the list.
  const kv0 = new KvClient(eps[0]!);
  for (let i = 0; i < 20; i++) await kv0.call('Put', { key: Buffer.from(`${PREFIX}k${i % 7}`), value: Buffer.from(`init${i}`) });
  const list = await kv0.call('Range', { key: Buffer.from(PREFIX), range_end: Buffer.from(END) });
  const listRev = Number((list.header as Msg).revision);
  const view = new Map<string, string>();
  for (const kv of list.kvs as Msg[]) view.set(Buffer.from(kv.key as Buffer).toString(), Buffer.from(kv.value as Buffer).toString());
  kv0.close();

  const seen: Seen[] = [];
  let lastRev = listRev;
  // Watch the leader first: it is the member killed below, so the stream must break and resume.
  const victim = await c.waitLeader();
  let epIndex = c.slots.indexOf(victim); // move on to the next member when the stream breaks
  let stopped = false;
  let reconnects = 0;
  const problems: string[] = [];

  const watchOnce = (): Promise<void> =>
    new Promise((resolve) => {
      const ep = eps[epIndex % eps.length]!;
      const client = new pkg.etcdserverpb.Watch!(ep, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      md.set('hasleader', 'true');
      const stream = (client as unknown as { Watch: (md: grpc.Metadata) => grpc.ClientDuplexStream<Msg, Msg> }).Watch(md);
      const done = (): void => {
        stream.removeAllListeners();
        stream.on('error', () => undefined);
        stream.cancel();
        client.close();
        resolve();
      };
      stream.on('data', (r: Msg) => {
        if (r.canceled === true) {
          problems.push(`watch canceled: ${String(r.cancel_reason)} compact=${String(r.compact_revision)}`);
          done();
          return;
        }
        for (const e of (r.events as Msg[]) ?? []) {
          const kv = e.kv as Msg;
          const rev = Number(kv.mod_revision);
          const key = Buffer.from(kv.key as Buffer).toString();
          const s: Seen = {
            rev,
            type: Number(e.type),
            key,
            value: Buffer.from((kv.value as Buffer) ?? []).toString(),
            hasPrev: e.prev_kv !== null && e.prev_kv !== undefined,
            version: Number(kv.version),
          };
          seen.push(s);
          if (rev < lastRev) problems.push(`event at ${rev} after ${lastRev}`);
          lastRev = rev;
          if (s.type === 0) view.set(key, s.value);
          else view.delete(key);
        }
      });
      stream.on('error', () => done());
      stream.on('end', () => done());
      stream.write({ create_request: { key: Buffer.from(PREFIX), range_end: Buffer.from(END), start_revision: String(lastRev + 1), prev_kv: true } });
      const check = setInterval(() => {
        if (stopped) {
          clearInterval(check);
          done();
        }
      }, 100);
      stream.on('close', () => clearInterval(check));
    });

  const reflector = (async () => {
    while (!stopped) {
      await watchOnce();
      if (stopped) break;
      reconnects++;
      epIndex++;
      await sleep(100);
    }
  })();

  // Writers: puts, deletes and txns from three clients on different members.
  let writing = true;
  const writer = async (w: number): Promise<void> => {
    let i = 0;
    while (writing) {
      const live = c.slots.filter((s) => s.member !== undefined);
      const kv = new KvClient(`127.0.0.1:${live[(w + i) % live.length]!.clientPort}`);
      try {
        const k = Buffer.from(`${PREFIX}k${(w * 13 + i) % 11}`);
        switch (i % 5) {
          case 0:
          case 1:
            await kv.call('Put', { key: k, value: Buffer.from(`w${w}-${i}`) }, 3000);
            break;
          case 2:
            await kv.call('DeleteRange', { key: k }, 3000);
            break;
          case 3:
            await kv.call('Txn', {
              compare: [{ key: k, target: 0, result: 1, version: '0' }],
              success: [
                { request_put: { key: k, value: Buffer.from(`txn${w}-${i}`) } },
                { request_put: { key: Buffer.from(`${PREFIX}t${w}`), value: Buffer.from(`${i}`) } },
              ],
              failure: [{ request_put: { key: k, value: Buffer.from(`created${w}-${i}`) } }],
            }, 3000);
            break;
          default:
            await kv.call('Txn', { success: [{ request_delete_range: { key: Buffer.from(`${PREFIX}k`), range_end: Buffer.from(`${PREFIX}k3`) } }] }, 3000);
        }
      } catch {
        // outcome unknown (leader change): the watch tells what happened
      }
      kv.close();
      i++;
    }
  };
  const writers = [0, 1, 2].map((w) => writer(w));
  await sleep(2500);
  // Compaction behind the reflector.
  const st = await etcdctl(c.endpoints(), ['get', PREFIX, '--prefix', '--limit', '1', '-w', 'json']);
  const cur = Number((JSON.parse(st.stdout) as { header: { revision: number } }).header.revision);
  expect((await c.ctl(['compaction', String(Math.max(listRev + 1, cur - 20))])).code).toBe(0);
  await sleep(1000);
  await c.kill(victim);
  await sleep(4000);
  writing = false;
  await Promise.all(writers);

  // The final revision, read linearizably from a live member.
  const live = c.slots.filter((s) => s.member !== undefined);
  const kv = new KvClient(`127.0.0.1:${live[0]!.clientPort}`);
  const fresh = await kv.call('Range', { key: Buffer.from(PREFIX), range_end: Buffer.from(END) });
  const finalRev = Number((fresh.header as Msg).revision);
  kv.close();
  const deadline = Date.now() + 20000;
  while (lastRev < finalRev && Date.now() < deadline) await sleep(100);
  stopped = true;
  await reflector;

  expect(problems).toEqual([]);
  expect(lastRev).toBe(finalRev);
  // Every revision after the list shows up, once, in order.
  const revs = [...new Set(seen.map((s) => s.rev))];
  const expected = Array.from({ length: finalRev - listRev }, (_v, i) => listRev + 1 + i);
  expect(revs).toEqual(expected);
  // No event repeated.
  const ids = seen.map((s) => `${s.rev}/${s.key}`);
  expect(new Set(ids).size).toBe(ids.length);
  // prev_kv on every event that is not a create.
  for (const s of seen) if (!(s.type === 0 && s.version === 1)) expect({ ev: `${s.rev}/${s.key}`, prev: s.hasPrev }).toEqual({ ev: `${s.rev}/${s.key}`, prev: true });
  // The reflector's view equals a fresh list.
  const want = new Map<string, string>();
  for (const x of fresh.kvs as Msg[]) want.set(Buffer.from(x.key as Buffer).toString(), Buffer.from(x.value as Buffer).toString());
  expect([...view.entries()].sort()).toEqual([...want.entries()].sort());
  expect(seen.length).toBeGreaterThan(100);
  expect(reconnects).toBeGreaterThanOrEqual(1);
}, 120000);

function openWatch(ep: string, key: string, hasLeader: boolean): { events: number[]; errors: { code: number; details: string }[]; close: () => void } {
  const client = new pkg.etcdserverpb.Watch!(ep, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (hasLeader) md.set('hasleader', 'true');
  const stream = (client as unknown as { Watch: (md: grpc.Metadata) => grpc.ClientDuplexStream<Msg, Msg> }).Watch(md);
  const events: number[] = [];
  const errors: { code: number; details: string }[] = [];
  stream.on('data', (r: Msg) => {
    for (const e of (r.events as Msg[]) ?? []) events.push(Number((e.kv as Msg).mod_revision));
  });
  stream.on('error', (e: grpc.ServiceError) => errors.push({ code: e.code, details: e.details }));
  stream.write({ create_request: { key: Buffer.from(key), range_end: Buffer.from(`${key}\xff`) } });
  return {
    events,
    errors,
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

test('a watch on a follower keeps delivering through a leader change', async () => {
  const c = await startCluster(3);
  const leader = await c.waitLeader();
  const follower = c.slots.find((s) => s !== leader)!;
  const w = openWatch(`127.0.0.1:${follower.clientPort}`, 'lc/', true);
  await sleep(300);
  for (let i = 0; i < 5; i++) expect((await c.ctl(['put', `lc/${i}`, 'a'])).code).toBe(0);
  await c.kill(leader);
  for (let i = 5; i < 10; i++) {
    let ok = false;
    for (let t = 0; t < 50 && !ok; t++) ok = (await c.ctl(['put', `lc/${i}`, 'b', '--command-timeout=2s'])).code === 0;
    expect(ok).toBe(true);
  }
  // A put that timed out may still have taken effect before its retry, so the number of puts is
  // read back: every key was only ever put, so its version counts the puts it received.
  const got = await c.ctl(['get', 'lc/', '--prefix', '-w', 'json']);
  expect(got.code).toBe(0);
  const kvs = (JSON.parse(got.stdout) as { kvs: { version: number }[] }).kvs;
  expect(kvs.length).toBe(10);
  const puts = kvs.reduce((n, kv) => n + Number(kv.version), 0);
  const deadline = Date.now() + 10000;
  while (w.events.length < puts && Date.now() < deadline) await sleep(100);
  expect(w.errors).toEqual([]);
  expect(w.events.length).toBe(puts);
  expect(new Set(w.events).size).toBe(puts);
  expect([...w.events].sort((a, b) => a - b)).toEqual(w.events);
  w.close();
}, 90000);

test('a watch stream that requires a leader is canceled with "etcdserver: no leader" when the quorum is gone', async () => {
  const c = await startCluster(3);
  const leader = await c.waitLeader();
  const follower = c.slots.find((s) => s !== leader)!;
  const required = openWatch(`127.0.0.1:${follower.clientPort}`, 'nl/', true);
  const plain = openWatch(`127.0.0.1:${follower.clientPort}`, 'nl/', false);
  await sleep(300);
  for (const s of c.slots) if (s !== follower) await c.kill(s);
  const deadline = Date.now() + 15000;
  while (required.errors.length === 0 && Date.now() < deadline) await sleep(100);
  expect(required.errors).toEqual([{ code: 14, details: 'etcdserver: no leader' }]);
  expect(plain.errors).toEqual([]);
  required.close();
  plain.close();
}, 60000);
