/**
 * A Watch stream client for tests, built from our .proto files with @grpc/proto-loader (as any Node
 * client of etcd would be): send create / cancel / progress requests, read responses in order with
 * timeouts, stop reading (to play a slow consumer) and resume, and reassemble fragments.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as path from 'node:path';
import { ROOT } from './harness';
import { Msg } from './client';

const def = protoLoader.loadSync(['etcdserverpb/rpc.proto'], {
  includeDirs: [path.join(ROOT, 'proto')],
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: true,
  oneofs: true,
});
const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: Record<string, grpc.ServiceClientConstructor> };

/** Fields of a WatchCreateRequest (proto field names). */
export interface CreateFields {
  key?: string | Buffer;
  range_end?: string | Buffer;
  start_revision?: number;
  progress_notify?: boolean;
  filters?: number[];
  prev_kv?: boolean;
  watch_id?: number;
  fragment?: boolean;
}

/** A decoded mvccpb.KeyValue with bytes as latin1 strings and int64s as numbers. */
export interface KvView {
  key: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: string;
  lease: string;
}

/** A decoded Event. */
export interface EventView {
  type: 'PUT' | 'DELETE';
  kv: KvView;
  prev_kv: KvView | null;
}

/** A decoded WatchResponse with plain numbers and strings (easy to compare). */
export interface ResponseView {
  header: { cluster_id: string; member_id: string; revision: number; raft_term: number };
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  fragment: boolean;
  events: EventView[];
}

function num(v: unknown): number {
  return Number(v ?? 0);
}

function kvView(m: Msg | null | undefined): KvView | null {
  if (m === null || m === undefined) return null;
  return {
    key: Buffer.from(m.key as Buffer).toString('latin1'),
    create_revision: num(m.create_revision),
    mod_revision: num(m.mod_revision),
    version: num(m.version),
    value: Buffer.from(m.value as Buffer).toString('latin1'),
    lease: String(m.lease ?? '0'),
  };
}

/** Converts a proto-loader WatchResponse into its comparable view. */
export function viewOf(m: Msg): ResponseView {
  const h = (m.header ?? {}) as Msg;
  return {
    header: { cluster_id: String(h.cluster_id ?? '0'), member_id: String(h.member_id ?? '0'), revision: num(h.revision), raft_term: num(h.raft_term) },
    watch_id: num(m.watch_id),
    created: m.created === true,
    canceled: m.canceled === true,
    compact_revision: num(m.compact_revision),
    cancel_reason: String(m.cancel_reason ?? ''),
    fragment: m.fragment === true,
    events: ((m.events ?? []) as Msg[]).map((e) => ({
      type: num(e.type) === 1 ? 'DELETE' : 'PUT',
      kv: kvView(e.kv as Msg)!,
      prev_kv: kvView(e.prev_kv as Msg | null),
    })),
  };
}

/** One bidirectional Watch stream. Responses are kept in arrival order; `next()` reads them in turn. */
export class WatchStream {
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Msg, Msg>;
  /** Every response received, in order. */
  readonly received: ResponseView[] = [];
  /** Set when the stream ended (status or error). */
  ended: grpc.StatusObject | Error | undefined;
  private cursor = 0;
  private waiters: (() => void)[] = [];

  constructor(endpoint: string) {
    const Ctor = pkg.etcdserverpb.Watch!;
    this.client = new Ctor(endpoint, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    });
    const watch = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>).Watch!;
    this.call = watch.call(this.client);
    this.call.on('data', (m: Msg) => {
      this.received.push(viewOf(m));
      this.wake();
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      this.ended ??= s;
      this.wake();
    });
    this.call.on('error', (e: Error) => {
      this.ended ??= e;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Sends a create request. */
  create(c: CreateFields): void {
    this.call.write({ create_request: { ...c, key: toBuf(c.key), range_end: toBuf(c.range_end) } });
  }

  /** Sends a cancel request. */
  cancel(watchId: number): void {
    this.call.write({ cancel_request: { watch_id: watchId } });
  }

  /** Sends a progress request. */
  progress(): void {
    this.call.write({ progress_request: {} });
  }

  /** Waits for the next unread response (throws after `ms`). */
  async next(ms = 5000): Promise<ResponseView> {
    const deadline = Date.now() + ms;
    while (this.cursor >= this.received.length) {
      if (this.ended !== undefined) throw new Error(`stream ended: ${JSON.stringify(this.ended)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${ms} ms (have ${this.received.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received[this.cursor++]!;
  }

  /** Reads `n` responses. */
  async take(n: number, ms = 5000): Promise<ResponseView[]> {
    const out: ResponseView[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next(ms));
    return out;
  }

  /** Reads responses until one matches; returns every response read, the match last. */
  async until(pred: (r: ResponseView) => boolean, ms = 5000): Promise<ResponseView[]> {
    const deadline = Date.now() + ms;
    const out: ResponseView[] = [];
    for (;;) {
      const r = await this.next(Math.max(1, deadline - Date.now()));
      out.push(r);
      if (pred(r)) return out;
    }
  }

  /** True when nothing unread arrives within `ms`. */
  async quiet(ms: number): Promise<boolean> {
    await new Promise((r) => setTimeout(r, ms));
    return this.cursor >= this.received.length;
  }

  /** Stops reading: the client's buffers fill and the server sees a slow consumer. */
  pause(): void {
    this.call.pause();
  }

  /** Resumes reading. */
  resume(): void {
    this.call.resume();
  }

  /** Cancels the call and closes the channel. */
  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

function toBuf(v: string | Buffer | undefined): Buffer {
  if (v === undefined) return Buffer.alloc(0);
  return typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
}

/**
 * Reassembles fragmented responses: a run of responses with fragment=true followed by one without
 * becomes one response holding all their events. Unfragmented responses pass through.
 */
export function reassemble(responses: ResponseView[]): ResponseView[] {
  const out: ResponseView[] = [];
  let pending: ResponseView | undefined;
  for (const r of responses) {
    if (pending !== undefined) {
      if (r.watch_id !== pending.watch_id) throw new Error('fragments of different watchers interleaved');
      pending.events.push(...r.events);
      if (!r.fragment) {
        pending.fragment = false;
        out.push(pending);
        pending = undefined;
      }
    } else if (r.fragment) {
      pending = { ...r, events: [...r.events] };
    } else {
      out.push(r);
    }
  }
  if (pending !== undefined) throw new Error('stream ended inside a fragmented response');
  return out;
}
