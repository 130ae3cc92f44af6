/**
 * Multi-process clusters of our server on 127.0.0.1 for end-to-end tests.
 */
import * as path from 'node:path';
import { Member, RunResult, etcdctl, freePort, sleep, startMember, stopMember, tmpDir } from './harness';

/** A cluster member's fixed identity (ports and dirs survive restarts). */
export interface Slot {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  member: Member | undefined;
}

/** A running cluster. */
export class Cluster {
  constructor(
    readonly slots: Slot[],
    readonly initialCluster: string,
    readonly extraArgs: string[],
    readonly kind: 'ours' | 'etcd' = 'ours',
  ) {}

  /** Comma-separated client endpoints of the running members. */
  endpoints(): string {
    return this.slots.filter((s) => s.member !== undefined).map((s) => `127.0.0.1:${s.clientPort}`).join(',');
  }

  /** Starts (or restarts) the member in `slot`. */
  async start(slot: Slot, state: 'new' | 'existing' = 'new', initialCluster = this.initialCluster): Promise<Member> {
    slot.member = await startMember({
      kind: this.kind,
      name: slot.name,
      clientPort: slot.clientPort,
      peerPort: slot.peerPort,
      dataDir: slot.dataDir,
      extraArgs: ['--initial-cluster', initialCluster, '--initial-cluster-state', state, ...this.extraArgs],
      waitReady: false,
    });
    return slot.member;
  }

  /** kill -9 the member in `slot`. */
  async kill(slot: Slot): Promise<void> {
    if (slot.member === undefined) return;
    await stopMember(slot.member, 'SIGKILL');
    slot.member = undefined;
  }

  /** Runs etcdctl against every running member. */
  ctl(args: string[], input?: string): Promise<RunResult> {
    return etcdctl(this.endpoints(), args, input);
  }

  /** The slot whose member is the leader, according to `endpoint status`. */
  async leader(): Promise<Slot | undefined> {
    const r = await etcdctl(this.endpoints(), ['endpoint', 'status', '-w', 'json']);
    if (r.code !== 0 && r.stdout === '') return undefined;
    try {
      const list = JSON.parse(r.stdout) as { Endpoint: string; Status: { header: { member_id: number | string }; leader: number | string } }[];
      for (const e of list) {
        if (String(e.Status.header.member_id) === String(e.Status.leader)) {
          return this.slots.find((s) => e.Endpoint.endsWith(`:${s.clientPort}`));
        }
      }
    } catch {
      return undefined;
    }
    return undefined;
  }

  /** Waits until some member reports itself leader. */
  async waitLeader(timeoutMs = 20000): Promise<Slot> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.leader();
      if (l !== undefined) return l;
      await sleep(200);
    }
    throw new Error('no leader elected');
  }
}

/** Starts an n-member cluster and waits for a leader. */
export async function startCluster(n: number, extraArgs: string[] = [], kind: 'ours' | 'etcd' = 'ours'): Promise<Cluster> {
  const dir = tmpDir('cluster-');
  const slots: Slot[] = [];
  for (let i = 1; i <= n; i++) {
    slots.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(dir, `m${i}.etcd`), member: undefined });
  }
  const ic = slots.map((s) => `${s.name}=http://127.0.0.1:${s.peerPort}`).join(',');
  const c = new Cluster(slots, ic, extraArgs, kind);
  await Promise.all(slots.map((s) => c.start(s)));
  await c.waitLeader();
  return c;
}
