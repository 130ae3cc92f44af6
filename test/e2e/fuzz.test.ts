/**
 * Fuzzing of bad input: random bytes, mutated and truncated valid messages, and extreme field
 * values (negative revisions, huge limits and TTLs, invalid UTF-8 keys) sent to every RPC of every
 * service. The server must answer each one (an error or a result), never crash, and keep a
 * consistent state: the HashKV before a restart equals the one after it.
 */
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { protoRoot } from '../../src/api/proto';
import { SERVICES } from '../../src/api/grpc-server';
import { KvClient, Msg } from './client';
import { etcdctl, startMember, stopAll, stopMember } from './harness';
import { SeededRng } from '../../src/raft/rng';

afterAll(stopAll);

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with FUZZ_SEED. */
function rng(seed: number): () => number {
  const r = new SeededRng(seed);
  return () => r.nextFloat();
}

const EXTREME_INTS = ['0', '-1', '1', '-9223372036854775808', '9223372036854775807', '4294967296', '-4294967296', '9000000001'];

function randomValue(f: protobuf.Field, r: () => number, depth: number): unknown {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  if (f.resolvedType instanceof protobuf.Type) return depth > 2 ? {} : randomMessage(f.resolvedType, r, depth + 1);
  if (f.resolvedType instanceof protobuf.Enum) return pick([0, 1, 2, 3, 7, -1, 99]);
  switch (f.type) {
    case 'bytes': {
      const n = pick([0, 1, 3, 16, 300]);
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
      if (n > 0 && r() < 0.3) b[0] = 0xff; // invalid UTF-8 start
      return b;
    }
    case 'string':
      return pick(['', 'http://127.0.0.1:1', 'x'.repeat(100), '\u0000\uffff', '::bad::']);
    case 'bool':
      return r() < 0.5;
    case 'int64':
    case 'uint64':
    case 'sint64':
      return pick(EXTREME_INTS);
    default:
      return pick([0, -1, 1, 2147483647, -2147483648]);
  }
}

function randomMessage(t: protobuf.Type, r: () => number, depth = 0): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    if (r() < 0.4) continue;
    if (f.repeated) o[f.name] = Array.from({ length: Math.floor(r() * 3) }, () => randomValue(f, r, depth));
    else o[f.name] = randomValue(f, r, depth);
  }
  return o;
}

function payloads(t: protobuf.Type, r: () => number, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    if (kind === 0) {
      const b = Buffer.alloc(Math.floor(r() * 64));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(r() * 256);
      out.push(b);
      continue;
    }
    let valid: Buffer;
    try {
      valid = Buffer.from(t.encode(t.fromObject(randomMessage(t, r))).finish());
    } catch {
      valid = Buffer.alloc(0);
    }
    if (kind === 1) out.push(valid);
    else if (kind === 2) out.push(valid.subarray(0, Math.floor(r() * valid.length)));
    else {
      const m = Buffer.from(valid);
      for (let j = 0; j < 3 && m.length > 0; j++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      out.push(m);
    }
  }
  return out;
}

/** Methods whose success changes membership or leadership of this single member in ways that end the test. */
const SKIP = new Set(['/etcdserverpb.Cluster/MemberRemove', '/etcdserverpb.Maintenance/MoveLeader', '/etcdserverpb.Maintenance/Alarm']);

test('random and mutated input to every RPC: always an answer, never a crash, consistent state', async () => {
  const seed = Number(process.env.FUZZ_SEED ?? 20261125);
  const r = rng(seed);
  const m = await startMember();
  for (let i = 0; i < 20; i++) expect((await etcdctl(m, ['put', `seed/${i}`, `v${i}`])).code).toBe(0);
  const client = new grpc.Client(m.endpoint, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  let calls = 0;
  let answered = 0;
  const perCall = (path: string, stream: { requestStream: boolean; responseStream: boolean }, body: Buffer): Promise<void> =>
    new Promise((resolve) => {
      calls++;
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        answered++;
        resolve();
      };
      const opts = { deadline: Date.now() + 3000 };
      if (!stream.requestStream && !stream.responseStream) {
        client.makeUnaryRequest(path, id, id, body, new grpc.Metadata(), opts, () => done());
      } else if (!stream.requestStream) {
        const s = client.makeServerStreamRequest(path, id, id, body, new grpc.Metadata(), opts);
        s.on('data', () => undefined);
        s.on('error', () => done());
        s.on('end', () => done());
      } else {
        const s = client.makeBidiStreamRequest(path, id, id, new grpc.Metadata(), opts);
        s.on('data', () => undefined);
        s.on('error', () => done());
        s.on('end', () => done());
        s.write(body);
        s.write(body.subarray(0, Math.floor(body.length / 2)));
        setTimeout(() => s.end(), 50);
      }
    });
  for (const svcName of [...SERVICES, 'grpc.health.v1.Health']) {
    const svc = protoRoot().lookupService(svcName);
    for (const method of svc.methodsArray) {
      const path = `/${svcName}/${method.name}`;
      if (SKIP.has(path)) continue;
      method.resolve();
      const flags = { requestStream: method.requestStream === true, responseStream: method.responseStream === true };
      for (const body of payloads(method.resolvedRequestType!, r, 8)) {
        await perCall(path, flags, body);
        expect({ path, alive: m.proc.exitCode === null && m.proc.signalCode === null }).toEqual({ path, alive: true });
      }
    }
  }
  client.close();
  expect(answered).toBe(calls);
  expect(calls).toBeGreaterThan(350);
  // The state survives a restart unchanged.
  const kv = new KvClient(m.endpoint);
  const before = await kv.call('Range', { key: Buffer.from([0]), range_end: Buffer.from([0]) });
  kv.close();
  const hashBefore = (await etcdctl(m, ['endpoint', 'hashkv', '-w', 'json'])).stdout;
  await stopMember(m);
  const again = await startMember({ name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort });
  const kv2 = new KvClient(again.endpoint);
  const after = await kv2.call('Range', { key: Buffer.from([0]), range_end: Buffer.from([0]) });
  kv2.close();
  const strip = (x: Msg): unknown => ({ kvs: x.kvs, count: x.count, rev: (x.header as Msg).revision });
  expect(strip(after)).toEqual(strip(before));
  const hashAfter = (await etcdctl(again, ['endpoint', 'hashkv', '-w', 'json'])).stdout;
  const h = (s: string): unknown => (JSON.parse(s) as { HashKV: { hash: number } }[])[0]!.HashKV.hash;
  expect(h(hashAfter)).toBe(h(hashBefore));
}, 180000);
