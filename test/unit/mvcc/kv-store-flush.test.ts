import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend, MetaKeys } from '../../../src/storage/backend';
import { KvStore } from '../../../src/mvcc/kv-store';
import { applyPut, noLeases, range } from '../../../src/server/kv-apply';
import { PutOp, RangeOp } from '../../../src/server/requests';

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');

function put(key: string, value: string): PutOp {
  return { kind: 'put', key: b(key), value: b(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
}
function rng(key: string): RangeOp {
  return {
    kind: 'range', key: b(key), rangeEnd: new Uint8Array(0), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: false,
    keysOnly: false, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
  };
}

describe('deferred flushes of applied writes (flushSoon)', () => {
  let dir: string;
  let backend: Backend;
  let store: KvStore;
  let writes: number;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvflush-'));
    backend = await Backend.open(path.join(dir, 'db'));
    store = await KvStore.open(backend);
    writes = 0;
    const write = backend.write.bind(backend);
    backend.write = (ops, sync) => {
      writes++;
      return write(ops, sync);
    };
  });
  afterEach(async () => {
    await store.flushed();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const consistentIndex = (): Promise<number> => backend.metaNumber(MetaKeys.consistentIndex);

  test('batches applied within the window become one LevelDB write, readable before it', async () => {
    for (let i = 1; i <= 20; i++) {
      await applyPut(store, put(`k${i}`, `v${i}`), noLeases);
      store.flushSoon(i, 1);
    }
    expect(writes).toBe(0);
    expect(await consistentIndex()).toBe(0);
    // Unwritten records are read from the pending batch.
    const r = await range(store, rng('k7'));
    expect(Buffer.from(r.kvs[0]!.value).toString()).toBe('v7');
    await store.flushed();
    expect(writes).toBe(1);
    expect(await consistentIndex()).toBe(20);
    const again = await range(store, rng('k20'));
    expect(Buffer.from(again.kvs[0]!.value).toString()).toBe('v20');
  });

  test('the timer writes a deferred batch without anyone waiting for it', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    const seen: number[] = [];
    store.onDeferredFlush = (seconds, err) => {
      expect(err).toBeUndefined();
      seen.push(seconds);
    };
    store.flushSoon(3, 2);
    for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(seen).toHaveLength(1);
    expect(writes).toBe(1);
    expect(await consistentIndex()).toBe(3);
    expect(await backend.metaNumber(MetaKeys.consistentTerm)).toBe(2);
  });

  test('a batch that reaches 4,096 staged ops is written at once', async () => {
    for (let i = 0; i < 4100 && writes === 0; i++) {
      await applyPut(store, put(`k${i}`, 'v'), noLeases);
      store.flushSoon(i + 1, 1);
    }
    expect(writes).toBe(1);
    await store.flushed();
    expect(await consistentIndex()).toBeGreaterThanOrEqual(4096);
  });

  test('an explicit flush takes the deferred batch along and never lowers the consistent index', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    store.flushSoon(9, 4);
    await store.flush(5, 3);
    expect(writes).toBe(1);
    expect(await consistentIndex()).toBe(9);
    expect(await backend.metaNumber(MetaKeys.consistentTerm)).toBe(4);
    await store.flushed();
    expect(writes).toBe(1);
  });

  test('saving the index at stop writes the deferred batch first', async () => {
    await applyPut(store, put('a', '1'), noLeases);
    store.flushSoon(2, 1);
    expect(await store.saveIndex()).toBe(true);
    expect(writes).toBe(1);
    expect(await consistentIndex()).toBe(2);
  });
});
