/**
 * List+watch clients, as a Kubernetes reflector does it: a linearizable Range of the watched
 * range (recorded in the KV history like any read), then a Watch from its revision + 1. When the
 * stream breaks (member killed, leader lost: the streams carry etcd's hasleader metadata, so a
 * member cut off from the leader ends them), the client resumes on the next member with
 * start_revision = last received revision + 1, where a progress notification counts as received.
 * Every response is recorded per session for the watch checker.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { WatchEvent, WatchResponseRecord, WatchSession } from '../../src/check/history';
import type { ChaosCluster } from './cluster';
import { sleep } from './cluster';
import { CallFailure, EtcdClient, Msg, bytes, headerRevision, isDefiniteFailure, kvRecord, num, opError, watchEvent } from './grpc';
import type { Recorder } from './workload';

/** What a watch client watches. */
export interface WatchSpec {
  readonly key: string;
  /** "" for the single key. */
  readonly rangeEnd: string;
  readonly prevKv: boolean;
  /** Send a progress request on the stream every so often. */
  readonly progressRequests: boolean;
}

interface OpenSession {
  readonly session: number;
  readonly startRevision: number;
  readonly start: number;
  readonly responses: WatchResponseRecord[];
  stream: ClientDuplexStream<Msg, Msg> | undefined;
  lastRev: number;
  lastResponseAt: number;
  ended: boolean;
  endReason: string;
  finished: Promise<void>;
  end: (reason: string) => void;
}

/** One list+watch client. */
export class WatchClient {
  readonly sessions: WatchSession[] = [];
  private stopped = false;
  private current: OpenSession | undefined;
  private member: number;
  private nextStart = 0;
  private sessionSeq = 0;
  private loop: Promise<void> | undefined;
  private client: EtcdClient | undefined;

  constructor(
    readonly id: number,
    private readonly cluster: ChaosCluster,
    private readonly spec: WatchSpec,
    private readonly rec: Recorder,
    private readonly timeoutMs: number,
  ) {
    this.member = id % cluster.slots.length;
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.loop = this.run();
  }

  /** The last revision received (events or progress), over all sessions. */
  lastRevision(): number {
    return Math.max(this.nextStart - 1, this.current?.lastRev ?? 0);
  }

  private endpointClient(): EtcdClient {
    const slot = this.cluster.slots[this.member]!;
    if (this.client === undefined || this.client.endpoint !== this.cluster.endpoint(slot)) {
      this.client?.close();
      this.client = new EtcdClient(this.cluster.endpoint(slot));
    }
    return this.client;
  }

  private rotate(): void {
    this.member = (this.member + 1) % this.cluster.slots.length;
    this.client?.close();
    this.client = undefined;
  }

  /** The list: a linearizable range, recorded as a KV operation. Returns its revision. */
  private async list(): Promise<number | undefined> {
    const id = this.rec.reserve();
    const process = this.rec.process();
    const input = { type: 'range' as const, key: this.spec.key, rangeEnd: this.spec.rangeEnd, serializable: false };
    const call = this.rec.now();
    const member = this.cluster.slots[this.member]!.name;
    try {
      const req: Msg = { key: bytes(this.spec.key) };
      if (this.spec.rangeEnd !== '') req.range_end = bytes(this.spec.rangeEnd);
      const r = await this.endpointClient().call('KV', 'Range', req, this.timeoutMs);
      const revision = headerRevision(r);
      this.rec.set({ id, process, call, ret: this.rec.now(), status: 'ok', input, output: { type: 'range', revision, kvs: ((r.kvs ?? []) as Msg[]).map(kvRecord) }, member });
      return revision;
    } catch (e) {
      const f = e instanceof CallFailure ? e : new CallFailure(2, String(e));
      this.rec.set({ id, process, call, ret: this.rec.now(), status: isDefiniteFailure(f) ? 'fail' : 'unknown', input, error: opError(f), member });
      return undefined;
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped && this.nextStart === 0) {
      const rev = await this.list();
      if (rev !== undefined) this.nextStart = rev + 1;
      else {
        this.rotate();
        await sleep(200);
      }
    }
    while (!this.stopped) {
      const s = this.open(this.nextStart);
      const ticker = setInterval(() => this.tick(s), 500);
      await s.finished;
      clearInterval(ticker);
      this.close(s);
      if (this.stopped) break;
      this.rotate();
      await sleep(200);
    }
  }

