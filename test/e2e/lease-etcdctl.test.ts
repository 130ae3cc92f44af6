/**
 * `etcdctl lease grant|revoke|keep-alive [--once]|timetolive [--keys]|list` against our server and
 * the real etcd 3.4.23 (each fresh, on the same ports with the same member name, so ids and
 * revisions agree): every output is identical once lease ids and the remaining TTL are masked.
 * The same session checks the wire answers etcdctl hides: TTL 0 from a keep-alive of an unknown
 * lease, TTL -1 from time-to-live, a TTL below the minimum raised to 2 s.
 */
import * as grpc from '@grpc/grpc-js';
import { Clients, Msg } from './concurrency-client';
import { Member, RunResult, etcdctl, freePort, requireTool, run, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

/** Lease ids seen so far (decimal) in order of appearance. */
type Ids = string[];

function hex(id: string): string {
  return BigInt(id).toString(16).padStart(16, '0');
}

/** Records the id a `lease grant` printed ("lease <hex> granted with TTL(..)" or JSON "ID"). */
function noteGrant(r: RunResult, ids: Ids): string {
  const text = r.stdout.match(/^lease ([0-9a-f]{16}) granted/);
  // Not JSON.parse: a 64-bit id does not fit a double.
  const id = text !== null ? BigInt(`0x${text[1]!}`).toString() : /"ID":(\d+)/.exec(r.stdout)![1]!;
  ids.push(id);
  return id;
}

/** A command's result with its outputs masked by maskText. */
function masked(r: RunResult, ids: Ids): RunResult {
  const m = (s: string): string => maskText(s, ids);
  return { code: r.code, stdout: m(r.stdout), stderr: m(r.stderr) };
}

/** `s` with lease ids (hex or decimal) as LEASE<n>, remaining TTLs as N, timestamps and client ids masked, JSON key lists sorted. */
function maskText(s: string, ids: Ids): string {
  let out = s;
  ids.forEach((id, i) => {
    out = out.split(hex(id)).join(`LEASE${i}`).split(id).join(`LEASE${i}`);
  });
  return out
    .replace(/remaining\(\d+s\)/g, 'remaining(Ns)')
    .replace(/"ttl":\d+/g, '"ttl":N')
    .replace(/"ts":"[^"]*"/g, '"ts":"T"')
    .replace(/client-[0-9a-f-]{36}/g, 'client-ID')
    .replace(/"keys":\[([^\]]*)\]/g, (_all, list: string) => `"keys":[${list.split(',').sort().join(',')}]`)
    // etcd lists a lease's keys in map order (random): compare them as a set.
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_all, list: string) => `attached keys([${list.split(' ').sort().join(' ')}])`);
}

interface Session {
  outputs: [string, RunResult][];
  wire: Record<string, unknown>;
  /** First output of each command line. */
  raw: Map<string, RunResult>;
}

