/**
 * Test harness for the watch hub: a real KvStore over LevelDB in a temp dir, writes driven through
 * the applier's functions (applyPut / applyDelete / applyTxn), and fake sinks that record every
 * response and can be paused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Backend } from '../../../src/storage/backend';
import { KvStore } from '../../../src/mvcc/kv-store';
import { Compactor } from '../../../src/mvcc/compactor';
import { KeyValue } from '../../../src/mvcc/kv-codec';
import { makeRange } from '../../../src/mvcc/key-range';
import { applyDelete, applyPut, applyTxn, noLeases } from '../../../src/server/kv-apply';
import { Compare, DeleteOp, PutOp, RequestOp, TxnOp } from '../../../src/server/requests';
import { HubOptions, WatchEvent, WatchHub, WatchSink } from '../../../src/watch/watch-hub';
import { Watcher } from '../../../src/watch/watcher-group';

/** Key or value bytes from a latin1 string. */
export const b = (s: string): Uint8Array => Buffer.from(s, 'latin1');
/** A latin1 string from bytes. */
export const str = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

/** What a fake sink recorded, in order. */
export type Recorded =
  | { kind: 'events'; watchId: number; rev: number; events: WatchEvent[]; whilePaused: boolean }
  | { kind: 'compacted'; watchId: number; compactRev: number; whilePaused: boolean }
  | { kind: 'progress'; watchId: number; rev: number };

/** A stream stand-in: records responses; `paused` is set by the test. */
export class FakeSink implements WatchSink {
  /** Set by the test; the hub must hand over nothing while it is true. */
  paused = false;
  /** Everything received, in order. */
  readonly log: Recorded[] = [];

  sendEvents(w: Watcher, events: WatchEvent[], rev: number): void {
    // Copied, so that nothing done to the array later changes what the test sees.
    this.log.push({ kind: 'events', watchId: w.id, rev, events: [...events], whilePaused: this.paused });
  }

  sendCompacted(w: Watcher, compactRev: number): void {
    this.log.push({ kind: 'compacted', watchId: w.id, compactRev, whilePaused: this.paused });
  }

  sendProgress(id: number, rev: number): void {
    this.log.push({ kind: 'progress', watchId: id, rev });
  }

  /** Responses carrying events for one watcher. */
  eventResponses(id: number): Extract<Recorded, { kind: 'events' }>[] {
    return this.log.filter((r): r is Extract<Recorded, { kind: 'events' }> => r.kind === 'events' && r.watchId === id);
  }

  /** Every event delivered to one watcher, flattened. */
  events(id: number): WatchEvent[] {
    return this.eventResponses(id).flatMap((r) => r.events);
  }

  /** Number of event or compaction responses handed over while the sink was paused. */
  sentWhilePaused(): number {
    return this.log.filter((r) => r.kind !== 'progress' && r.whilePaused).length;
  }
}

/** A compact, comparable form of an event. */
export interface EventView {
  type: 'put' | 'delete';
  key: string;
  value: string;
  create: number;
  mod: number;
  version: number;
  prev: { value: string; create: number; mod: number; version: number } | null;
}

function kvView(kv: KeyValue): { value: string; create: number; mod: number; version: number } {
  return { value: str(kv.value), create: kv.createRevision, mod: kv.modRevision, version: kv.version };
}

/** Converts a delivered event to its comparable form. */
export function viewOf(e: WatchEvent): EventView {
  return { type: e.type, key: str(e.kv.key), ...kvView(e.kv), prev: e.prevKv === undefined ? null : kvView(e.prevKv) };
}

/** Options for a test watcher. */
export interface WatchOpts {
  end?: string;
  startRev?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
}

/** One store + hub under test, in a fresh temp dir. */
export class HubFixture {
  consistentIndex = 0;
  private readonly flushes: Promise<void>[] = [];

  private constructor(
    readonly dir: string,
    readonly backend: Backend,
    readonly store: KvStore,
    readonly hub: WatchHub,
  ) {}

  /** Opens a store in a new temp dir and wires its commits into a new hub. */
  static async open(opts: HubOptions = {}): Promise<HubFixture> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-hub-'));
    const backend = await Backend.open(path.join(dir, 'db'));
    const store = await KvStore.open(backend);
    const hub = new WatchHub(store, opts);
    store.onCommit = (rev, changes) => hub.notify(rev, changes);
    return new HubFixture(dir, backend, store, hub);
  }

  /** Opens a second store in a temp dir, not wired to any hub (a snapshot stand-in). */
  static async openStore(): Promise<{ dir: string; backend: Backend; store: KvStore }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-store-'));
    const backend = await Backend.open(path.join(dir, 'db'));
    return { dir, backend, store: await KvStore.open(backend) };
  }

  /** Registers a watcher the way the Watch service does. */
  watch(sink: FakeSink, id: number, key: string, o: WatchOpts = {}): Watcher {
    const range = makeRange(b(key), o.end === undefined ? undefined : o.end === '' ? Uint8Array.of(0) : b(o.end));
    const start = o.startRev ?? 0;
    const w = new Watcher(
      id, sink, range, start === 0 ? this.store.currentRev + 1 : start,
      o.prevKv === true, o.noPut === true, o.noDelete === true, false, false,
    );
    this.hub.add(w);
    return w;
  }

  /** Applies a Put; resolves with its revision. */
  async put(key: string, value: string): Promise<number> {
    return (await applyPut(this.store, putOp(key, value), noLeases)).revision;
  }

  /** Applies a DeleteRange of one key or of [key, end); resolves with the header revision. */
  async del(key: string, end?: string): Promise<number> {
    return (await applyDelete(this.store, delOp(key, end), noLeases)).revision;
  }

  /** Applies a Txn; resolves with the header revision. */
  async txn(compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): Promise<number> {
    const op: TxnOp = { kind: 'txn', compare, success, failure };
    return (await applyTxn(this.store, op, noLeases)).revision;
  }

  /** Starts writing the pending batch to LevelDB (as the applier does, without waiting). */
  flush(): void {
    this.flushes.push(this.store.flush(++this.consistentIndex, 1));
  }

  /** Compacts at rev and deletes the superseded records from LevelDB. */
  async compact(rev: number): Promise<void> {
    const keep = this.store.compact(rev);
    const done = new Compactor(this.store, { pauseMs: 0 }).schedule(rev, keep);
    this.flush();
    await done;
  }

  /** Waits for the hub to finish the work queued so far. */
  async settle(): Promise<void> {
    await this.hub.idle();
  }

  /** Waits until no watcher is unsynced (or throws after `ms`). */
  async synced(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      await this.hub.idle();
      if (this.hub.counts().unsynced === 0) return;
      if (Date.now() > deadline) throw new Error(`watchers still unsynced: ${JSON.stringify(this.hub.counts())}`);
      this.hub.kick();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Stops the hub, waits for pending writes and removes the temp dir. */
  async close(): Promise<void> {
    this.hub.close();
    await Promise.all(this.flushes);
    await this.store.flushed();
    await this.hub.idle();
    await this.backend.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A put op. */
export function putOp(key: string, value: string): PutOp {
  return { kind: 'put', key: b(key), value: b(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
}

/** A delete op of one key or of [key, end). */
export function delOp(key: string, end?: string): DeleteOp {
  return { kind: 'delete', key: b(key), rangeEnd: end === undefined ? new Uint8Array(0) : b(end), prevKv: false };
}

/** A compare "version(key) == n". */
export function versionIs(key: string, n: number): Compare {
  return { key: b(key), rangeEnd: new Uint8Array(0), target: 0, result: 0, union: { field: 'version', num: n } };
}