  private open(startRevision: number): OpenSession {
    const s: OpenSession = {
      session: this.sessionSeq++,
      startRevision,
      start: this.rec.now(),
      responses: [],
      stream: undefined,
      lastRev: 0,
      lastResponseAt: this.rec.now(),
      ended: false,
      endReason: '',
      finished: Promise.resolve(),
      end: () => undefined,
    };
    this.current = s;
    s.finished = new Promise<void>((resolve) => {
      const end = (reason: string): void => {
        if (s.ended) return;
        s.ended = true;
        s.endReason = reason;
        resolve();
      };
      s.end = end;
      const stream = this.endpointClient().watchStream(true);
      s.stream = stream;
      stream.on('data', (m: Msg) => {
        if (s.ended) return;
        const events: WatchEvent[] = ((m.events ?? []) as Msg[]).map(watchEvent);
        const r: WatchResponseRecord = {
          time: this.rec.now(),
          revision: headerRevision(m),
          watchId: num(m.watch_id),
          created: m.created === true,
          canceled: m.canceled === true,
          compactRevision: num(m.compact_revision),
          ...(typeof m.cancel_reason === 'string' && m.cancel_reason !== '' ? { cancelReason: m.cancel_reason } : {}),
          events,
        };
        s.responses.push(r);
        s.lastResponseAt = r.time;
        if (!r.created && !r.canceled) {
          for (const e of events) s.lastRev = Math.max(s.lastRev, e.kv.modRevision);
          if (events.length === 0) s.lastRev = Math.max(s.lastRev, r.revision);
        }
        if (r.canceled) end(`canceled: ${r.cancelReason ?? ''}${r.compactRevision > 0 ? ` (compacted at ${r.compactRevision})` : ''}`);
      });
      stream.on('error', (e: Error & { code?: number; details?: string }) => end(`stream error: ${e.code ?? ''} ${e.details ?? e.message}`));
      stream.on('end', () => end('stream ended'));
      stream.write({
        create_request: {
          key: bytes(this.spec.key),
          ...(this.spec.rangeEnd !== '' ? { range_end: bytes(this.spec.rangeEnd) } : {}),
          start_revision: String(startRevision),
          prev_kv: this.spec.prevKv,
          progress_notify: true,
        },
      });
    });
    return s;
  }

  /** Periodic: progress requests, and giving up on a stream that went silent. */
  private tick(s: OpenSession): void {
    if (s.ended || s.stream === undefined) return;
    if (this.rec.now() - s.lastResponseAt > 8000) {
      s.stream.cancel();
      return;
    }
    if (this.spec.progressRequests) s.stream.write({ progress_request: {} });
  }

  private close(s: OpenSession): void {
    s.stream?.cancel();
    this.sessions.push({
      watcher: this.id,
      session: s.session,
      key: this.spec.key,
      rangeEnd: this.spec.rangeEnd,
      startRevision: s.startRevision,
      prevKv: this.spec.prevKv,
      progressNotify: true,
      start: s.start,
      end: this.rec.now(),
      endReason: s.endReason,
      responses: s.responses,
    });
    if (s.lastRev > 0) this.nextStart = s.lastRev + 1;
    if (this.current === s) this.current = undefined;
  }

  /**
   * Waits until this client has received everything up to `revision` (asking for progress
   * notifications meanwhile), then stops it. Resolves true when it caught up in time.
   */
  async finish(revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let caughtUp = false;
    while (Date.now() < deadline) {
      if (this.lastRevision() >= revision) {
        caughtUp = true;
        break;
      }
      const s = this.current;
      if (s !== undefined && !s.ended) s.stream?.write({ progress_request: {} });
      await sleep(300);
    }
    this.stopped = true;
    this.current?.end('end of run');
    // The loop records the session and returns (a list in progress ends by its deadline).
    await (this.loop ?? Promise.resolve());
    this.client?.close();
    return caughtUp;
  }
}