async function session(m: Member): Promise<Session> {
  const ids: Ids = [];
  const outputs: [string, RunResult][] = [];
  const raw = new Map<string, RunResult>();
  const ctl = async (args: string[]): Promise<RunResult> => {
    const r = await etcdctl(m, args);
    if (args[1] === 'list' && !args.includes('json')) {
      // etcd lists leases in no particular order.
      const [head, ...rest] = r.stdout.trimEnd().split('\n');
      r.stdout = [head, ...rest.sort()].join('\n');
    }
    if (!raw.has(args.join(' '))) raw.set(args.join(' '), r);
    outputs.push([args.join(' '), r]);
    return r;
  };
  const short = noteGrant(await ctl(['lease', 'grant', '1']), ids);
  await ctl(['lease', 'revoke', hex(short)]);
  const long = noteGrant(await ctl(['lease', 'grant', '100', '-w', 'json']), ids);
  const a = noteGrant(await ctl(['lease', 'grant', '60']), ids);
  await ctl(['put', '--lease', hex(a), 'lk1', 'v1']);
  await ctl(['put', '--lease', hex(a), 'lk2', 'v2']);
  for (const extra of [[], ['--keys'], ['--keys', '-w', 'json'], ['-w', 'json']]) await ctl(['lease', 'timetolive', hex(a), ...extra]);
  for (const extra of [[], ['--keys'], ['-w', 'json']]) await ctl(['lease', 'timetolive', '1234', ...extra]);
  await ctl(['lease', 'keep-alive', '--once', hex(a)]);
  await ctl(['lease', 'keep-alive', '--once', hex(a), '-w', 'json']);
  await ctl(['lease', 'keep-alive', '--once', '1234']);
  await ctl(['lease', 'list']);
  await ctl(['lease', 'revoke', hex(a)]);
  await ctl(['lease', 'revoke', hex(a)]);
  await ctl(['lease', 'revoke', '1234']);
  await ctl(['lease', 'timetolive', hex(a)]);
  await ctl(['get', 'lk', '--prefix', '-w', 'json']);
  await ctl(['lease', 'list', '-w', 'json']);
  // The streaming keep-alive prints one line per answer until interrupted.
  const stream = await run('timeout', ['-s', 'INT', '1.5', requireTool('etcdctl'), `--endpoints=${m.endpoint}`, 'lease', 'keep-alive', hex(long)], undefined, {
    ETCDCTL_API: '3',
  });
  outputs.push(['lease keep-alive (interrupted)', { code: 0, stdout: stream.stdout.split('\n')[0]!, stderr: '' }]);

  // What etcdctl turns into messages, on the wire.
  const c = new Clients(m.endpoint);
  const wire: Record<string, unknown> = {};
  try {
    wire.grantTtl1 = Number((await c.call(c.lease, 'LeaseGrant', { TTL: 1 })).TTL);
    wire.keepAliveUnknown = await new Promise<number>((resolve, reject) => {
      const s = (c.lease as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<Msg, Msg> }).LeaseKeepAlive();
      s.on('data', (r: Msg) => {
        resolve(Number(r.TTL));
        s.cancel();
      });
      s.on('error', (e: grpc.ServiceError) => {
        if (e.code !== grpc.status.CANCELLED) reject(e);
      });
      s.write({ ID: '1234' });
    });
    wire.timeToLiveUnknown = Number((await c.call(c.lease, 'LeaseTimeToLive', { ID: '1234' })).TTL);
    wire.revokeUnknown = await c.attempt(c.lease, 'LeaseRevoke', { ID: '1234' });
  } finally {
    c.close();
  }
  return { outputs: outputs.map(([l, r]) => [maskText(l, ids), masked(r, ids)]), wire, raw };
}

test('etcdctl lease commands print the same against ours and etcd 3.4.23', async () => {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const both: Session[] = [];
  for (const kind of ['etcd', 'ours'] as const) {
    const m = await startMember({ kind, name: 'leases', clientPort, peerPort });
    try {
      both.push(await session(m));
    } finally {
      await stopMember(m);
    }
  }
  const [theirs, ours] = both as [Session, Session];
  // Anchors, so two servers failing alike cannot pass.
  expect(ours.raw.get('lease grant 1')!.stdout).toMatch(/^lease [0-9a-f]{16} granted with TTL\(2s\)\n$/);
  expect(ours.wire).toEqual({
    grantTtl1: 2,
    keepAliveUnknown: 0,
    timeToLiveUnknown: -1,
    revokeUnknown: { err: { code: grpc.status.NOT_FOUND, details: 'etcdserver: requested lease not found' } },
  });
  const ttl = ours.raw.get('lease timetolive 1234')!;
  expect(ttl.stdout).toBe('lease 0000000000001234 already expired\n');
  const revoke = [...ours.raw.entries()].filter(([k]) => k === 'lease revoke 1234')[0]![1];
  expect(revoke.stderr).toContain('Error: failed to revoke lease (etcdserver: requested lease not found)');
  const remaining = [...ours.raw.entries()].find(([k]) => k.startsWith('lease timetolive') && !k.includes('1234') && !k.includes('-w'))![1];
  const left = Number(/remaining\((\d+)s\)/.exec(remaining.stdout)![1]);
  expect(left).toBeGreaterThanOrEqual(55);
  expect(left).toBeLessThanOrEqual(60);
  expect(ours.outputs.find(([l]) => l === 'lease keep-alive (interrupted)')![1].stdout).toBe('lease LEASE1 keepalived with TTL(100)');

  expect(ours.outputs.length).toBe(theirs.outputs.length);
  for (let i = 0; i < theirs.outputs.length; i++) expect(ours.outputs[i]).toEqual(theirs.outputs[i]);
  expect(ours.wire).toEqual(theirs.wire);
}, 60000);
