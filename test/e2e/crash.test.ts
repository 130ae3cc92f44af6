/**
 * kill -9 during a stream of acknowledged writes from several concurrent clients: after a restart
 * every acknowledged write is present, at the revision it was acknowledged with.
 */
import { KvClient, Msg } from './client';
import { Member, sleep, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

interface Ack {
  key: string;
  value: string;
  rev: number;
}

async function writer(endpoint: string, id: number, acks: Ack[], stop: { now: boolean }): Promise<void> {
  const c = new KvClient(endpoint);
  for (let n = 0; !stop.now; n++) {
    const key = `crash/w${id}/${n}`;
    const value = `v-${id}-${n}-${'x'.repeat(n % 50)}`;
    try {
      const res = await c.call('Put', { key: Buffer.from(key), value: Buffer.from(value) }, 3000);
      acks.push({ key, value, rev: Number((res.header as Msg).revision) });
    } catch {
      break; // the server died: this write's outcome is unknown and is not counted
    }
  }
  c.close();
}

test('no acknowledged write is lost across kill -9, three times over', async () => {
  let m: Member = await startMember({ kind: 'ours' });
  const acks: Ack[] = [];
  for (let round = 0; round < 3; round++) {
    const stop = { now: false };
    const writers = Array.from({ length: 8 }, (_v, i) => writer(m.endpoint, round * 100 + i, acks, stop));
    await sleep(700 + round * 300);
    m.proc.kill('SIGKILL');
    await m.exited;
    stop.now = true;
    await Promise.all(writers);
    await stopMember(m, 'SIGKILL');
    m = await startMember({ kind: 'ours', name: m.name, dataDir: m.dataDir, clientPort: m.clientPort, peerPort: m.peerPort });
  }
  expect(acks.length).toBeGreaterThan(100);
  const c = new KvClient(m.endpoint);
  const revs = new Set<number>();
  for (const a of acks) {
    const res = await c.call('Range', { key: Buffer.from(a.key) });
    const kvs = res.kvs as Msg[];
    expect({ key: a.key, found: kvs.length }).toEqual({ key: a.key, found: 1 });
    expect(Buffer.from(kvs[0]!.value as Buffer).toString()).toBe(a.value);
    expect(Number(kvs[0]!.mod_revision)).toBe(a.rev);
    revs.add(a.rev);
  }
  expect(revs.size).toBe(acks.length); // every put got its own revision
  const all = await c.call('Range', { key: Buffer.from('crash/'), range_end: Buffer.from('crash0'), count_only: true });
  expect(Number(all.count)).toBeGreaterThanOrEqual(acks.length);
  const head = Number((all.header as Msg).revision);
  expect(head).toBeGreaterThanOrEqual(Math.max(...acks.map((a) => a.rev)));
  c.close();
}, 120000);
