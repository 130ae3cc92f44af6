/**
 * The fault schedule of a chaos run: one fault at a time, each held for a few seconds and then
 * healed, separated by quiet periods. Every choice (which fault, which member, how long) comes
 * from the run's seeded generator, so a seed reproduces the schedule; which member is the leader
 * at a given moment still depends on timing.
 */
import * as fs from 'node:fs';
import type { ChaosCluster, Slot } from './cluster';
import { sleep } from './cluster';
import { CallFailure, Msg, bytes, idString } from './grpc';
import type { Random } from './rng';

/** The kinds of fault. */
export const FAULT_KINDS = ['kill', 'leader-kill', 'pause', 'partition', 'delay', 'drop', 'member', 'snapshot'] as const;

/** One kind of fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** One injected fault. */
export interface FaultRecord {
  /** When it started, ms since the run's origin. */
  readonly at: number;
  /** How long it was held, ms. */
  readonly heldMs: number;
  readonly kind: FaultKind;
  /** Sub-kind (partition shape), or "" */
  readonly shape: string;
  readonly detail: string;
  /** False when the fault could not be injected (say, no leader to kill). */
  readonly injected: boolean;
}

/** What the injector needs besides the cluster. */
export interface FaultOptions {
  readonly kinds: readonly FaultKind[];
  readonly random: Random;
  /** Milliseconds since the run's origin. */
  readonly now: () => number;
  /** Entries that force a snapshot on a lagging member (snapshot-count + catch-up entries + margin). */
  readonly snapshotFill: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** Runs faults against a cluster. */
export class FaultInjector {
  readonly records: FaultRecord[] = [];
  private stopping = false;
  private fillSeq = 0;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly opts: FaultOptions,
  ) {}

  /** Injects faults until `untilMs` (since the origin), then heals everything. */
  async run(untilMs: number): Promise<void> {
    const r = this.opts.random;
    await sleep(r.int(1500, 2500));
    while (!this.stopping && this.opts.now() < untilMs) {
      const kind = r.pick(this.opts.kinds);
      const hold = r.int(2000, 5000);
      const remaining = untilMs - this.opts.now();
      await this.inject(kind, Math.round(Math.max(500, Math.min(hold, remaining))));
      await this.healAll();
      if (this.opts.now() >= untilMs) break;
      await sleep(Math.min(r.int(1000, 3000), Math.max(0, untilMs - this.opts.now())));
    }
    await this.healAll();
  }

  /** Asks the schedule to stop after the current fault. */
  stop(): void {
    this.stopping = true;
  }

  /** Removes every network fault, resumes paused members and restarts stopped ones. */
  async healAll(): Promise<void> {
    this.cluster.proxy.healAll();
    for (const s of this.cluster.slots) {
      this.cluster.resume(s);
      if (!this.cluster.running(s)) this.cluster.restart(s);
    }
    await sleep(10);
  }

  private record(kind: FaultKind, shape: string, at: number, detail: string, injected = true): void {
    const rec: FaultRecord = { at, heldMs: this.opts.now() - at, kind, shape, detail, injected };
    this.records.push(rec);
    this.opts.log(`  ${(at / 1000).toFixed(1)}s ${kind}${shape !== '' ? `/${shape}` : ''}: ${detail}${injected ? '' : ' (not injected)'}`);
  }

  private running(): Slot[] {
    return this.cluster.slots.filter((s) => this.cluster.running(s));
  }

