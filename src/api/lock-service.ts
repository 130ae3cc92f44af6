/**
 * The v3lockpb.Lock service: Lock blocks until the caller holds the named lock and answers with
 * the owner key; Unlock deletes that key. The logic lives in src/server/concurrency.ts; failures
 * reach the client as UNKNOWN with etcd's message, as etcd's own lock service answers.
 */
import * as grpc from '@grpc/grpc-js';
import { Locks, asPlainError } from '../server/concurrency';
import type { EtcdServer } from '../server/etcd-server';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';
import { Int64, toBig } from './proto';
import { toStatus } from './status';
import { headerObject } from './wire-objects';

type Unary = grpc.ServerUnaryCall<WireMessage, unknown>;

const EMPTY = new Uint8Array(0);

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
}

/**
 * A unary handler whose work gets an AbortSignal that fires when the client cancels the call or
 * its deadline passes (a waiting Lock then withdraws).
 */
function cancellable(
  fn: (req: WireMessage, signal: AbortSignal) => Promise<Record<string, unknown>>,
): grpc.handleUnaryCall<WireMessage, unknown> {
  return (call: Unary, cb: grpc.sendUnaryData<unknown>) => {
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort());
    void fn(call.request, ac.signal).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(asPlainError(err))),
    );
  };
}

/** Builds the Lock handlers. `newLeaseId` makes lease ids for requests that name no lease. */
export function lockHandlers(s: EtcdServer, newLeaseId: () => bigint): Handlers {
  const locks = new Locks(s, newLeaseId);
  const header = (revision: number): Record<string, unknown> => headerObject({ ...s.header(), revision });
  return {
    Lock: cancellable(async (m, signal) => {
      const r = await locks.lock(bytes(m.name), toBig(m.lease as Int64), signal);
      return { header: header(r.revision), key: r.key };
    }),
    Unlock: cancellable(async (m) => {
      const rev = await locks.unlock(bytes(m.key));
      return { header: header(rev) };
    }),
  };
}
