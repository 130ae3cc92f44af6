/**
 * Starting and stopping the servers under test: ours (`node dist/src/main.js`) and the real etcd,
 * single members or 3-member clusters, with the same flags, on free 127.0.0.1 ports and in fresh
 * data dirs under the OS temp dir. Also external commands with a time limit and peak RSS.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { rangeOnce } from './grpc-clients';
import { freePort } from '../free-port';

/** Which server implementation. */
export type ServerKind = 'etcd' | 'ours';

/** The repository root (scripts/bench is compiled to dist/scripts/bench). */
export const ROOT = findRoot(__dirname);

function findRoot(from: string): string {
  let d = from;
  for (;;) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'proto'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new Error(`cannot find the repository root above ${from}`);
    d = up;
  }
}

/** Our compiled server. */
export const SERVER_JS = path.join(ROOT, 'dist', 'src', 'main.js');

export { freePort };

/** Sleeps for `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Absolute path of a command on PATH, or `null`. */
export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v "${cmd}"`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : null;
}

/**
 * Makes sure `etcd` and `etcdctl` are installed, installing Debian's etcd-server and etcd-client
 * with apt-get when either is missing. Throws with an explanation when that is not possible.
 */
export function ensureEtcdInstalled(log: (s: string) => void): { etcd: string; etcdctl: string } {
  let etcd = which('etcd');
  let etcdctl = which('etcdctl');
  if (etcd === null || etcdctl === null) {
    log('etcd or etcdctl is missing: installing etcd-server and etcd-client with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const sudo = process.getuid !== undefined && process.getuid() !== 0 ? ['sudo', '-n'] : [];
    const run = (args: string[]): number | null => {
      const cmd = [...sudo, 'apt-get', ...args];
      return spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env }).status;
    };
    const ok = run(['update', '-qq']) === 0 && run(['install', '-y', '-qq', 'etcd-server', 'etcd-client']) === 0;
    etcd = which('etcd');
    etcdctl = which('etcdctl');
    if (!ok || etcd === null || etcdctl === null) {
      throw new Error(
        'the benchmark needs the real etcd and etcdctl, and installing them failed; ' +
          'install them by hand with `apt-get install -y etcd-server etcd-client` (as root) and run again',
      );
    }
  }
  return { etcd, etcdctl };
}

/** One running server process. */
export interface Member {
  kind: ServerKind;
  name: string;
  /** "127.0.0.1:port" of the client listener. */
  endpoint: string;
  clientPort: number;
  peerUrl: string;
  dataDir: string;
  args: string[];
  proc: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string | null>;
  logFile: string;
}

/** A started server: one member or a cluster. */
export interface Deployment {
  kind: ServerKind;
  members: Member[];
  /** Comma-separated client endpoints of every member. */
  endpoints: string;
  /** The temp directory holding every member's data dir and log; removed by `stop()`. */
  baseDir: string;
}

/** Where etcd and etcdctl live (filled in by `ensureEtcdInstalled`). */
export const tools = { etcd: 'etcd', etcdctl: 'etcdctl' };

function spawnMember(kind: ServerKind, name: string, dataDir: string, args: string[], logFile: string, clientPort: number, peerUrl: string): Member {
  const fd = fs.openSync(logFile, 'a');
  const cmd = kind === 'ours' ? process.execPath : tools.etcd;
  const argv = kind === 'ours' ? [SERVER_JS, ...args] : args;
  const proc = spawn(cmd, argv, { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const exited = new Promise<number | string | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(code ?? signal));
    proc.once('error', () => resolve('spawn-error'));
  });
  return { kind, name, endpoint: `127.0.0.1:${clientPort}`, clientPort, peerUrl, dataDir, args, proc, exited, logFile };
}

/**
 * Starts `size` members of the given server (1 = a single member) with identical flags apart from
 * the binary: name, data dir, client and peer URLs, `--initial-cluster`, `--initial-cluster-token`.
 * Waits until every member answers a linearizable get. Throws (after stopping what it started)
 * when a member exits or is not ready within `readyTimeoutMs`.
 */
export async function startDeployment(kind: ServerKind, size: number, readyTimeoutMs = 60000): Promise<Deployment> {
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-`));
  const specs: { name: string; clientPort: number; peerPort: number }[] = [];
  for (let i = 0; i < size; i++) {
    specs.push({ name: size === 1 ? 'default' : `m${i + 1}`, clientPort: await freePort(), peerPort: await freePort() });
  }
  const cluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  const members = specs.map((s) => {
    const client = `http://127.0.0.1:${s.clientPort}`;
    const peer = `http://127.0.0.1:${s.peerPort}`;
    const dataDir = path.join(baseDir, `${s.name}.etcd`);
    const args = [
      '--name', s.name, '--data-dir', dataDir,
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', cluster, '--initial-cluster-token', 'bench-cluster', '--initial-cluster-state', 'new',
    ];
    return spawnMember(kind, s.name, dataDir, args, path.join(baseDir, `${s.name}.log`), s.clientPort, peer);
  });
  const d: Deployment = { kind, members, endpoints: members.map((m) => m.endpoint).join(','), baseDir };
  try {
    await Promise.all(members.map((m) => waitReady(m, readyTimeoutMs)));
  } catch (e) {
    await stopDeployment(d);
    throw e;
  }
  return d;
}