  private async inject(kind: FaultKind, hold: number): Promise<void> {
    const r = this.opts.random;
    const c = this.cluster;
    const at = this.opts.now();
    const n = c.slots.length;
    switch (kind) {
      case 'kill':
      case 'leader-kill': {
        const victim = kind === 'kill' ? r.pick(c.slots) : await c.leader();
        if (victim === undefined) return this.record(kind, '', at, 'no leader known', false);
        await c.kill(victim);
        await sleep(hold);
        c.restart(victim);
        return this.record(kind, '', at, `kill -9 ${victim.name}, restarted after ${hold} ms`);
      }
      case 'pause': {
        // Draw first, so the schedule's random sequence never depends on timing.
        const wantLeader = r.float() < 0.5;
        const fallback = r.pick(c.slots);
        const leader = wantLeader ? await c.leader() : undefined;
        const victim = leader ?? fallback;
        c.pause(victim);
        await sleep(hold);
        c.resume(victim);
        return this.record(kind, '', at, `SIGSTOP ${victim.name}${leader !== undefined ? ' (leader)' : ''} for ${hold} ms`);
      }
      case 'partition': {
        const shapes = n >= 3 ? ['majority-minority', 'isolate-leader', 'bridge', 'one-way'] : ['majority-minority', 'one-way'];
        const shape = r.pick(shapes);
        const order = r.shuffle(c.slots.map((s) => s.index));
        let detail: string;
        const names = (xs: readonly number[]): string => xs.map((i) => c.slots[i]!.name).join(',');
        if (shape === 'isolate-leader') {
          const l = await c.leader();
          const alone = l?.index ?? order[0]!;
          const rest = c.slots.map((s) => s.index).filter((i) => i !== alone);
          c.proxy.partition([alone], rest);
          detail = `${names([alone])}${l !== undefined ? ' (leader)' : ''} | ${names(rest)}`;
        } else if (shape === 'bridge') {
          // Two halves that only the bridge member connects.
          const bridge = order[0]!;
          const rest = order.slice(1);
          const half = Math.ceil(rest.length / 2);
          const a = rest.slice(0, half);
          const b = rest.slice(half);
          c.proxy.partition(a, b);
          detail = `${names(a)} | ${names(b)}, bridged by ${names([bridge])}`;
        } else {
          const minority = r.int(1, Math.max(1, Math.floor((n - 1) / 2)));
          const a = order.slice(0, minority);
          const b = order.slice(minority);
          if (shape === 'one-way') {
            const fromMinority = r.float() < 0.5;
            c.proxy.partition(fromMinority ? a : b, fromMinority ? b : a, true);
            detail = fromMinority ? `${names(a)} -/-> ${names(b)} (one way)` : `${names(b)} -/-> ${names(a)} (one way)`;
          } else {
            c.proxy.partition(a, b);
            detail = `${names(a)} | ${names(b)}`;
          }
        }
        await sleep(hold);
        c.proxy.healAll();
        return this.record(kind, shape, at, `${detail} for ${hold} ms`);
      }
      case 'delay': {
        const delay = r.int(30, 200);
        const jitter = r.int(0, Math.floor(delay / 2));
        for (const a of c.slots) for (const b of c.slots) if (a !== b) c.proxy.setLink(a.index, b.index, { delayMs: delay, jitterMs: jitter });
        await sleep(hold);
        c.proxy.healAll();
        return this.record(kind, '', at, `every peer link delayed ${delay}±${jitter} ms for ${hold} ms`);
      }
      case 'drop': {
        const victim = r.pick(c.slots);
        const rate = r.int(2, 10) / 100;
        for (const s of c.slots) {
          if (s === victim) continue;
          c.proxy.setLink(victim.index, s.index, { dropRate: rate });
          c.proxy.setLink(s.index, victim.index, { dropRate: rate });
        }
        await sleep(hold);
        c.proxy.healAll();
        return this.record(kind, '', at, `${victim.name}'s links reset connections with probability ${rate} per chunk for ${hold} ms`);
      }
      case 'member':
        return this.replaceMember(at);
      case 'snapshot':
        return this.lagUntilSnapshot(at);
    }
  }

  /** Member remove, wipe, member add, start with --initial-cluster-state existing. */
  private async replaceMember(at: number): Promise<void> {
    const c = this.cluster;
    const r = this.opts.random;
    const victim = r.pick(c.slots);
    const pauseMs = r.int(500, 1500);
    if (this.running().length < c.slots.length) return this.record('member', '', at, 'not every member is running', false);
    const leader = await c.waitLeader(10000);
    if (leader === undefined) return this.record('member', '', at, 'no leader', false);
    await c.refreshIds();
    const via = c.slots.filter((s) => s !== victim);
    if (victim.id === undefined) return this.record('member', '', at, `id of ${victim.name} unknown`, false);
    const removed = await this.adminCall(via, 'MemberRemove', { ID: victim.id });
    // A remove that timed out may still have taken effect (a retry then gets NOT_FOUND): ask.
    if (removed === undefined && !(await this.becomesAbsent(via, victim.id))) {
      return this.record('member', '', at, `MemberRemove ${victim.name} failed`, false);
    }
    await c.kill(victim);
    fs.rmSync(victim.dataDir, { recursive: true, force: true });
    await sleep(pauseMs);
    const added = await this.adminCall(via, 'MemberAdd', { peerURLs: [c.peerUrl(victim)] });
    if (added === undefined) {
      // Leave the member out rather than wedge the cluster; report it.
      return this.record('member', '', at, `removed ${victim.name}, but MemberAdd failed: the cluster runs one member short`, true);
    }
    const newId = idString((added.member as Msg | undefined)?.ID);
    victim.id = newId;
    c.proxy.setMemberId(newId, victim.index);
    victim.state = 'existing';
    c.restart(victim, c.initialCluster());
    const deadline = Date.now() + 30000;
    let up = false;
    while (Date.now() < deadline && !up) {
      up = (await c.status(victim)) !== undefined;
      if (!up) await sleep(300);
    }
    return this.record('member', '', at, `removed ${victim.name}${victim === leader ? ' (leader)' : ''}, wiped its data, re-added as ${newId}${up ? '' : ' (not answering after 30 s)'}`);
  }

