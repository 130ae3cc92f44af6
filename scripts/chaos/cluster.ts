/**
 * A cluster of real server processes (ours or etcd) on 127.0.0.1 whose peer links all pass
 * through a FaultProxy: each member advertises its proxy port, the proxy forwards to the member's
 * real peer port. Members can be killed, paused, restarted, removed and re-added.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EtcdClient, Msg, idString, num } from './grpc';
import { FaultProxy } from './proxy';

/** Which server to run. */
export type Target = 'ours' | 'etcd';

/** One member's fixed identity (ports and data dir survive restarts). */
export interface Slot {
  readonly index: number;
  readonly name: string;
  readonly clientPort: number;
  /** The member's real --listen-peer-urls port. */
  readonly peerPort: number;
  /** The proxy port it advertises (--initial-advertise-peer-urls). */
  readonly proxyPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  proc: ChildProcess | undefined;
  paused: boolean;
  /** --initial-cluster-state for the next start. */
  state: 'new' | 'existing';
  /** Member id (decimal), once known. */
  id: string | undefined;
  /** How many times the member was started. */
  starts: number;
}

/** Options of a cluster. */
export interface ClusterOptions {
  readonly target: Target;
  readonly members: number;
  readonly dir: string;
  readonly token: string;
  /** Entries between snapshots. */
  readonly snapshotCount: number;
  /** Entries kept behind a snapshot (ours only: etcd 3.4 keeps 5000). */
  readonly catchupEntries: number;
  /** Server binary for etcd; compiled entry point for ours. */
  readonly etcdBinary: string;
  readonly ourEntry: string;
  readonly random: () => number;
}

import { freePort } from '../free-port';

export { freePort };

/** Sleeps for ms milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A running cluster. */
export class ChaosCluster {
  readonly slots: Slot[] = [];
  readonly proxy: FaultProxy;
  private readonly admin = new Map<number, EtcdClient>();

  private constructor(readonly opts: ClusterOptions) {
    this.proxy = new FaultProxy(opts.random);
  }

  /** Allocates ports, starts the proxies and every member. */
  static async start(opts: ClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster(opts);
    fs.mkdirSync(opts.dir, { recursive: true });
    for (let i = 0; i < opts.members; i++) {
      const name = `m${i + 1}`;
      const slot: Slot = {
        index: i,
        name,
        clientPort: await freePort(),
        peerPort: await freePort(),
        proxyPort: await freePort(),
        dataDir: path.join(opts.dir, `${name}.data`),
        logFile: path.join(opts.dir, `${name}.log`),
        proc: undefined,
        paused: false,
        state: 'new',
        id: undefined,
        starts: 0,
      };
      c.slots.push(slot);
      await c.proxy.listen(i, slot.proxyPort, slot.peerPort);
    }
    for (const s of c.slots) c.spawn(s);
    return c;
  }

  /** The URL the member advertises to its peers (the proxy). */
  peerUrl(s: Slot): string {
    return `http://127.0.0.1:${s.proxyPort}`;
  }

  /** The client endpoint of a member (host:port). */
  endpoint(s: Slot): string {
    return `127.0.0.1:${s.clientPort}`;
  }

  /** --initial-cluster over `slots` (every slot by default). */
  initialCluster(slots: readonly Slot[] = this.slots): string {
    return slots.map((s) => `${s.name}=${this.peerUrl(s)}`).join(',');
  }

  private args(s: Slot, initialCluster: string): string[] {
    const client = `http://127.0.0.1:${s.clientPort}`;
    const args = [
      '--name', s.name,
      '--data-dir', s.dataDir,
      '--listen-client-urls', client,
      '--advertise-client-urls', client,
      '--listen-peer-urls', `http://127.0.0.1:${s.peerPort}`,
      '--initial-advertise-peer-urls', this.peerUrl(s),
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', s.state,
      '--initial-cluster-token', this.opts.token,
      '--snapshot-count', String(this.opts.snapshotCount),
      '--experimental-watch-progress-notify-interval', '2s',
    ];
    if (this.opts.target === 'ours') args.push('--experimental-snapshot-catchup-entries', String(this.opts.catchupEntries));
    return args;
  }

