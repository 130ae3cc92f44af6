/**
 * Runs the same etcdctl session against the real etcd and against our server (each fresh, on the
 * same ports and with the same member name, so member and cluster ids agree) and requires identical
 * output, exit code and error text for every command.
 */
import { RunResult, etcdctl, onBothServers, startMember, stopAll, stopMember } from './harness';

interface Step {
  args: string[];
  input?: string;
}

const TXN_SUCCESS = `mod("k1") > "0"

put k1 "txn-put"
get k1 --prefix

put k9 "fail"

`;
const TXN_FAILURE = `value("k1") = "nope"
version("k2") = "1"

put x y

get k1
del k2 --prev-kv

`;

const STEPS: Step[] = [
  { args: ['put', 'k1', 'v1'] },
  { args: ['put', 'k2', 'v2', '-w', 'json'] },
  { args: ['put', 'k1', 'v1b', '--prev-kv'] },
  { args: ['put', 'k3', 'v3', '--prev-kv', '-w', 'json'] },
  { args: ['get', 'k1'] },
  { args: ['get', 'k1', '-w', 'json'] },
  { args: ['get', 'k1', '-w', 'fields'] },
  { args: ['get', 'k', '--prefix'] },
  { args: ['get', 'k', '--prefix', '-w', 'json'] },
  { args: ['get', 'k2', '--from-key'] },
  { args: ['get', 'k1', 'k3'] },
  { args: ['get', 'k', '--prefix', '--limit', '2', '-w', 'json'] },
  { args: ['get', 'k', '--prefix', '--limit', '2'] },
  { args: ['get', 'k', '--prefix', '--order', 'DESCEND'] },
  { args: ['get', 'k', '--prefix', '--sort-by', 'MODIFY', '--order', 'DESCEND'] },
  { args: ['get', 'k', '--prefix', '--sort-by', 'VALUE'] },
  { args: ['get', 'k', '--prefix', '--sort-by', 'CREATE', '--order', 'ASCEND', '-w', 'json'] },
  { args: ['get', 'k', '--prefix', '--sort-by', 'VERSION', '--order', 'DESCEND'] },
  { args: ['get', 'k', '--prefix', '--keys-only'] },
  { args: ['get', 'k', '--prefix', '--keys-only', '-w', 'json'] },
  { args: ['get', 'k', '--prefix', '--count-only', '-w', 'json'] },
  { args: ['get', 'k', '--prefix', '--print-value-only'] },
  { args: ['get', 'k1', '--consistency=s'] },
  { args: ['get', 'k1', '--rev', '2'] },
  { args: ['get', 'k1', '--rev', '2', '-w', 'json'] },
  { args: ['get', 'k1', '--rev', '99'] },
  { args: ['get', '', '--from-key', '-w', 'json'] },
  { args: ['get', '', '--prefix', '--keys-only'] },
  { args: ['get', 'missing'] },
  { args: ['get', 'missing', '-w', 'json'] },
  { args: ['get', 'k', '--prefix', '-w', 'protobuf'] },
  { args: ['put', 'k1', '--ignore-value'] },
  { args: ['put', 'k1', 'x', '--ignore-value'] },
  { args: ['put', 'nokey', '--ignore-value'] },
  { args: ['put', 'k1', 'v', '--lease', '1234'] },
  { args: ['put', 'k1', '--ignore-lease'] },
  { args: ['txn', '-w', 'json'], input: TXN_SUCCESS },
  { args: ['txn'], input: TXN_SUCCESS },
  { args: ['txn', '-w', 'json'], input: TXN_FAILURE },
  { args: ['txn'], input: TXN_FAILURE },
  { args: ['get', 'k', '--prefix', '-w', 'json'] },
  { args: ['del', 'nothing-here'] },
  { args: ['del', 'nothing-here', '-w', 'json'] },
  { args: ['del', 'k3', '--prev-kv'] },
  { args: ['put', 'p/a', '1'] },
  { args: ['put', 'p/b', '2'] },
  { args: ['put', 'p/c', '3'] },
  { args: ['put', 'q', '4'] },
  { args: ['del', 'p/', '--prefix', '--prev-kv', '-w', 'json'] },
  { args: ['del', 'k1', 'k2'] },
  { args: ['del', 'q', '--from-key', '-w', 'json'] },
  { args: ['get', '', '--prefix', '-w', 'json'] },
  { args: ['compaction', '5'] },
  { args: ['compaction', '5'] },
  { args: ['compaction', '3'] },
  { args: ['compaction', '999'] },
  { args: ['get', 'k1', '--rev', '4'] },
  { args: ['get', 'k1', '--rev', '5', '-w', 'json'] },
  { args: ['compaction', '--physical', '8'] },
  { args: ['get', '', '--from-key', '-w', 'json'] },
  { args: ['put', 'after', 'compaction', '-w', 'json'] },
  { args: ['get', 'after', '-w', 'json'] },
];

async function session(kind: 'ours' | 'etcd', clientPort: number, peerPort: number): Promise<RunResult[]> {
  const m = await startMember({ kind, name: 'compat', clientPort, peerPort });
  const out: RunResult[] = [];
  try {
    for (const s of STEPS) out.push(await etcdctl(m, s.args, s.input));
  } finally {
    await stopMember(m);
  }
  return out;
}

afterAll(stopAll);

test('etcdctl prints the same for every key-value command on both servers', async () => {
  const { theirs, ours } = await onBothServers(session);
  // Anchors, so that two servers failing alike cannot pass: most steps succeed and known values show.
  expect(theirs.filter((r) => r.code === 0).length).toBeGreaterThan(45);
  expect(ours[4]!.stdout).toBe('k1\nv1b\n');
  expect(ours[25]!.stderr).toContain('etcdserver: mvcc: required revision is a future revision');
  // etcdctl's own client log lines carry a timestamp and a random client id: mask just those.
  const mask = (r: RunResult | undefined): RunResult | undefined =>
    r && { ...r, stderr: r.stderr.replace(/"ts":"[^"]*"/g, '"ts":"T"').replace(/client-[0-9a-f-]{36}/g, 'client-ID') };
  for (let i = 0; i < STEPS.length; i++) {
    const label = `etcdctl ${STEPS[i]!.args.join(' ')}`;
    expect({ step: label, ...mask(ours[i]) }).toEqual({ step: label, ...mask(theirs[i]) });
  }
}, 180000);
