import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend, SIDE_FILE_PREFIX } from '../../src/storage/backend';

describe('Backend', () => {
  let dir: string;
  let backend: Backend;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-'));
    backend = await Backend.open(path.join(dir, 'db'));
  });
  afterEach(async () => {
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

  test('batches of puts and deletes land in their sublevels, atomically and in order', async () => {
    await backend.write([
      { type: 'put', sublevel: backend.kv, key: bytes('\x00\x01'), value: bytes('v1') },
      { type: 'put', sublevel: backend.meta, key: Buffer.from('m'), value: Buffer.from('meta') },
      { type: 'put', sublevel: backend.lease, key: bytes('\xff'), value: new Uint8Array(0) },
      { type: 'put', sublevel: backend.kv, key: bytes('\x00\x02'), value: bytes('v2') },
      { type: 'del', sublevel: backend.kv, key: bytes('\x00\x02') },
    ]);
    expect(Buffer.from((await backend.kv.get(bytes('\x00\x01')))!).toString()).toBe('v1');
    expect(await backend.kv.get(bytes('\x00\x02'))).toBeUndefined();
    expect(Buffer.from((await backend.meta.get(Buffer.from('m')))!).toString()).toBe('meta');
    expect((await backend.lease.get(bytes('\xff')))!.length).toBe(0);
    // Nothing leaked into another sublevel or outside them.
    expect(await backend.kv.keys().all()).toHaveLength(1);
    expect(await backend.meta.get(bytes('\x00\x01'))).toBeUndefined();
    const all = await backend.db.keys({ keyEncoding: 'buffer' } as never).all();
    expect(all.map((k) => Buffer.from(k as Uint8Array).toString('latin1')).sort()).toEqual(['!kv!\x00\x01', '!lease!\xff', '!meta!m']);
  });

  test('ops the direct path does not take still work', async () => {
    await backend.write([{ type: 'put', sublevel: backend.meta, key: 'text' as unknown as Uint8Array, value: bytes('x') }]);
    expect(Buffer.from((await backend.meta.get(Buffer.from('text')))!).toString()).toBe('x');
    await expect(backend.write([{ type: 'put', sublevel: backend.kv, key: bytes('k') }])).rejects.toThrow();
  });

  test('scan reads a sublevel in order, from a start key, with exact values', async () => {
    const ops = [];
    for (let i = 0; i < 3000; i++) {
      const k = Buffer.alloc(4);
      k.writeUInt32BE(i * 7919);
      ops.push({ type: 'put' as const, sublevel: backend.kv, key: k, value: Buffer.from(`v${i}`) });
    }
    await backend.write(ops);
    await backend.write([{ type: 'put', sublevel: backend.meta, key: Buffer.from('zz'), value: Buffer.from('no') }]);
    const seen: string[] = [];
    await backend.scan(backend.kv, (entries, prefixLength) => {
      for (const [, v] of entries) seen.push(v.toString());
      expect(prefixLength).toBe(4);
    });
    expect(seen).toHaveLength(3000);
    expect(seen[0]).toBe('v0');
    expect(seen[2999]).toBe('v2999');
    const from = Buffer.alloc(4);
    from.writeUInt32BE(2500 * 7919);
    const tail: string[] = [];
    await backend.scan(backend.kv, (entries) => {
      for (const [, v] of entries) tail.push(v.toString());
    }, from);
    expect(tail).toHaveLength(500);
    expect(tail[0]).toBe('v2500');
    const exact = await backend.exactKeys(backend.kv, undefined, 2, from);
    expect(exact.map((k) => k.readUInt32BE(0))).toEqual([2500 * 7919, 2501 * 7919]);
    const after = await backend.exactKeys(backend.kv, exact[1], 5);
    expect(after.map((k) => k.readUInt32BE(0))).toEqual([2502, 2503, 2504, 2505, 2506].map((i) => i * 7919));
    expect(await backend.exactKeys(backend.kv, after[4], 10000)).toHaveLength(493);
  });

  test('side files do not count in the size', async () => {
    const before = await backend.approximateSize();
    fs.writeFileSync(path.join(backend.path, `${SIDE_FILE_PREFIX}x`), Buffer.alloc(100000));
    expect(await backend.approximateSize()).toBe(before);
  });
});
