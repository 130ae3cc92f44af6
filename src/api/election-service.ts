/**
 * The v3electionpb.Election service: Campaign (blocks until the caller leads), Proclaim, Leader,
 * Observe (a stream of leader changes) and Resign. The logic lives in src/server/concurrency.ts;
 * failures reach the client as UNKNOWN with etcd's message, as etcd's own election service
 * answers.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import type { KeyValue } from '../mvcc/kv-codec';
import { Elections, LeaderKey, asPlainError } from '../server/concurrency';
import type { EtcdServer } from '../server/etcd-server';
import { cancellable } from './handlers';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';
import { Int64, toBig, toNum } from './proto';
import { toStatus } from './status';
import { headerObject, nonZero } from './wire-objects';

type Stream = grpc.ServerWritableStream<WireMessage, unknown>;

const EMPTY = new Uint8Array(0);

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
}

/** LeaderKey from a request; "leader" field must be provided. */
function leaderKeyOf(v: unknown): LeaderKey {
  if (typeof v !== 'object' || v === null) throw Errors.leaderKeyMissing();
  const m = v as WireMessage;
  return { name: bytes(m.name), key: bytes(m.key), rev: toNum(m.rev as Int64), lease: toBig(m.lease as Int64) };
}

/** An mvccpb.KeyValue object with zero fields left out. */
function kvObject(kv: KeyValue): Record<string, unknown> {
  return nonZero({
    key: kv.key.length > 0 ? kv.key : undefined,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value.length > 0 ? kv.value : undefined,
    lease: kv.lease.toString(),
  });
}

/** Writes one response; when the stream is full, resolves once it drained (or the call ended). */
function writeObserved(call: Stream, signal: AbortSignal, msg: Record<string, unknown>): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  if (call.write(msg)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Builds the Election handlers. `newLeaseId` makes lease ids for requests that name no lease. */
export function electionHandlers(s: EtcdServer, newLeaseId: () => bigint): Handlers {
  const elections = new Elections(s, newLeaseId);
  const header = (revision: number): Record<string, unknown> => headerObject({ ...s.header(), revision });
  return {
    Campaign: cancellable(async (m, signal) => {
      const r = await elections.campaign(bytes(m.name), toBig(m.lease as Int64), bytes(m.value), signal);
      const l = r.leader;
      const leader = nonZero({ name: l.name.length > 0 ? l.name : undefined, key: l.key, rev: l.rev, lease: l.lease.toString() });
      return { header: header(r.revision), leader };
    }),
    Proclaim: cancellable(async (m) => {
      const rev = await elections.proclaim(leaderKeyOf(m.leader), bytes(m.value));
      return { header: header(rev) };
    }),
    Resign: cancellable(async (m) => {
      const rev = await elections.resign(leaderKeyOf(m.leader));
      return { header: header(rev) };
    }),
    Leader: cancellable(async (m) => {
      const r = await elections.leader(bytes(m.name));
      return { header: header(r.revision), kv: kvObject(r.kv) };
    }),
    Observe: (call: Stream) => {
      const ac = new AbortController();
      call.on('cancelled', () => ac.abort());
      call.on('error', () => ac.abort());
      const emit = (revision: number, kv: KeyValue): Promise<void> =>
        writeObserved(call, ac.signal, { header: header(revision), kv: kvObject(kv) });
      void elections.observe(bytes(call.request.name), ac.signal, emit).then(
        () => {
          // Ended by a failed read or watch: etcd closes the stream without an error.
          if (!ac.signal.aborted) call.end();
        },
        (err: unknown) => {
          if (!ac.signal.aborted) call.emit('error', toStatus(asPlainError(err)));
        },
      );
    },
  };
}
