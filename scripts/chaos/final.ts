/**
 * The end of a chaos run, after every fault is healed: wait for a healthy cluster, a quorum read,
 * every member caught up to that revision, the members compared (Maintenance.HashKV at the same
 * revision, or, where HashKV is unimplemented, the full key-value content read with serializable
 * Range at that revision and at a few earlier ones), the final event history (a watch from
 * revision 1 on every member, compared), and the leases that still exist.
 */
import type { Anomaly } from '../../src/check/anomaly';
import type { KvRecord, RevisionEvents, WatchEvent } from '../../src/check/history';
import type { ChaosCluster, Slot } from './cluster';
import { sleep } from './cluster';
import { CallFailure, EtcdClient, Msg, bytes, headerRevision, idString, kvRecord, num, watchEvent } from './grpc';
import type { Random } from './rng';
import type { Recorder } from './workload';

/** How the members' data was compared. */
export interface Comparison {
  readonly method: 'HashKV' | 'content';
  /** Revisions compared. */
  readonly revisions: readonly number[];
  readonly equal: boolean;
  readonly detail: string;
}

/** What the final phase found. */
export interface FinalState {
  /** The quorum read's revision. */
  readonly revision: number;
  /** The quorum read of the checked keys. */
  readonly kvs: readonly KvRecord[];
  /** Members that did not reach the revision in time. */
  readonly lagging: readonly string[];
  readonly comparison: Comparison | undefined;
  /** The final event history (undefined when it could not be read). */
  readonly events: RevisionEvents[] | undefined;
  readonly eventsNote: string;
  /** Leases that exist at the end. */
  readonly leases: ReadonlySet<string> | undefined;
  readonly anomalies: Anomaly[];
}

/** Waits until every member serves a linearizable read; returns the slots that never did. */
export async function waitHealthy(cluster: ChaosCluster, timeoutMs: number): Promise<Slot[]> {
  const deadline = Date.now() + timeoutMs;
  let bad: Slot[] = [...cluster.slots];
  while (Date.now() < deadline && bad.length > 0) {
    const next: Slot[] = [];
    for (const s of bad) {
      try {
        await cluster.client(s).call('KV', 'Range', { key: bytes('/chaos/health'), limit: '1' }, 2000);
      } catch {
        next.push(s);
      }
    }
    bad = next;
    if (bad.length > 0) await sleep(500);
  }
  return bad;
}

/**
 * Reads the whole event history up to `revision` with a watch from revision 1. Done when an event
 * at `revision` arrived (every revision has events); progress notifications are not trusted here,
 * since etcd 3.4 answers a progress request with the current revision even while the watcher is
 * still catching up.
 */
export async function fetchHistory(client: EtcdClient, revision: number, timeoutMs: number): Promise<{ events: RevisionEvents[]; note: string }> {
  const out: RevisionEvents[] = [];
  let last = 1;
  let note = '';
  await new Promise<void>((resolve) => {
    const stream = client.watchStream(false);
    let done = false;
    const finish = (why: string): void => {
      if (done) return;
      done = true;
      note = why;
      clearTimeout(timer);
      stream.cancel();
      resolve();
    };
    const timer = setTimeout(() => finish(`timed out at revision ${last}`), timeoutMs);
    stream.on('data', (m: Msg) => {
      if (m.canceled === true) return finish(`canceled: ${String(m.cancel_reason ?? '')} compact ${num(m.compact_revision)}`);
      const events = ((m.events ?? []) as Msg[]).map(watchEvent);
      for (const e of events) {
        const rev = e.kv.modRevision;
        if (rev > revision) continue;
        const tail = out[out.length - 1];
        if (tail !== undefined && tail.revision === rev) (tail.events as WatchEvent[]).push(e);
        else out.push({ revision: rev, events: [e] });
        last = Math.max(last, rev);
      }
      if (last >= revision) finish('');
    });
    stream.on('error', (e: Error) => finish(`stream error: ${e.message}`));
    stream.write({ create_request: { key: bytes('\0'), range_end: bytes('\0'), start_revision: '1', prev_kv: true } });
  });
  return { events: out, note };
}

function sameHistory(a: readonly RevisionEvents[], b: readonly RevisionEvents[]): string | undefined {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === undefined || y === undefined) return `one history ends at revision ${(x ?? y)!.revision - 1}`;
    const jx = JSON.stringify(x);
    const jy = JSON.stringify(y);
    if (jx !== jy) return `revision ${x.revision}: ${jx} vs ${jy}`;
  }
  return undefined;
}

