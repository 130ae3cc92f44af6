/**
 * The etcdserverpb.Watch service: one bidirectional stream carries many watchers.
 *
 * Requests: create (key/range, start_revision, prev_kv, filters, progress_notify, fragment,
 * watch_id), cancel, progress. Responses are encoded by hand (WatchResponse: 1 header, 2 watch_id,
 * 3 created, 4 canceled, 5 compact_revision, 6 cancel_reason, 7 fragment, 11 events).
 *
 * - Created responses are written when the request is read, so they reach the client in request
 *   order and before any event of that watcher (the hub sends events from its queue, later).
 * - A create that fails (negative start revision, empty range, duplicate id) is answered with
 *   created and canceled together, watch_id -1 and etcd's cancel reason.
 * - When the gRPC stream cannot take more (write() returned false) the stream reports `paused`; the
 *   hub then queues nothing for its watchers and resumes them from history after 'drain'.
 * - A client that half-closes its side keeps receiving (as etcd); the stream ends when the call is
 *   cancelled or the connection closes.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import { makeRange } from '../mvcc/key-range';
import { writeKeyValue } from '../mvcc/kv-codec';
import { Writer } from '../storage/binary';
import type { EtcdServer } from '../server/etcd-server';
import { WatchEvent, WatchHub, WatchSink } from '../watch/watch-hub';
import { Watcher } from '../watch/watcher-group';
import type { Handlers } from './grpc-server';
import { Header, WireMessage, headerBytes, uvarintSize } from './kv-wire';
import { Int64, toNum } from './proto';

const EMPTY = new Uint8Array(0);

/** etcd adds this to --max-request-bytes for gRPC framing; responses at least that big are fragmented. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** etcd's cancel reasons of a failed create. */
const DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';

/** Fields of a WatchResponse. */
export interface WatchResponseFields {
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

/**
 * Encoded events by event object: the hub hands the same object to every watcher that gets the
 * same content, so an event fanned out to many watchers is encoded once.
 */
const encodedEvents = new WeakMap<WatchEvent, Uint8Array>();

/** Encodes one mvccpb.Event message (1 type, 2 kv, 3 prev_kv), once per event object. */
function encodeEvent(e: WatchEvent): Uint8Array {
  let bytes = encodedEvents.get(e);
  if (bytes === undefined) {
    bytes = encodeEventOnce(e);
    encodedEvents.set(e, bytes);
  }
  return bytes;
}

function encodeEventOnce(e: WatchEvent): Uint8Array {
  const kv = writeKeyValue(kvScratch.reset(), e.kv).finish();
  const prev = e.prevKv === undefined ? undefined : writeKeyValue(kvScratch.reset(), e.prevKv).finish();
  const w = new Writer(16 + kv.length + (prev?.length ?? 0));
  if (e.type === 'delete') w.tag(1, 0).uvarint(1);
  w.tag(2, 2).bytes(kv);
  if (prev !== undefined) w.tag(3, 2).bytes(prev);
  return w.finish();
}

/** Bytes an encoded event adds to a WatchResponse (tag, length, body). */
function eventFieldSize(body: Uint8Array): number {
  return 1 + uvarintSize(body.length) + body.length;
}

/**
 * Scratch writer for whole responses; each response is then copied out once, at its exact size.
 * After a response bigger than SCRATCH_KEEP_BYTES it is replaced, so it does not hold the memory.
 */
let responseScratch = new Writer(4096);
const SCRATCH_KEEP_BYTES = 1 << 20;

/** Writes an int64 field; non-negative ids skip the BigInt conversion. */
function writeInt64Field(w: Writer, field: number, v: number): void {
  w.tag(field, 0);
  if (v >= 0) w.uvarint(v);
  else w.varint64(BigInt(v));
}

function encodeWith(r: WatchResponseFields, events: readonly Uint8Array[]): Buffer {
  const w = responseScratch.reset();
  w.tag(1, 2).bytes(headerBytes(r.header));
  if (r.watchId !== 0) writeInt64Field(w, 2, r.watchId);
  if (r.created === true) w.tag(3, 0).byte(1);
  if (r.canceled === true) w.tag(4, 0).byte(1);
  if (r.compactRevision !== undefined && r.compactRevision !== 0) writeInt64Field(w, 5, r.compactRevision);
  if (r.cancelReason !== undefined && r.cancelReason !== '') w.tag(6, 2).bytes(Buffer.from(r.cancelReason));
  if (r.fragment === true) w.tag(7, 0).byte(1);
  for (const e of events) w.tag(11, 2).bytes(e);
  const out = w.finishBuffer();
  if (w.capacity > SCRATCH_KEEP_BYTES) responseScratch = new Writer(4096);
  return out;
}

/** Encodes a WatchResponse. Fields at their zero value are omitted, as in proto3. */
export function encodeWatchResponse(r: WatchResponseFields): Buffer {
  return encodeWith(r, (r.events ?? []).map(encodeEvent));
}

/**
 * Splits a watcher's response the way etcd does when the watcher asked for fragments: a response of
 * at least `limit` bytes with more than one event becomes pieces, each holding as many events as fit
 * below `limit` (always at least one); every piece but the last has fragment=true. Returns the
 * encoded responses to write, in order.
 */
export function fragmentResponse(header: Header, watchId: number, events: WatchEvent[], limit: number, fragment: boolean): Buffer[] {
  const encoded = events.map(encodeEvent);
  if (!fragment || encoded.length < 2) return [encodeWith({ header, watchId }, encoded)];
  const base = encodeWith({ header, watchId }, []).length;
  let total = base;
  for (const e of encoded) total += eventFieldSize(e);
  if (total < limit) return [encodeWith({ header, watchId }, encoded)];
  const out: Buffer[] = [];
  const pieceBase = base + 2; // fragment=true
  let i = 0;
  while (i < encoded.length) {
    let size = pieceBase;
    let j = i;
    while (j < encoded.length) {
      const s = eventFieldSize(encoded[j]!);
      if (j > i && size + s >= limit) break;
      size += s;
      j++;
    }
    out.push(encodeWith({ header, watchId, fragment: j < encoded.length }, encoded.slice(i, j)));
    i = j;
  }
  return out;
}

type Duplex = grpc.ServerDuplexStream<WireMessage, Buffer>;

/** etcd's floor for the progress notification interval, and its default. */
const MIN_PROGRESS_INTERVAL_MS = 100;
const DEFAULT_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;

/**
 * The tick of one stream's progress notifications, ms: the configured interval (etcd's default when
 * not positive, at least 100 ms) plus up to 10% jitter, so streams opened together do not all tick
 * together.
 */
export function progressTickMs(configuredMs: number): number {
  const base = configuredMs > 0 ? Math.max(MIN_PROGRESS_INTERVAL_MS, configuredMs) : DEFAULT_PROGRESS_INTERVAL_MS;
  return base + Math.floor(Math.random() * (base / 10));
}

/** Options of the Watch service. */
export interface WatchServiceOptions {
  /** Interval of progress notifications for watchers that asked for them, ms (see progressTickMs). */
  progressIntervalMs: number;
  /** The server's --max-request-bytes; fragmenting starts at this plus 512 KiB (etcd's rule). */
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
    call.on('error', () => this.close());
    call.on('close', () => this.close());
    call.on('cancelled', () => this.close());
    this.timer = setInterval(() => this.progressTick(), progressTickMs(opts.progressIntervalMs));
    this.timer.unref();
  }

