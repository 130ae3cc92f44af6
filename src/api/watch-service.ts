/**
 * The etcdserverpb.Watch service: one bidirectional stream carries many watchers.
 *
 * Requests: create (key/range, start_revision, prev_kv, filters, progress_notify, fragment,
 * watch_id), cancel, progress. Responses are encoded by hand (WatchResponse: 1 header, 2 watch_id,
 * 3 created, 4 canceled, 5 compact_revision, 6 cancel_reason, 7 fragment, 11 events).
 * Created responses are written when the request is read, so they reach the client in request
 * order and before any event of that watcher.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import { makeRange } from '../mvcc/key-range';
import { KeyValue, writeKeyValue } from '../mvcc/kv-codec';
import { Writer } from '../storage/binary';
import type { EtcdServer } from '../server/etcd-server';
import { WatchEvent, WatchHub, WatchSink } from '../watch/watch-hub';
import { Watcher } from '../watch/watcher-group';
import type { Handlers } from './grpc-server';
import { Header, WireMessage, headerBytes } from './kv-wire';
import { Int64, toNum } from './proto';

const EMPTY = new Uint8Array(0);

/** Fields of a WatchResponse. */
interface WatchResponseFields {
  header: Header;
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
  events?: WatchEvent[];
}

const kvScratch = new Writer(1024);

function writeEvent(w: Writer, e: WatchEvent): void {
  const inner = new Writer(64 + e.kv.key.length + e.kv.value.length);
  if (e.type === 'delete') inner.tag(1, 0).uvarint(1);
  inner.tag(2, 2).bytes(writeKeyValue(kvScratch.reset(), e.kv).finish());
  if (e.prevKv !== undefined) inner.tag(3, 2).bytes(writeKeyValue(kvScratch.reset(), e.prevKv).finish());
  w.tag(11, 2).bytes(inner.finish());
}

