/**
 * `node dist/scripts/chaos/recheck.js DIR`: runs the checkers again on what a chaos run recorded
 * in DIR (history.json, events.json, watches.json, final.json), without a cluster. Useful after a
 * change to the checkers, or to study an anomaly. Exits 0 without anomalies, 1 with, 2 on error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatAnomaly } from '../../src/check/anomaly';
import type { KvOp, KvOutput, KvRecord, RevisionEvents, WatchSession } from '../../src/check/history';
import { checkRecorded } from './run';

function read<T>(dir: string, file: string): T | undefined {
  const p = path.join(dir, file);
  return fs.existsSync(p) ? (JSON.parse(fs.readFileSync(p, 'utf8')) as T) : undefined;
}

/** Rechecks a run dir; returns the process exit code. */
export function recheck(dir: string, out: (line: string) => void): number {
  const ops = read<KvOp[]>(dir, 'history.json');
  if (ops === undefined) {
    out(`no history.json in ${dir}`);
    return 2;
  }
  const events = read<RevisionEvents[] | null>(dir, 'events.json') ?? undefined;
  const sessions = read<WatchSession[]>(dir, 'watches.json') ?? [];
  let final = read<{ revision: number; kvs: KvRecord[]; leases: string[] | null }>(dir, 'final.json');
  if (final === undefined) {
    // Older runs: the quorum read is the last linearizable range of the whole prefix.
    const last = [...ops].reverse().find((o) => o.status === 'ok' && o.input.type === 'range' && o.input.rangeEnd !== '' && !o.input.serializable);
    const o = last?.output as Extract<KvOutput, { type: 'range' }> | undefined;
    final = { revision: o?.revision ?? 0, kvs: [...(o?.kvs ?? [])], leases: null };
  }
  const r = checkRecorded({ ops, events, sessions, revision: final.revision, kvs: final.kvs, leases: final.leases === null ? undefined : new Set(final.leases) });
  out(`${ops.length} operations, ${events?.length ?? 0} revisions of events, ${sessions.length} watch sessions`);
  out(`linearizability: ${r.kv.keys.map((k) => `${k.key} ${k.result} (${k.ops} ops, ${k.steps} steps)`).join('; ')}`);
  out(`indeterminate: ${JSON.stringify(r.kv.resolved)}`);
  out(`anomalies: ${r.anomalies.length}`);
  for (const a of r.anomalies) out(formatAnomaly(a));
  return r.anomalies.length === 0 ? 0 : 1;
}

if (require.main === module) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: node dist/scripts/chaos/recheck.js DIR\n');
    process.exit(2);
  }
  process.exit(recheck(dir, (l) => process.stdout.write(l + '\n')));
}
