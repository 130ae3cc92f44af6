/**
 * Scripted interaction tests: a small text format of commands, each followed by the trace it
 * must produce.
 *
 *     # a comment
 *     cluster voters=3 learners=4 checkquorum=true prevote=true election=10 heartbeat=1 seed=1
 *     ----
 *     ok
 *
 *     campaign 1
 *     ----
 *     ok
 *
 *     stabilize
 *     ----
 *     1->2 MsgPreVote term=2 log=1/4
 *     ...
 *     1: leader term=2 lead=1 commit=5 applied=5
 *
 * A block is a command line, a `----` line and the expected output up to the next blank line.
 * Commands (member numbers are small integers):
 *
 *   cluster voters=N [learners=a,b] [prevote=bool] [checkquorum=bool] [election=N] [heartbeat=N] [seed=N] [maxmsg=N] [inflight=N]
 *   campaign N | propose N DATA | propose-conf-change N add-node|add-learner|remove-node ID
 *   read-index N CTX | transfer-leader N TO | add-member N
 *   tick N|all [xK] [hold]  tick K times, settling the network after each round (hold: do not
 *                        settle, leave the work for the next deliver/stabilize); prints changed members
 *   deliver              one round: every member handles its Ready, then queued messages are delivered once
 *   stabilize [quiet]    rounds until nothing moves; prints delivered messages (unless quiet) and changed members
 *   partition A B | C D  isolate N  heal  crash N  restart N  compact N
 *   status [N...]   log N (persisted entries)   applied N   read-states N   progress N
 *
 * Members' state lines: "N: role term=T lead=L commit=C applied=A" (or "N: down").
 */
import { ConfChangeError, ProposalDroppedError } from '../../../src/raft/errors';
import type { ConfChangeType } from '../../../src/raft/types';
import { Cluster, bytes, describeEntry, id, str } from './harness';
import type { MemberOptions } from './harness';

/** One parsed block. */
export interface ScriptBlock {
  /** Comment and blank lines that precede the command (kept on rewrite). */
  leading: string[];
  command: string;
  expected: string[];
  /** 1-based line number of the command. */
  line: number;
}

/** Parses a script; trailing comments are returned separately. */
export function parseScript(text: string): { blocks: ScriptBlock[]; trailing: string[] } {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const blocks: ScriptBlock[] = [];
  let leading: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      leading.push(line);
      i++;
      continue;
    }
    const command = line.trim();
    const at = i + 1;
    i++;
    if (lines[i] !== '----') throw new Error(`line ${i + 1}: expected ---- after command "${command}"`);
    i++;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    blocks.push({ leading, command, expected, line: at });
    leading = [];
  }
  return { blocks, trailing: leading };
}

/** Renders blocks back to text (used by the rewrite mode). */
export function renderScript(blocks: { leading: string[]; command: string; expected: string[] }[], trailing: string[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    out.push(...b.leading, b.command, '----', ...b.expected);
  }
  out.push(...trailing);
  return out.join('\n') + '\n';
}

type Snapshot = Map<number, string>;

/** Executes commands against a fresh cluster and returns their outputs. */
export class ScriptRunner {
  private cluster: Cluster | undefined;

  private get c(): Cluster {
    if (this.cluster === undefined) throw new Error('no cluster: start with "cluster voters=N"');
    return this.cluster;
  }

