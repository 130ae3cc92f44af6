/**
 * The Watch service's wire helpers: WatchResponse encoding (checked by decoding with the .proto
 * files), etcd's fragmenting rule, and the progress notification tick.
 */
import { encodeWatchResponse, fragmentResponse, progressTickMs } from '../../../src/api/watch-service';
import { messageType } from '../../../src/api/proto';
import { KeyValue } from '../../../src/mvcc/kv-codec';
import { WatchEvent } from '../../../src/watch/watch-hub';

const WatchResponse = messageType('etcdserverpb.WatchResponse');
const header = { clusterId: 17n, memberId: 42n, revision: 9, raftTerm: 2 };

function kv(key: string, valueBytes: number, mod: number, create = 2): KeyValue {
  return { key: Buffer.from(key), createRevision: create, modRevision: mod, version: 1, value: Buffer.alloc(valueBytes, 7), lease: 0n };
}

function decode(b: Buffer): Record<string, unknown> {
  return WatchResponse.toObject(WatchResponse.decode(b), { longs: Number, defaults: false }) as Record<string, unknown>;
}

test('a WatchResponse decodes with etcd field numbers; zero fields are omitted', () => {
  const del: WatchEvent = { type: 'delete', kv: { ...kv('a', 0, 9), createRevision: 0, version: 0 }, prevKv: kv('a', 3, 8) };
  const put: WatchEvent = { type: 'put', kv: kv('b', 2, 9, 9), prevKv: undefined };
  expect(decode(encodeWatchResponse({ header, watchId: 3, events: [del, put] }))).toEqual({
    header: { cluster_id: 17, member_id: 42, revision: 9, raft_term: 2 },
    watch_id: 3,
    events: [
      { type: 1, kv: { key: Buffer.from('a'), mod_revision: 9 }, prev_kv: { key: Buffer.from('a'), create_revision: 2, mod_revision: 8, version: 1, value: Buffer.alloc(3, 7) } },
      { kv: { key: Buffer.from('b'), create_revision: 9, mod_revision: 9, version: 1, value: Buffer.alloc(2, 7) } },
    ],
  });
  expect(decode(encodeWatchResponse({ header: { ...header, revision: 0 }, watchId: -1, created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty' }))).toEqual({
    header: { cluster_id: 17, member_id: 42, raft_term: 2 },
    watch_id: -1,
    created: true,
    canceled: true,
    cancel_reason: 'mvcc: watcher range is empty',
  });
  expect(decode(encodeWatchResponse({ header, watchId: 0, canceled: true, compactRevision: 5 }))).toEqual({
    header: { cluster_id: 17, member_id: 42, revision: 9, raft_term: 2 },
    canceled: true,
    compact_revision: 5,
  });
});

describe('fragments', () => {
  const limit = 10_000;
  const events = (n: number, bytes: number): WatchEvent[] =>
    Array.from({ length: n }, (_, i) => ({ type: 'put' as const, kv: kv(`k${i}`, bytes, 9), prevKv: undefined }));

  test('only for watchers that asked, only at or above the limit, and only with more than one event', () => {
    expect(fragmentResponse(header, 1, events(30, 1000), limit, false)).toHaveLength(1);
    expect(fragmentResponse(header, 1, events(5, 1000), limit, true)).toHaveLength(1);
    const single = fragmentResponse(header, 1, events(1, 50_000), limit, true);
    expect(single).toHaveLength(1);
    expect(decode(single[0]!).fragment).toBeUndefined();
  });

  test('pieces stay below the limit, all but the last are marked, and they reassemble in order', () => {
    for (const [n, bytes] of [[30, 1000], [7, 4000], [3, 30_000], [50, 333]] as const) {
      const evs = events(n, bytes);
      const pieces = fragmentResponse(header, 4, evs, limit, true);
      expect(pieces.length).toBeGreaterThan(1);
      const decoded = pieces.map(decode);
      decoded.forEach((d, i) => {
        expect(d.watch_id).toBe(4);
        expect(d.fragment).toBe(i < pieces.length - 1 ? true : undefined);
        const count = (d.events as unknown[]).length;
        expect(count).toBeGreaterThanOrEqual(1);
        if (count > 1) expect(pieces[i]!.length).toBeLessThan(limit);
      });
      const keys = decoded.flatMap((d) => (d.events as { kv: { key: Buffer } }[]).map((e) => e.kv.key.toString()));
      expect(keys).toEqual(evs.map((e) => Buffer.from(e.kv.key).toString()));
      // Greedy: each piece but the last could not take the next event without reaching the limit.
      const oneEvent = encodeWatchResponse({ header, watchId: 4, events: [evs[0]!] }).length - encodeWatchResponse({ header, watchId: 4 }).length;
      for (let i = 0; i + 1 < pieces.length; i++) expect(pieces[i]!.length + oneEvent).toBeGreaterThanOrEqual(limit);
    }
  });
});

test('progress tick: at least 100 ms, etcd default when unset, at most 10% jitter', () => {
  for (let i = 0; i < 50; i++) {
    const t = progressTickMs(200);
    expect(t).toBeGreaterThanOrEqual(200);
    expect(t).toBeLessThan(220);
    expect(progressTickMs(10)).toBeGreaterThanOrEqual(100);
    expect(progressTickMs(10)).toBeLessThan(110);
    expect(progressTickMs(0)).toBeGreaterThanOrEqual(600_000);
  }
});

test('WatchResponse bytes equal the .proto encoding for ids and revisions of every size', () => {
  const ids = [-1, 0, 1, 127, 128, 2 ** 31, Number.MAX_SAFE_INTEGER];
  const ids64 = [0n, 1n, 0x7fn, 0x80n, BigInt(Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER) + 1n, 0xcdc8dd3f2c9b1a0cn, 2n ** 64n - 1n];
  for (const watchId of ids) {
    for (const id of ids64) {
      const h = { clusterId: id, memberId: id === 0n ? 5n : id - 1n, revision: Math.max(0, watchId), raftTerm: 3 };
      const fields = { header: h, watchId, canceled: true, compactRevision: Math.max(0, watchId) };
      // proto3 leaves zero fields out; protobufjs writes every field it is given.
      const nonZero = (o: Record<string, unknown>): Record<string, unknown> =>
        Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0 && v !== '0'));
      const expected = WatchResponse.encode(
        WatchResponse.fromObject(
          nonZero({
            header: nonZero({ cluster_id: h.clusterId.toString(), member_id: h.memberId.toString(), revision: h.revision, raft_term: h.raftTerm }),
            watch_id: watchId,
            canceled: true,
            compact_revision: fields.compactRevision,
          }),
        ),
      ).finish();
      // Twice: the second encoding reuses the cached header bytes.
      expect(Buffer.from(encodeWatchResponse(fields)).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
      expect(Buffer.from(encodeWatchResponse(fields)).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
    }
  }
});