/** Runs the final phase. `rec` receives the quorum read as a KV operation. */
export async function finalPhase(
  cluster: ChaosCluster,
  rec: Recorder,
  random: Random,
  range: { readonly key: string; readonly rangeEnd: string },
  log: (line: string) => void,
): Promise<FinalState> {
  const anomalies: Anomaly[] = [];
  const unhealthy = await waitHealthy(cluster, 90000);
  if (unhealthy.length > 0) log(`  members not serving reads after 90 s: ${unhealthy.map((s) => s.name).join(', ')}`);
  const leader = (await cluster.waitLeader(30000)) ?? cluster.slots[0]!;

  // The quorum read (a linearizable Range through the leader), recorded like any read.
  let revision = 0;
  let kvs: KvRecord[] = [];
  for (let attempt = 0; attempt < 20 && revision === 0; attempt++) {
    const id = rec.reserve();
    const call = rec.now();
    const input = { type: 'range' as const, key: range.key, rangeEnd: range.rangeEnd, serializable: false };
    try {
      const r = await cluster.client(leader).call('KV', 'Range', { key: bytes(range.key), range_end: bytes(range.rangeEnd) }, 5000);
      revision = headerRevision(r);
      kvs = ((r.kvs ?? []) as Msg[]).map(kvRecord);
      rec.set({ id, process: rec.process(), call, ret: rec.now(), status: 'ok', input, output: { type: 'range', revision, kvs }, member: leader.name });
    } catch (e) {
      const f = e instanceof CallFailure ? e : new CallFailure(2, String(e));
      rec.set({ id, process: rec.process(), call, ret: rec.now(), status: 'unknown', input, error: { code: f.code, message: f.details }, member: leader.name });
      await sleep(1000);
    }
  }
  log(`  quorum read through ${leader.name} at revision ${revision}`);

  // Every member reaches the revision.
  const lagging: string[] = [];
  for (const s of cluster.slots) {
    const deadline = Date.now() + 60000;
    let rev = 0;
    while (Date.now() < deadline) {
      try {
        rev = headerRevision(await cluster.client(s).call('KV', 'Range', { key: bytes(range.key), serializable: true, limit: '1' }, 2000));
      } catch {
        rev = 0;
      }
      if (rev >= revision) break;
      await sleep(300);
    }
    if (rev < revision) {
      lagging.push(s.name);
      anomalies.push({ kind: 'divergence', message: `${s.name} did not reach revision ${revision} within 60 s after healing (at ${rev})` });
    }
  }
  const compared = cluster.slots.filter((s) => !lagging.includes(s.name));

  // Compare the members: HashKV, or the content at a few revisions.
  let comparison: Comparison | undefined;
  if (revision > 1 && compared.length > 1) {
    const hashes: string[] = [];
    let unimplemented = false;
    for (const s of compared) {
      try {
        const r = await cluster.client(s).call('Maintenance', 'HashKV', { revision: String(revision) }, 10000);
        hashes.push(`${num(r.hash)}/${num(r.compact_revision)}`);
      } catch (e) {
        if (e instanceof CallFailure && e.code === 12) unimplemented = true;
        hashes.push(`error ${e instanceof CallFailure ? e.code : ''}`);
      }
    }
    if (!unimplemented) {
      const equal = new Set(hashes).size === 1 && !hashes[0]!.startsWith('error');
      comparison = { method: 'HashKV', revisions: [revision], equal, detail: compared.map((s, i) => `${s.name}=${hashes[i]}`).join(' ') };
    } else {
      const revs = [revision];
      for (let i = 0; i < 3 && revision > 2; i++) revs.push(random.int(2, revision - 1));
      const diffs: string[] = [];
      for (const r of revs) {
        const contents: string[] = [];
        for (const s of compared) {
          try {
            const res = await cluster.client(s).call('KV', 'Range', { key: bytes('\0'), range_end: bytes('\0'), serializable: true, revision: String(r) }, 10000);
            contents.push(JSON.stringify(((res.kvs ?? []) as Msg[]).map(kvRecord)));
          } catch (e) {
            contents.push(`error ${e instanceof CallFailure ? `${e.code} ${e.details}` : String(e)}`);
          }
        }
        if (new Set(contents).size !== 1) diffs.push(`revision ${r}: ${compared.map((s, i) => `${s.name} ${contents[i]!.slice(0, 200)}`).join(' | ')}`);
      }
      comparison = {
        method: 'content',
        revisions: revs,
        equal: diffs.length === 0,
        detail: diffs.length === 0 ? 'identical key-value content on every member' : diffs.join('\n'),
      };
    }
    if (!comparison.equal) anomalies.push({ kind: 'divergence', message: `members differ (${comparison.method} at ${comparison.revisions.join(', ')}): ${comparison.detail}` });
  }

  // The final event history, from every member; they must agree.
  let events: RevisionEvents[] | undefined;
  let eventsNote = '';
  if (revision <= 1) events = [];
  for (const s of revision <= 1 ? [] : [leader, ...compared.filter((x) => x !== leader)]) {
    const h = await fetchHistory(cluster.client(s), revision, 120000);
    if (h.note !== '') {
      eventsNote += `${s.name}: ${h.note}; `;
      if (s === leader) anomalies.push({ kind: 'event-history', message: `the event history from ${s.name} is incomplete: ${h.note}` });
      continue;
    }
    if (events === undefined) {
      events = h.events;
      continue;
    }
    const d = sameHistory(events, h.events);
    if (d !== undefined) anomalies.push({ kind: 'divergence', message: `${s.name}'s event history differs from ${leader.name}'s: ${d.slice(0, 500)}` });
  }

  // Leases that still exist.
  let leases: Set<string> | undefined;
  try {
    const r = await cluster.client(leader).call('Lease', 'LeaseLeases', {}, 5000);
    leases = new Set(((r.leases ?? []) as Msg[]).map((l) => idString(l.ID)));
  } catch {
    leases = undefined;
  }
  return { revision, kvs, lagging, comparison, events, eventsNote, leases, anomalies };
}
