/**
 * Helpers for end-to-end tests: free ports, server processes (ours and the real etcd) in fresh data
 * dirs under the OS temp dir, and running the real etcdctl against them. Everything started is
 * stopped and removed by `stopAll()`.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** The repository root. */
export const ROOT = path.resolve(__dirname, '..', '..');
/** The compiled server entry point (`npm run build` makes it). */
export const SERVER_JS = path.join(ROOT, 'dist', 'src', 'main.js');

import { freePort } from '../../scripts/free-port';

export { freePort };

/** Path of a tool, or throws: a missing tool fails the test run instead of skipping it. */
export function requireTool(name: string): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  if (r.status !== 0 || p === '') throw new Error(`required tool "${name}" is not installed (apt-get install -y etcd-client etcd-server)`);
  return p;
}

/** One server process under test. */
export interface Member {
  kind: 'ours' | 'etcd';
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  endpoint: string;
  proc: ChildProcess;
  logs: string[];
  exited: Promise<number | null>;
}

const started: Member[] = [];
const tmpDirs: string[] = [];

/** A new temporary directory, removed by stopAll(). */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

/** Options for starting a member. */
export interface StartOptions {
  kind?: 'ours' | 'etcd';
  name?: string;
  clientPort?: number;
  peerPort?: number;
  dataDir?: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Wait until the member serves a read (default true; cluster members wait for a quorum instead). */
  waitReady?: boolean;
}

/** Starts a single-member server and waits until it serves requests. */
export async function startMember(o: StartOptions = {}): Promise<Member> {
  const kind = o.kind ?? 'ours';
  const name = o.name ?? 'default';
  const clientPort = o.clientPort ?? (await freePort());
  const peerPort = o.peerPort ?? (await freePort());
  const dataDir = o.dataDir ?? path.join(tmpDir(`${kind}-`), `${name}.etcd`);
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    ...(o.extraArgs?.includes('--initial-cluster') === true ? [] : ['--initial-cluster', `${name}=${peer}`]),
    ...(o.extraArgs ?? []),
  ];
  const cmd = kind === 'ours' ? process.execPath : requireTool('etcd');
  const argv = kind === 'ours' ? [SERVER_JS, ...args] : args;
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(o.env ?? {}) } });
  const logs: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const m: Member = { kind, name, clientPort, peerPort, dataDir, endpoint: `127.0.0.1:${clientPort}`, proc, logs, exited };
  started.push(m);
  if (o.waitReady !== false) await waitReady(m);
  else await waitListening(m);
  return m;
}

/** Waits until `etcdctl get` answers on the member (or throws with its logs after 30 s). */
export async function waitReady(m: Member, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (m.proc.exitCode !== null || m.proc.signalCode !== null) throw new Error(`${m.kind} exited with ${m.proc.exitCode ?? m.proc.signalCode}:\n${m.logs.join('')}`);
    const r = await etcdctl(m, ['get', 'readiness-probe', '--command-timeout=1s', '--dial-timeout=1s']);
    if (r.code === 0) return;
    await sleep(100);
  }
  throw new Error(`${m.kind} did not become ready:\n${m.logs.join('')}`);
}

/** Waits until the member accepts TCP connections on its client port. */
export async function waitListening(m: Member, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (m.proc.exitCode !== null || m.proc.signalCode !== null) throw new Error(`${m.kind} exited with ${m.proc.exitCode ?? m.proc.signalCode}:\n${m.logs.join('')}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(m.clientPort, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${m.kind} did not listen:\n${m.logs.join('')}`);
}

/**
 * Runs the same session against the real etcd and then against ours, both on the same client and
 * peer ports (so member and cluster ids agree), and returns both results.
 */
export async function onBothServers<T>(session: (kind: 'ours' | 'etcd', clientPort: number, peerPort: number) => Promise<T>): Promise<{ theirs: T; ours: T }> {
  requireTool('etcd');
  const clientPort = await freePort();
  const peerPort = await freePort();
  const theirs = await session('etcd', clientPort, peerPort);
  const ours = await session('ours', clientPort, peerPort);
  return { theirs, ours };
}

/** Sleeps for ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The result of running a command. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real etcdctl (API v3) against a member. */
export function etcdctl(m: Member | string, args: string[], input?: string | Buffer): Promise<RunResult> {
  const endpoint = typeof m === 'string' ? m : m.endpoint;
  return run(requireTool('etcdctl'), [`--endpoints=${endpoint}`, ...args], input, { ETCDCTL_API: '3' });
}

/** Runs a command to completion, collecting its output. */
export function run(cmd: string, args: string[], input?: string | Buffer, env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    // A command that exits without reading its input closes the pipe: that is not an error here.
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

/** Stops a member: SIGTERM (or the given signal) and waits for exit. */
export async function stopMember(m: Member, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill(signal);
  const t = setTimeout(() => m.proc.kill('SIGKILL'), 10000);
  const code = await m.exited;
  clearTimeout(t);
  const i = started.indexOf(m);
  if (i >= 0) started.splice(i, 1);
  return code;
}

/** Stops every member still running and removes temporary directories. */
export async function stopAll(): Promise<void> {
  for (const m of [...started]) await stopMember(m, 'SIGKILL');
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}
