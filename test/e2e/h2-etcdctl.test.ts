/**
 * The server process with its native gRPC engine, driven by grpc-go clients (etcdctl and etcd's
 * benchmark tool): `:authority` given as a URL, responses of several MiB, a request of almost
 * 2 MiB (answered as the real etcd answers it), a watch receiving many events, and many
 * concurrent calls over a few connections.
 */
import { spawn } from 'node:child_process';
import { KvClient } from './client';
import { Member, etcdctl, run, startMember, stopAll } from './harness';

afterAll(stopAll);

const BENCHMARK = '/work/shared/tools/etcd-benchmark';

let ours: Member;

beforeAll(async () => {
  ours = await startMember({ kind: 'ours', extraArgs: ['--experimental-grpc-engine', 'native'] });
}, 60000);

test('etcdctl with an http:// endpoint: endpoint status and health', async () => {
  const url = `http://${ours.endpoint}`;
  const st = await etcdctl(url, ['endpoint', 'status', '-w', 'json']);
  expect(st.stderr).toBe('');
  expect(st.code).toBe(0);
  const parsed = JSON.parse(st.stdout) as { Endpoint: string; Status: { leader: number } }[];
  expect(parsed[0]!.Endpoint).toBe(url);
  const h = await etcdctl(url, ['endpoint', 'health']);
  expect(h.code).toBe(0);
  expect(h.stdout + h.stderr).toContain('is healthy');
}, 30000);

test('values of 1 MiB and a 5 MiB range response reach etcdctl intact', async () => {
  const values: Buffer[] = [];
  for (let i = 0; i < 5; i++) {
    const v = Buffer.alloc(1024 * 1024 + i, 0x61 + i);
    values.push(v);
    const r = await etcdctl(ours, ['put', `big/${i}`], v);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('OK\n');
  }
  const r = await etcdctl(ours, ['get', 'big/', '--prefix', '-w', 'json']);
  expect(r.code).toBe(0);
  const kvs = (JSON.parse(r.stdout) as { kvs: { key: string; value: string }[] }).kvs;
  expect(kvs).toHaveLength(5);
  kvs.forEach((kv, i) => {
    expect(Buffer.from(kv.key, 'base64').toString()).toBe(`big/${i}`);
    expect(Buffer.from(kv.value, 'base64').equals(values[i]!)).toBe(true);
  });
}, 60000);

test('a request just under the gRPC limit is answered as by etcd', async () => {
  const etcd = await startMember({ kind: 'etcd' });
  const value = Buffer.alloc(1.9 * 1024 * 1024, 0x7a);
  const theirs = await etcdctl(etcd, ['put', 'large'], value);
  const mine = await etcdctl(ours, ['put', 'large'], value);
  expect(theirs.code).not.toBe(0);
  expect(mine.code).toBe(theirs.code);
  // The last line is etcdctl's error; the lines before are its client's retry log (with times).
  const last = (s: string): string => s.trim().split('\n').pop() ?? '';
  expect(last(mine.stderr)).toBe(last(theirs.stderr));
  expect(last(mine.stderr)).toContain('request is too large');
}, 60000);

test('a watch receives every event of a burst', async () => {
  const n = 300;
  const watcher = spawn('etcdctl', [`--endpoints=${ours.endpoint}`, 'watch', 'burst/', '--prefix'], { env: { ...process.env, ETCDCTL_API: '3' } });
  let out = '';
  watcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => watcher.on('close', r));
  await new Promise((r) => setTimeout(r, 500));
  const kv = new KvClient(ours.endpoint);
  const puts: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) puts.push(kv.call('Put', { key: Buffer.from(`burst/${String(i).padStart(4, '0')}`), value: Buffer.alloc(2000, 0x78) }));
  await Promise.all(puts);
  kv.close();
  const deadline = Date.now() + 10000;
  const seen = (): number => new Set(out.split('\n').filter((l) => l.startsWith('burst/'))).size;
  while (seen() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  watcher.kill('SIGINT');
  await exited;
  expect(seen()).toBe(n);
}, 60000);

test('many concurrent calls over a few grpc-go connections (etcd benchmark)', async () => {
  const total = 4000;
  const r = await run(BENCHMARK, [`--endpoints=${ours.endpoint}`, '--conns=4', '--clients=200', 'put', '--key-size=8', '--sequential-keys', `--key-space-size=${total}`, `--total=${total}`, '--val-size=64']);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('Requests/sec');
  expect(r.stdout).not.toMatch(/error/i);
  const count = await etcdctl(ours, ['get', '', '--prefix', '--limit=1', '-w', 'json']);
  const c = (JSON.parse(count.stdout) as { count: number }).count;
  expect(c).toBeGreaterThanOrEqual(total);
}, 120000);