/** Encodes a WatchResponse. */
export function encodeWatchResponse(r: WatchResponseFields): Buffer {
  const w = new Writer(256);
  w.tag(1, 2).bytes(headerBytes(r.header));
  if (r.watchId !== 0) w.tag(2, 0).varint64(BigInt(r.watchId));
  if (r.created === true) w.tag(3, 0).byte(1);
  if (r.canceled === true) w.tag(4, 0).byte(1);
  if (r.compactRevision !== undefined && r.compactRevision !== 0) w.tag(5, 0).varint64(BigInt(r.compactRevision));
  if (r.cancelReason !== undefined && r.cancelReason !== '') w.tag(6, 2).bytes(Buffer.from(r.cancelReason));
  if (r.fragment === true) w.tag(7, 0).byte(1);
  for (const e of r.events ?? []) writeEvent(w, e);
  const out = w.finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

function eventSize(e: WatchEvent): number {
  const kv = (x: KeyValue | undefined): number => (x === undefined ? 0 : x.key.length + x.value.length + 40);
  return kv(e.kv) + kv(e.prevKv) + 8;
}

type Duplex = grpc.ServerDuplexStream<WireMessage, Buffer>;

/** Options of the Watch service. */
export interface WatchServiceOptions {
  /** Interval of progress notifications for watchers that asked for them, ms. */
  progressIntervalMs: number;
  /** Fragmenting threshold (etcd: --max-request-bytes). */
  maxRequestBytes: number;
}

/** One client stream. */
class WatchStream implements WatchSink {
  paused = false;
  private readonly watchers = new Map<number, Watcher>();
  /** Per watcher with progress_notify: true when nothing was sent since the last tick. */
  private readonly quiet = new Map<number, boolean>();
  private nextId = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly call: Duplex,
    private readonly server: EtcdServer,
    private readonly hub: WatchHub,
    private readonly opts: WatchServiceOptions,
  ) {
    call.on('data', (req: WireMessage) => this.onRequest(req));
    call.on('end', () => this.close(true));
    call.on('error', () => this.close(false));
    call.on('close', () => this.close(false));
    call.on('cancelled', () => this.close(false));
    this.timer = setInterval(() => this.progressTick(), opts.progressIntervalMs);
    this.timer.unref();
  }

  private header(rev?: number): Header {
    const h = this.server.header();
    return rev === undefined ? h : { ...h, revision: rev };
  }

  private write(buf: Buffer): void {
    if (this.closed) return;
    const ok = this.call.write(buf);
    if (!ok && !this.paused) {
      this.paused = true;
      this.call.once('drain', () => {
        this.paused = false;
        this.hub.kick();
      });
    }
  }

  private onRequest(req: WireMessage): void {
    if (this.closed) return;
    switch (req.request_union) {
      case 'create_request':
        this.create(req.create_request as WireMessage);
        return;
      case 'cancel_request': {
        const id = toNum((req.cancel_request as WireMessage).watch_id as Int64);
        const w = this.watchers.get(id);
        if (w === undefined) return;
        this.watchers.delete(id);
        this.quiet.delete(id);
        this.hub.remove(w);
        this.write(encodeWatchResponse({ header: this.header(), watchId: id, canceled: true }));
        return;
      }
      case 'progress_request':
        void this.hub.requestProgress(this, [...this.watchers.values()], -1);
        return;
      default:
        return;
    }
  }

  private create(cr: WireMessage): void {
    let key = cr.key instanceof Uint8Array ? cr.key : EMPTY;
    if (key.length === 0) key = Uint8Array.of(0);
    const rangeEnd = cr.range_end instanceof Uint8Array ? cr.range_end : EMPTY;
    const startRev = toNum(cr.start_revision as Int64);
    const current = this.server.store.currentRev;
    const fail = (reason: string): void =>
      this.write(encodeWatchResponse({ header: this.header(), watchId: -1, created: true, canceled: true, cancelReason: reason }));
    const range = makeRange(key, rangeEnd);
    if (range.end !== undefined && range.end !== '' && range.key >= range.end) {
      fail(Errors.watchRangeEmpty().message);
      return;
    }
    if (startRev < 0) {
      fail(Errors.compacted().message.replace('etcdserver: ', ''));
      return;
    }
    let id = toNum(cr.watch_id as Int64);
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      fail('mvcc: duplicate watch ID provided on the WatchStream');
      return;
    }
    const filters = Array.isArray(cr.filters) ? (cr.filters as unknown[]).map((f) => (typeof f === 'number' ? f : -1)) : [];
    const w = new Watcher(
      id,
      this,
      range,
      startRev === 0 ? current + 1 : startRev,
      cr.prev_kv === true,
      filters.includes(0),
      filters.includes(1),
      cr.progress_notify === true,
      cr.fragment === true,
    );
    this.watchers.set(id, w);
    if (w.progressNotify) this.quiet.set(id, true);
    this.write(encodeWatchResponse({ header: this.header(current), watchId: id, created: true }));
    this.hub.add(w);
  }

  sendEvents(w: Watcher, events: WatchEvent[], rev: number): void {
    if (this.closed || w.canceled) return;
    if (this.quiet.has(w.id)) this.quiet.set(w.id, false);
    const header = this.header(rev);
    if (w.fragment && events.length > 1) {
      let size = 0;
      for (const e of events) size += eventSize(e);
      if (size >= this.opts.maxRequestBytes) {
        let start = 0;
        let acc = 0;
        for (let i = 0; i < events.length; i++) {
          acc += eventSize(events[i]!);
          const last = i === events.length - 1;
          if (last || acc + eventSize(events[i + 1]!) > this.opts.maxRequestBytes) {
            this.write(encodeWatchResponse({ header, watchId: w.id, events: events.slice(start, i + 1), fragment: !last }));
            start = i + 1;
            acc = 0;
          }
        }
        return;
      }
    }
    this.write(encodeWatchResponse({ header, watchId: w.id, events }));
  }

  sendCompacted(w: Watcher, compactRev: number, rev: number): void {
    this.watchers.delete(w.id);
    this.quiet.delete(w.id);
    this.write(encodeWatchResponse({ header: this.header(rev), watchId: w.id, canceled: true, compactRevision: compactRev }));
  }

  sendProgress(id: number, rev: number): void {
    this.write(encodeWatchResponse({ header: this.header(rev), watchId: id }));
  }

  private progressTick(): void {
    for (const [id, quiet] of this.quiet) {
      const w = this.watchers.get(id);
      if (w === undefined) continue;
      if (quiet) void this.hub.requestProgress(this, [w], id);
      this.quiet.set(id, true);
    }
  }

  private close(ended: boolean): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
    if (ended) this.call.end();
  }
}

/** Builds the Watch handlers. */
export function watchHandlers(server: EtcdServer, hub: WatchHub, opts: WatchServiceOptions): Handlers {
  return {
    Watch: (call: Duplex) => {
      new WatchStream(call, server, hub, opts);
    },
  };
}
