/**
 * etcdctl watch against the real etcd and our server: the same history and the same live writes
 * must print the same events, for key, range, prefix, --rev (history), --prev-kv, JSON output and
 * interactive mode, and the same progress notifications for the interactive `progress` command.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { Member, etcdctl, onBothServers, requireTool, sleep, startMember, stopAll, stopMember } from './harness';

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
  const { theirs, ours } = await onBothServers(session);
  const labels = [...WATCHES.map((w) => w.join(' ')), 'watch -i'];
  for (let i = 0; i < labels.length; i++) {
    expect({ watch: labels[i], out: ours[i] }).toEqual({ watch: labels[i], out: theirs[i] });
  }
  // Anchors: events really arrived.
  expect(ours[1]).toContain('PUT\na\n1\n');
  expect(ours[2]).toContain('"Events"');
  expect(ours[5]!.split('\n').filter((l) => l === 'DELETE').length).toBeGreaterThanOrEqual(3);
}, 120000);

/** Waits until `w`'s output satisfies `pred`, for at most `ms` (a miss shows up in the comparison). */
async function outputUntil(w: Watching, pred: (out: string) => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred(w.out.join('')) && Date.now() < deadline) await sleep(50);
}

function progressLines(out: string): number {
  return out.split('\n').filter((l) => l.startsWith('progress notify: ')).length;
}

/**
 * Interactive watch sessions that ask for progress: `progress` before any watch, with one watch,
 * after a put from another client and with two watches on the stream (both print it), in simple and
 * in JSON output. Every step waits for the output of the previous one, so both servers see the
 * same requests in the same order and at the same revisions.
 */
async function progressSession(kind: 'ours' | 'etcd', clientPort: number, peerPort: number): Promise<[string, string]> {
  const m = await startMember({ kind, name: 'watch', clientPort, peerPort });
  const procs: Watching[] = [];
  try {
    const put = async (k: string, v: string): Promise<void> => expect((await etcdctl(m, ['put', k, v])).code).toBe(0);
    await put('a', '1'); // revision 2

    const simple = startWatch(m, ['watch', '-i'], 'progress\n');
    procs.push(simple);
    await sleep(500); // no watch yet: nothing to print
    simple.proc.stdin?.write('watch k\nprogress\n');
    await outputUntil(simple, (o) => progressLines(o) >= 1);
    await put('k', 'v'); // revision 3
    await outputUntil(simple, (o) => o.includes('PUT\nk\nv\n'));
    simple.proc.stdin?.write('progress\n');
    await outputUntil(simple, (o) => progressLines(o) >= 2);
    simple.proc.stdin?.write('watch p --prefix\nprogress\n');
    await outputUntil(simple, (o) => progressLines(o) >= 4);
    await put('p1', 'x'); // revision 4
    await outputUntil(simple, (o) => o.includes('PUT\np1\nx\n'));
    await put('k', 'v2'); // revision 5
    await outputUntil(simple, (o) => o.includes('PUT\nk\nv2\n'));
    simple.proc.stdin?.write('progress\n');
    await outputUntil(simple, (o) => progressLines(o) >= 6);

    // JSON output prints the whole progress response, header included.
    const json = startWatch(m, ['watch', '-i', '-w', 'json'], 'watch k\nprogress\n');
    procs.push(json);
    await outputUntil(json, (o) => progressLines(o) >= 1 && o.endsWith('\n'));
    await put('k', 'v3'); // revision 6, seen by both sessions
    await outputUntil(json, (o) => o.split('\n').length >= 4);
    await outputUntil(simple, (o) => o.includes('PUT\nk\nv3\n'));
    json.proc.stdin?.write('progress\n');
    await outputUntil(json, (o) => progressLines(o) >= 2 && o.split('\n').length >= 6);
    await sleep(300); // nothing else may follow
    return [await finish(simple), await finish(json)];
  } finally {
    for (const w of procs) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await stopMember(m);
  }
}

test('etcdctl watch -i: progress prints the same notifications and revisions from both servers', async () => {
  const { theirs, ours } = await onBothServers(progressSession);
  // Same member name and URLs on both: cluster id, member id and term agree, nothing is masked.
  expect({ output: 'simple', out: ours[0] }).toEqual({ output: 'simple', out: theirs[0] });
  expect({ output: 'json', out: ours[1] }).toEqual({ output: 'json', out: theirs[1] });
  // Anchors: the progress notifications really arrived, at the revisions of the session.
  expect(ours[0]).toBe(
    'progress notify: 2\nPUT\nk\nv\nprogress notify: 3\nprogress notify: 3\nprogress notify: 3\nPUT\np1\nx\nPUT\nk\nv2\nprogress notify: 5\nprogress notify: 5\nPUT\nk\nv3\n',
  );
  const json = ours[1].trimEnd().split('\n');
  expect(json.filter((l) => l.startsWith('progress notify: '))).toEqual(['progress notify: 5', 'progress notify: 6']);
  expect(json.filter((l) => l.startsWith('{')).map((l) => /"revision":(\d+)/.exec(l)![1])).toEqual(['5', '6', '6']);
  expect(json[1]).toContain('"Events":[]');
}, 60000);
