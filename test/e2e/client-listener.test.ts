/**
 * One client port, three kinds of clients, against the server process: etcdctl 3.4 with client
 * URLs as endpoints (its per-member clients send "http://host:port" as :authority, which Node's
 * HTTP/2 stack alone would refuse), a gRPC client library with and without such an authority
 * (many requests on one connection, so both dynamic tables are exercised), and HTTP/1.1.
 * Run `npm run build` first.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as http from 'node:http';
import * as path from 'node:path';
import { Member, ROOT, etcdctl, startMember, stopAll } from './harness';

afterAll(stopAll);

const def = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
  includeDirs: [path.join(ROOT, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
});
const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, grpc.ServiceClientConstructor> };

type Msg = Record<string, unknown>;

/** A KV client; `authority` overrides the :authority it sends. */
function kvClient(m: Member, authority?: string): grpc.Client {
  const Ctor = pkg.etcdserverpb.KV!;
  return new Ctor(m.endpoint, grpc.credentials.createInsecure(), authority === undefined ? {} : { 'grpc.default_authority': authority });
}

function unary(client: grpc.Client, method: string, req: Msg): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, (r: Msg, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => void>)[method]!;
    fn.call(client, req, { deadline: Date.now() + 10000 }, (err, res) => (err !== null ? reject(err) : resolve(res)));
  });
}

interface StatusLine {
  Endpoint: string;
  Status: { header: { cluster_id: number; member_id: number }; version: string };
}

let m: Member;
let url: string;

beforeAll(async () => {
  m = await startMember();
  url = `http://127.0.0.1:${m.clientPort}`;
});

describe('etcdctl with client URLs as endpoints', () => {
  test('endpoint status answers, for the endpoint and with --cluster', async () => {
    const plain = await etcdctl(m, ['endpoint', 'status', '-w', 'json']);
    expect(plain.code).toBe(0);
    const expected = (JSON.parse(plain.stdout) as StatusLine[])[0]!;

    const viaUrl = await etcdctl(url, ['endpoint', 'status', '-w', 'json']);
    expect(viaUrl.stderr).toBe('');
    expect(viaUrl.code).toBe(0);
    const got = JSON.parse(viaUrl.stdout) as StatusLine[];
    expect(got).toHaveLength(1);
    expect(got[0]!.Endpoint).toBe(url);
    expect(got[0]!.Status.header.member_id).toBe(expected.Status.header.member_id);
    expect(got[0]!.Status.header.cluster_id).toBe(expected.Status.header.cluster_id);

    // --cluster reads the member list and dials every advertised client URL verbatim.
    const cluster = await etcdctl(m, ['endpoint', 'status', '--cluster', '-w', 'json']);
    expect(cluster.code).toBe(0);
    const lines = JSON.parse(cluster.stdout) as StatusLine[];
    expect(lines.map((l) => l.Endpoint)).toEqual([url]);
    expect(lines[0]!.Status.header.member_id).toBe(expected.Status.header.member_id);
  });

  test('endpoint health --cluster', async () => {
    const r = await etcdctl(m, ['endpoint', 'health', '--cluster']);
    expect(r.code).toBe(0);
    // etcdctl 3.4 prints the health lines on stderr.
    expect(r.stdout + r.stderr).toContain(`${url} is healthy: successfully committed proposal`);
  });

  test('put and get', async () => {
    expect((await etcdctl(url, ['put', 'url-key', 'url-value'])).stdout).toBe('OK\n');
    const r = await etcdctl(url, ['get', 'url-key']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('url-key\nurl-value\n');
  });
});

describe('a gRPC client library', () => {
  test('with "http://host:port" as authority: many puts and ranges on one connection', async () => {
    const c = kvClient(m, url);
    try {
      for (let i = 0; i < 10; i++) {
        await unary(c, 'Put', { key: Buffer.from(`auth/${i}`), value: Buffer.from(`v${i}`) });
        const r = await unary(c, 'Range', { key: Buffer.from(`auth/${i}`) });
        const kvs = r.kvs as { value: Buffer }[];
        expect(kvs.map((kv) => kv.value.toString())).toEqual([`v${i}`]);
      }
      const all = await Promise.all(
        [...Array(30).keys()].map((i) => unary(c, 'Put', { key: Buffer.from(`auth/p${i}`), value: Buffer.from(`p${i}`), prev_kv: true })),
      );
      expect(all).toHaveLength(30);
      const r = await unary(c, 'Range', { key: Buffer.from('auth/'), range_end: Buffer.from('auth0'), count_only: true });
      expect(r.count).toBe('40');
    } finally {
      c.close();
    }
  });

  test('without an override (the normal path)', async () => {
    const c = kvClient(m);
    try {
      await unary(c, 'Put', { key: Buffer.from('plain'), value: Buffer.from('1') });
      const r = await unary(c, 'Range', { key: Buffer.from('url-key') });
      expect((r.kvs as { value: Buffer }[])[0]?.value.toString()).toBe('url-value');
    } finally {
      c.close();
    }
  });
});

test('HTTP/1.1 on the client port gets an HTTP answer (404 for an unknown path, as etcd)', async () => {
  const r = await new Promise<{ status: number; body: string; type: string | undefined }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: m.clientPort, path: '/no-such-endpoint', agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
      })
      .on('error', reject);
  });
  expect(r).toEqual({ status: 404, body: '404 page not found\n', type: 'text/plain; charset=utf-8' });
  // gRPC on the same port is unaffected.
  expect((await etcdctl(m, ['put', 'after-http1', 'yes'])).stdout).toBe('OK\n');
  expect((await etcdctl(m, ['get', 'after-http1', '--print-value-only'])).stdout).toBe('yes\n');
});
