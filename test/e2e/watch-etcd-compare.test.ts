/**
 * The same scripted Watch stream against the real etcd (3.4) and our server, comparing the decoded
 * responses, for the semantics 3.4 already has: created responses, server-assigned and chosen ids,
 * duplicate ids, empty ranges, a start revision below the compaction, history replay with prev_kv,
 * filters, live events, cancel, and a client that half-closes. Both servers run on the same ports,
 * so member and cluster ids agree; they are masked only if they differ.
 *
 * Responses are compared per watcher (in order) plus the order of created responses: etcd hands a
 * revision's events to its watchers in no fixed order, so only the order within a watcher is part of
 * the contract.
 */
import { KvClient, Msg } from './client';
import { onBothServers, sleep, startMember, stopAll, stopMember } from './harness';
import { CreateFields, ResponseView, WatchStream } from './watch-client';

afterAll(stopAll);

const buf = (s: string): Buffer => Buffer.from(s, 'latin1');
const put = (key: string, value: string): Msg => ({ request_put: { key: buf(key), value: buf(value) } });
const del = (key: string, end?: string): Msg => ({ request_delete_range: { key: buf(key), range_end: end === undefined ? Buffer.alloc(0) : buf(end) } });

interface Session {
  /** Created responses in arrival order. */
  created: ResponseView[];
  /** Every other response, by watch id, in arrival order. */
  byWatcher: Record<string, ResponseView[]>;
}

async function session(kind: 'ours' | 'etcd', clientPort: number, peerPort: number): Promise<Session> {
  const m = await startMember({ kind, name: 'wcmp', clientPort, peerPort });
  const kv = new KvClient(m.endpoint);
  const s = new WatchStream(m.endpoint);
  try {
    const write = async (...ops: Msg[]): Promise<void> => {
      await kv.call('Txn', { success: ops });
    };
    // History: revisions 2..8.
    await write(put('a', '1')); // 2
    await write(put('a', '2')); // 3
    await write(put('b', '1')); // 4
    await write(del('a')); // 5
    await write(put('c', '1')); // 6
    await write(put('a', '3'), put('b', '2')); // 7
    await write(put('d', '1')); // 8
    await kv.call('Compact', { revision: '4' });

    const creates: CreateFields[] = [
      { key: 'a', start_revision: 2 }, // below the compaction → created, then canceled
      { key: 'a', start_revision: 4, prev_kv: true }, // replay from the compact revision
      { key: 'a', range_end: 'z', filters: [0], start_revision: 4 }, // NOPUT
      { key: 'a', range_end: 'z', filters: [1], prev_kv: true }, // NODELETE, live only
      { key: 'x', watch_id: 3 }, // duplicate id
      { key: 'b', range_end: 'a' }, // empty range
      { key: 'c', watch_id: 10, prev_kv: true },
      { key: '', range_end: '\0', start_revision: 6 }, // every key
      { key: 'b', range_end: 'c', watch_id: 7, prev_kv: true }, // prefix "b"
      { key: 'b', watch_id: 20, start_revision: 3 }, // chosen id, canceled by the compaction
    ];
    for (const c of creates) s.create(c);
    // Let every replay finish (etcd syncs unsynced watchers every 100 ms).
    await sleep(600);
    s.create({ key: 'd', watch_id: 20 }); // the id of a watcher canceled by the compaction
    s.create({ key: 'e', start_revision: 1 }); // auto id again
    await sleep(300);
    await write(put('b', '3')); // 9
    await write(del('c')); // 10
    await write(put('a', '4'), del('b')); // 11
    await write(put('d', '2')); // 12
    await write(del('a', 'b')); // 13
    await sleep(300);
    s.cancel(10);
    s.cancel(99); // unknown id: no answer
    await sleep(200);
    await write(put('c', '2')); // 14: watcher 10 is gone
    await sleep(300);
    s.call.end(); // half-close: the server keeps sending
    await sleep(200);
    await write(put('b', '4')); // 15
    await sleep(600);
    const out: Session = { created: [], byWatcher: {} };
    for (const r of s.received) {
      if (r.created) out.created.push(r);
      else (out.byWatcher[String(r.watch_id)] ??= []).push(r);
    }
    return out;
  } finally {
    s.close();
    kv.close();
    await stopMember(m);
  }
}

/** Masks member and cluster ids (only needed if the two servers derive different ones). */
function mask(x: Session, ids: { cluster: string; member: string }): Session {
  const fix = (r: ResponseView): ResponseView => ({
    ...r,
    header: {
      ...r.header,
      cluster_id: r.header.cluster_id === ids.cluster ? 'CLUSTER' : r.header.cluster_id,
      member_id: r.header.member_id === ids.member ? 'MEMBER' : r.header.member_id,
    },
  });
  const byWatcher: Record<string, ResponseView[]> = {};
  for (const [k, v] of Object.entries(x.byWatcher)) byWatcher[k] = v.map(fix);
  return { created: x.created.map(fix), byWatcher };
}

test('a scripted Watch stream gets the same responses from etcd and from our server', async () => {
  const { theirs, ours } = await onBothServers(session);
  const idsOf = (x: Session): { cluster: string; member: string } => ({
    cluster: x.created[0]!.header.cluster_id,
    member: x.created[0]!.header.member_id,
  });
  const a = mask(theirs, idsOf(theirs));
  const b = mask(ours, idsOf(ours));
  expect(b.created).toEqual(a.created);
  expect(Object.keys(b.byWatcher).sort()).toEqual(Object.keys(a.byWatcher).sort());
  for (const id of Object.keys(a.byWatcher)) expect({ id, responses: b.byWatcher[id] }).toEqual({ id, responses: a.byWatcher[id] });
  // Anchors: the script really exercised what it claims.
  expect(a.created.slice(0, 10).map((r) => r.watch_id)).toEqual([0, 1, 2, 3, -1, -1, 10, 4, 7, 20]);
  expect(a.byWatcher['0']![0]).toMatchObject({ canceled: true, compact_revision: 4 });
  expect(a.byWatcher['10']!.some((r) => r.canceled)).toBe(true);
  expect(a.byWatcher['7']!.some((r) => r.events.some((e) => e.kv.mod_revision === 15))).toBe(true);
  // Ids agree too, since both servers derive them from the same ports and names.
  expect(idsOf(ours)).toEqual(idsOf(theirs));
}, 60000);