  private header(rev: number): Header {
    return { ...this.server.header(), revision: rev };
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
        this.write(encodeWatchResponse({ header: this.header(this.server.store.currentRev), watchId: id, canceled: true }));
        return;
      }
      case 'progress_request':
        // Answered (watch id -1) only when every watcher of the stream is synced; otherwise
        // dropped, and the client asks again.
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
      this.write(encodeWatchResponse({ header: this.header(current), watchId: -1, created: true, canceled: true, cancelReason: reason }));
    if (startRev < 0) {
      fail(Errors.compacted().message);
      return;
    }
    const range = makeRange(key, rangeEnd);
    if (range.end !== undefined && range.end !== '' && range.key >= range.end) {
      fail(Errors.watchRangeEmpty().message);
      return;
    }
    let id = toNum(cr.watch_id as Int64);
    if (id === 0) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      fail(DUPLICATE_ID);
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
    const limit = this.opts.maxRequestBytes + GRPC_OVERHEAD_BYTES;
    for (const buf of fragmentResponse(this.header(rev), w.id, events, limit, w.fragment)) this.write(buf);
  }

  sendCompacted(w: Watcher, compactRev: number): void {
    // The id stays taken until the client cancels it (a create reusing it is a duplicate, as in etcd).
    this.quiet.delete(w.id);
    // etcd sends this response with header revision 0.
    this.write(encodeWatchResponse({ header: this.header(0), watchId: w.id, canceled: true, compactRevision: compactRev }));
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

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
    this.quiet.clear();
  }
}

/** Builds the Watch handlers: each call gets its own stream of watchers over the shared hub. */
export function watchHandlers(server: EtcdServer, hub: WatchHub, opts: WatchServiceOptions): Handlers {
  return {
    Watch: (call: Duplex) => {
      new WatchStream(call, server, hub, opts);
    },
  };
}