  /** Partitions a follower, writes enough for a snapshot, heals, waits for it to catch up. */
  private async lagUntilSnapshot(at: number): Promise<void> {
    const c = this.cluster;
    const pick = this.opts.random.float();
    const leader = await c.waitLeader(10000);
    if (leader === undefined) return this.record('snapshot', '', at, 'no leader', false);
    const followers = c.slots.filter((s) => s !== leader && c.running(s));
    if (followers.length === 0) return this.record('snapshot', '', at, 'no follower', false);
    const lag = followers[Math.floor(pick * followers.length)]!;
    const logStart = fileSize(lag.logFile);
    c.proxy.partition(
      [lag.index],
      c.slots.filter((s) => s !== lag).map((s) => s.index),
    );
    const written = await this.fill(leader, this.opts.snapshotFill);
    const target = (await c.status(leader))?.applied ?? 0;
    c.proxy.healAll();
    const deadline = Date.now() + 60000;
    let caught = false;
    while (Date.now() < deadline && !caught) {
      const st = await c.status(lag);
      caught = st !== undefined && st.applied >= target;
      if (!caught) await sleep(300);
    }
    const log = readFrom(lag.logFile, logStart);
    const viaSnapshot = /installed state snapshot|applied snapshot|received and saved database snapshot|applying snapshot/i.test(log);
    return this.record(
      'snapshot',
      '',
      at,
      `${lag.name} cut off while ${written} entries were written; ${caught ? 'caught up' : 'did NOT catch up within 60 s'}${viaSnapshot ? ' by snapshot' : ' (no snapshot install in its log)'}`,
    );
  }

  /** Writes `n` puts on filler keys (outside the checked keys) through `leader`; returns how many succeeded. */
  private async fill(leader: Slot, n: number): Promise<number> {
    const client = this.cluster.client(leader);
    let next = 0;
    let ok = 0;
    // Without a leader every put fails after its deadline; give up rather than stall the schedule.
    const deadline = Date.now() + 60000;
    const worker = async (): Promise<void> => {
      while (next < n && Date.now() < deadline) {
        next++;
        const i = this.fillSeq++;
        try {
          await client.call('KV', 'Put', { key: bytes(`/chaos/fill/${i % 64}`), value: bytes(`f${i}`) }, 3000);
          ok++;
        } catch {
          await sleep(50);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => worker()));
    return ok;
  }

  /** True once the cluster no longer lists member `id` (asked for up to about 5 s). */
  private async becomesAbsent(via: readonly Slot[], id: string): Promise<boolean> {
    for (let i = 0; i < 10; i++) {
      if ((await this.memberIds(via))?.has(id) === false) return true;
      await sleep(500);
    }
    return false;
  }

  /** The member ids the cluster lists now, through the first of `via` that answers. */
  private async memberIds(via: readonly Slot[]): Promise<Set<string> | undefined> {
    const r = await this.adminCall(via, 'MemberList', { linearizable: true });
    if (r === undefined) return undefined;
    return new Set(((r.members ?? []) as Msg[]).map((m) => idString(m.ID)));
  }

  private async adminCall(via: readonly Slot[], method: string, req: Msg): Promise<Msg | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      for (const s of via) {
        if (!this.cluster.running(s)) continue;
        try {
          return await this.cluster.client(s).call('Cluster', method, req, 5000);
        } catch (e) {
          if (e instanceof CallFailure && e.code === 5 && method === 'MemberRemove') return undefined;
        }
      }
      await sleep(500);
    }
    return undefined;
  }
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

function readFrom(f: string, offset: number): string {
  try {
    const fd = fs.openSync(f, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    fs.closeSync(fd);
    return buf.toString('utf8');
  } catch {
    return '';
  }
}