  /** Runs one command and returns its output lines. */
  run(command: string): string[] {
    const [cmd, ...args] = command.split(/\s+/);
    const num = (k: number): number => {
      const v = Number(args[k]);
      if (!Number.isInteger(v)) throw new Error(`${cmd}: argument ${k + 1} must be a member number`);
      return v;
    };
    switch (cmd) {
      case 'cluster':
        return this.makeCluster(args);
      case 'campaign':
        this.c.node(num(0)).campaign();
        return ['ok'];
      case 'propose':
        return attempt(() => this.c.node(num(0)).propose(bytes(args.slice(1).join(' '))));
      case 'propose-conf-change':
        return attempt(() =>
          this.c.node(num(0)).proposeConfChange({ type: args[1] as ConfChangeType, nodeId: id(num(2)) }),
        );
      case 'read-index':
        return attempt(() => this.c.node(num(0)).readIndex(bytes(args[1] ?? '')));
      case 'transfer-leader':
        return attempt(() => this.c.node(num(0)).transferLeader(id(num(1))));
      case 'add-member':
        this.c.addMember(num(0));
        return ['ok'];
      case 'tick':
        return this.tick(args);
      case 'deliver': {
        const before = this.states();
        this.c.trace = [];
        this.c.processReadies();
        this.c.deliverAll();
        const out = this.c.trace;
        this.c.trace = undefined;
        return nonEmpty(out.concat(this.changes(before)));
      }
      case 'stabilize': {
        const before = this.states();
        const quiet = args[0] === 'quiet';
        this.c.trace = [];
        this.c.stabilize();
        const out = quiet ? [] : this.c.trace;
        this.c.trace = undefined;
        return nonEmpty(out.concat(this.changes(before)));
      }
      case 'partition': {
        const groups = args.join(' ').split('|').map((g) => g.trim().split(/\s+/).map(Number));
        this.c.partition(...groups);
        return ['ok'];
      }
      case 'isolate':
        this.c.isolate(num(0));
        return ['ok'];
      case 'heal':
        this.c.heal();
        return ['ok'];
      case 'crash':
        this.c.crash(num(0));
        return ['ok'];
      case 'restart':
        this.c.restart(num(0));
        return [this.stateLine(num(0))];
      case 'compact': {
        const m = this.c.member(num(0));
        m.snapshotAndCompact();
        const s = m.storage.snapshot().meta;
        return [`snapshot ${s.term}/${s.index} first=${m.storage.firstIndex()}`];
      }
      case 'status': {
        const which = args.length > 0 ? args.map(Number) : Array.from(this.c.members.keys()).map(Number);
        return which.map((n) => this.stateLine(n));
      }
      case 'log': {
        // the persisted log (what survives a crash)
        const st = this.c.member(num(0)).storage;
        const snap = st.snapshot().meta;
        const parts: string[] = snap.index > 0 ? [`snap=${snap.term}/${snap.index}`] : [];
        if (st.lastIndex() >= st.firstIndex()) {
          for (const e of st.entries(st.firstIndex(), st.lastIndex() + 1)) parts.push(describeEntry(e));
        }
        return [parts.length === 0 ? 'empty' : parts.join(' ')];
      }
      case 'applied': {
        const vals = Array.from(this.c.member(num(0)).applied.values());
        return [vals.length === 0 ? 'none' : vals.join(' ')];
      }
      case 'read-states': {
        const m = this.c.member(num(0));
        const out = m.readStates.map((r) => `${str(r.ctx)}@${r.index}`);
        m.readStates = [];
        return [out.length === 0 ? 'none' : out.join(' ')];
      }
      case 'progress': {
        const p = this.c.node(num(0)).status().progress;
        if (p === undefined) return ['not leader'];
        return Array.from(p.entries()).map(
          ([k, v]) => `${k}: ${v.state} match=${v.match} next=${v.next}${v.isLearner ? ' learner' : ''}`,
        );
      }
      default:
        throw new Error(`unknown command "${cmd}"`);
    }
  }

  private makeCluster(args: string[]): string[] {
    const kv = new Map<string, string>();
    for (const a of args) {
      const [k, v] = a.split('=');
      kv.set(k!, v ?? '');
    }
    const opts: MemberOptions = {};
    const bool = (k: string): boolean | undefined => (kv.has(k) ? kv.get(k) === 'true' : undefined);
    const n = (k: string): number | undefined => (kv.has(k) ? Number(kv.get(k)) : undefined);
    const pv = bool('prevote');
    if (pv !== undefined) opts.preVote = pv;
    const cq = bool('checkquorum');
    if (cq !== undefined) opts.checkQuorum = cq;
    const e = n('election');
    if (e !== undefined) opts.electionTick = e;
    const h = n('heartbeat');
    if (h !== undefined) opts.heartbeatTick = h;
    const s = n('seed');
    if (s !== undefined) opts.seed = s;
    const mm = n('maxmsg');
    if (mm !== undefined) opts.maxSizePerMsg = mm;
    const inf = n('inflight');
    if (inf !== undefined) opts.maxInflightMsgs = inf;
    const learners = kv.get('learners');
    this.cluster = new Cluster(
      Number(kv.get('voters') ?? '1'),
      opts,
      learners === undefined || learners === '' ? [] : learners.split(',').map(Number),
    );
    return ['ok'];
  }

  private tick(args: string[]): string[] {
    const before = this.states();
    const times = args[1] !== undefined && args[1].startsWith('x') ? Number(args[1].slice(1)) : 1;
    const targets = args[0] === 'all' ? Array.from(this.c.members.keys()).map(Number) : [Number(args[0])];
    const hold = args.includes('hold');
    for (let i = 0; i < times; i++) {
      for (const n of targets) if (!this.c.down.has(BigInt(n))) this.c.node(n).tick();
      if (!hold) this.c.stabilize();
    }
    return nonEmpty(this.changes(before));
  }

  private stateLine(n: number): string {
    if (this.c.down.has(BigInt(n))) return `${n}: down`;
    const st = this.c.node(n).status();
    return `${n}: ${st.role} term=${st.term} lead=${st.lead} commit=${st.commit} applied=${st.applied}`;
  }

  private states(): Snapshot {
    const out: Snapshot = new Map();
    for (const k of this.c.members.keys()) out.set(Number(k), this.stateLine(Number(k)));
    return out;
  }

  private changes(before: Snapshot): string[] {
    const out: string[] = [];
    for (const [k, line] of this.states()) if (before.get(k) !== line) out.push(line);
    return out;
  }
}

function attempt(f: () => void): string[] {
  try {
    f();
    return ['ok'];
  } catch (e) {
    if (e instanceof ProposalDroppedError) return [`dropped: ${e.reason}`];
    if (e instanceof ConfChangeError) return [`invalid: ${e.message}`];
    throw e;
  }
}

function nonEmpty(lines: string[]): string[] {
  return lines.length === 0 ? ['ok'] : lines;
}
