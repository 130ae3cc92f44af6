/**
 * etcdctl watch against the real etcd and our server: the same history and the same live writes
 * must print the same events, for key, range, prefix, --rev (history), --prev-kv, JSON output and
 * interactive mode.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { Member, etcdctl, freePort, requireTool, sleep, startMember, stopAll, stopMember } from './harness';

afterAll(stopAll);

const WATCHES: string[][] = [
  ['watch', 'a'],
  ['watch', 'a', '--rev', '1', '--prev-kv'],
  ['watch', 'p', '--prefix', '-w', 'json'],
  ['watch', 'p/', '--prefix', '--rev', '3', '--prev-kv', '-w', 'json'],
  ['watch', 'a', 'q'],
  ['watch', '', '--prefix', '--rev', '2'],
];

interface Watching {
  proc: ChildProcess;
  out: string[];
}

function startWatch(m: Member, args: string[], stdin?: string): Watching {
  const proc = spawn(requireTool('etcdctl'), [`--endpoints=${m.endpoint}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => out.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => out.push(`[stderr] ${d.toString()}`));
  if (stdin !== undefined) proc.stdin?.write(stdin);
  return { proc, out };
}

async function finish(w: Watching): Promise<string> {
  // Interrupt first: closing stdin first would race etcdctl -i into an EOF error.
  const closed = new Promise((r) => w.proc.once('close', r));
  w.proc.kill('SIGINT');
  await closed;
  w.proc.stdin?.destroy();
  return w.out.join('');
}

async function session(kind: 'ours' | 'etcd', clientPort: number, peerPort: number): Promise<string[]> {
  const m = await startMember({ kind, name: 'watch', clientPort, peerPort });
  try {
    for (const args of [['put', 'a', '1'], ['put', 'a', '2'], ['del', 'a'], ['put', 'p/x', '1'], ['put', 'pz', '0']]) {
      expect((await etcdctl(m, args)).code).toBe(0);
    }
    const watchers = WATCHES.map((args) => startWatch(m, args));
    const interactive = startWatch(m, ['watch', '-i'], 'watch p --prefix --prev-kv\n');
    await sleep(1500);
    const txn = 'value("a") = "nope"\n\nput x 1\n\nput a 3\nput p/y 2\ndel p/x\n\n';
    const writes: [string[], string?][] = [[['put', 'a', '3']], [['put', 'p/y', '2']], [['txn'], txn], [['del', 'p', '--prefix']], [['put', 'b', '4']]];
    for (const [args, input] of writes) expect((await etcdctl(m, args, input)).code).toBe(0);
    await sleep(1500);
    const outs: string[] = [];
    for (const w of [...watchers, interactive]) outs.push(await finish(w));
    return outs;
  } finally {
    await stopMember(m);
  }
}

test('etcdctl watch prints the same events from both servers', async () => {
  requireTool('etcd');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const theirs = await session('etcd', clientPort, peerPort);
  const ours = await session('ours', clientPort, peerPort);
  const labels = [...WATCHES.map((w) => w.join(' ')), 'watch -i'];
  for (let i = 0; i < labels.length; i++) {
    expect({ watch: labels[i], out: ours[i] }).toEqual({ watch: labels[i], out: theirs[i] });
  }
  // Anchors: events really arrived.
  expect(ours[1]).toContain('PUT\na\n1\n');
  expect(ours[2]).toContain('"Events"');
  expect(ours[5]!.split('\n').filter((l) => l === 'DELETE').length).toBeGreaterThanOrEqual(3);
}, 120000);