/** The last `n` characters of a member's log, for error messages. */
export function logTail(m: Member, n = 2000): string {
  try {
    const s = fs.readFileSync(m.logFile, 'utf8');
    return s.slice(-n);
  } catch {
    return '';
  }
}

/**
 * Waits until the member answers a linearizable Range (polling every `pollMs`). Returns the time
 * waited in ms. Throws if the process exits or the deadline passes.
 */
export async function waitReady(m: Member, timeoutMs: number, pollMs = 20): Promise<number> {
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    if (m.proc.exitCode !== null || m.proc.signalCode !== null) {
      throw new Error(`${m.kind} member ${m.name} exited (${m.proc.exitCode ?? m.proc.signalCode}) before it was ready:\n${logTail(m)}`);
    }
    if (await rangeOnce(m.endpoint, 'bench-readiness-probe', Math.max(200, pollMs * 10))) return performance.now() - t0;
    await sleep(pollMs);
  }
  throw new Error(`${m.kind} member ${m.name} was not ready within ${timeoutMs} ms:\n${logTail(m)}`);
}

/** Stops a member with SIGTERM (SIGKILL after `graceMs`) and waits for it to exit. */
export async function stopMember(m: Member, graceMs = 15000): Promise<void> {
  if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGTERM');
  const t = setTimeout(() => m.proc.kill('SIGKILL'), graceMs);
  await m.exited;
  clearTimeout(t);
}

/** Stops every member and removes the deployment's directory. */
export async function stopDeployment(d: Deployment, keepData = false): Promise<void> {
  await Promise.all(d.members.map((m) => stopMember(m)));
  if (!keepData) fs.rmSync(d.baseDir, { recursive: true, force: true });
}

/**
 * Restarts a stopped member with its original flags (its data dir is kept) and returns the new
 * member together with the time in ms from spawn until it answered a get.
 */
export async function restartMember(m: Member, timeoutMs: number): Promise<{ member: Member; readyMs: number }> {
  const t0 = performance.now();
  const nm = spawnMember(m.kind, m.name, m.dataDir, m.args, m.logFile, m.clientPort, m.peerUrl);
  try {
    await waitReady(nm, timeoutMs, 10);
  } catch (e) {
    await stopMember(nm);
    throw e;
  }
  return { member: nm, readyMs: performance.now() - t0 };
}

/** Peak resident set size (VmHWM) of a process in bytes, or `null` when it cannot be read. */
export function peakRssBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmHWM:\s+(\d+) kB/m.exec(s);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let clockTicks: number | null = null;

/** CPU time (user + system) a process has used so far, in seconds, or `null` when it cannot be read. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  if (clockTicks === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const v = Number(r.stdout.trim());
    clockTicks = Number.isFinite(v) && v > 0 ? v : 100;
  }
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which is in parentheses and may contain spaces).
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / clockTicks : null;
  } catch {
    return null;
  }
}

/** The outcome of an external command. */
export interface CommandResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when the command was killed for exceeding its time limit. */
  timedOut: boolean;
  elapsedMs: number;
}

/** Runs a command to completion (killing it after `timeoutMs`), collecting its output. */
export function runCommand(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => {
      // Keep only the tail of stderr: the benchmark tool's gRPC logging can be chatty.
      err.push(d);
      if (err.length > 200) err.splice(0, err.length - 200);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout: '', stderr: String(e), timedOut: false, elapsedMs: performance.now() - t0 });
    });
    p.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        elapsedMs: performance.now() - t0,
      });
    });
  });
}