  private spawn(s: Slot, initialCluster: string = this.initialCluster()): void {
    const args = this.args(s, initialCluster);
    const cmd = this.opts.target === 'ours' ? process.execPath : this.opts.etcdBinary;
    const argv = this.opts.target === 'ours' ? [this.opts.ourEntry, ...args] : args;
    const log = fs.openSync(s.logFile, 'a');
    fs.writeSync(log, `\n===== start ${s.starts + 1} at ${new Date().toISOString()}: ${[cmd, ...argv].join(' ')}\n`);
    const proc = spawn(cmd, argv, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    s.proc = proc;
    s.paused = false;
    s.starts++;
    proc.on('exit', () => {
      if (s.proc === proc) s.proc = undefined;
    });
  }

  /** True when the member's process is running (possibly paused). */
  running(s: Slot): boolean {
    return s.proc !== undefined && s.proc.exitCode === null && s.proc.signalCode === null;
  }

  /** kill -9 and wait for the exit. */
  async kill(s: Slot): Promise<void> {
    const p = s.proc;
    if (p === undefined) return;
    if (p.exitCode === null && p.signalCode === null) {
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    }
    s.proc = undefined;
    s.paused = false;
  }

  /** SIGSTOP. */
  pause(s: Slot): void {
    if (this.running(s) && !s.paused) {
      s.proc!.kill('SIGSTOP');
      s.paused = true;
    }
  }

  /** SIGCONT. */
  resume(s: Slot): void {
    if (this.running(s) && s.paused) {
      s.proc!.kill('SIGCONT');
      s.paused = false;
    }
  }

  /** Starts a member that is down (same data dir and flags). */
  restart(s: Slot, initialCluster?: string): void {
    if (this.running(s)) return;
    this.spawn(s, initialCluster);
  }

  /** An admin client for a member (kept open). */
  client(s: Slot): EtcdClient {
    let c = this.admin.get(s.index);
    if (c === undefined) {
      c = new EtcdClient(this.endpoint(s));
      this.admin.set(s.index, c);
    }
    return c;
  }

  /** Maintenance.Status of a member, or undefined when it does not answer in time. */
  async status(s: Slot, timeoutMs = 1000): Promise<{ id: string; leader: string; raftIndex: number; applied: number; revision: number } | undefined> {
    if (!this.running(s) || s.paused) return undefined;
    try {
      const r = await this.client(s).call('Maintenance', 'Status', {}, timeoutMs);
      const h = (r.header ?? {}) as Msg;
      return { id: idString(h.member_id), leader: idString(r.leader), raftIndex: num(r.raftIndex), applied: num(r.raftAppliedIndex), revision: num(h.revision) };
    } catch {
      return undefined;
    }
  }

  /** Learns member ids (MemberList) and tells the proxy. */
  async refreshIds(): Promise<void> {
    for (const s of this.slots) {
      if (!this.running(s) || s.paused) continue;
      try {
        const r = await this.client(s).call('Cluster', 'MemberList', {}, 2000);
        for (const m of (r.members ?? []) as Msg[]) {
          const urls = (m.peerURLs ?? []) as string[];
          const slot = this.slots.find((x) => urls.includes(this.peerUrl(x)));
          if (slot !== undefined) {
            slot.id = idString(m.ID);
            this.proxy.setMemberId(slot.id, slot.index);
          }
        }
        return;
      } catch {
        // try the next member
      }
    }
  }

  /** The slot of the current leader, if some running member names one we know. */
  async leader(): Promise<Slot | undefined> {
    const sts = await Promise.all(this.slots.map((s) => this.status(s)));
    for (const st of sts) {
      if (st === undefined || st.leader === '0') continue;
      const s = this.slots.find((x) => x.id === st.leader);
      if (s !== undefined && this.running(s)) return s;
    }
    return undefined;
  }

  /** Waits until a leader is known (or the timeout passes). */
  async waitLeader(timeoutMs: number): Promise<Slot | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      await this.refreshIds();
      const l = await this.leader();
      if (l !== undefined) return l;
      await sleep(250);
    }
    return undefined;
  }

  /** Stops every member and proxy; closes admin clients. */
  async stop(): Promise<void> {
    for (const c of this.admin.values()) c.close();
    this.admin.clear();
    for (const s of this.slots) {
      this.resume(s);
      await this.kill(s);
    }
    await this.proxy.close();
  }
}
