/**
 * The v3lockpb.Lock service: Lock blocks until the caller holds the named lock and answers with
 * the owner key; Unlock deletes that key. The logic lives in src/server/concurrency.ts; failures
 * reach the client as UNKNOWN with etcd's message, as etcd's own lock service answers.
 */
import { Locks } from '../server/concurrency';
import type { EtcdServer } from '../server/etcd-server';
import { cancellable } from './handlers';
import type { Handlers } from './grpc-server';
import { Int64, toBig } from './proto';
import { headerObject } from './wire-objects';

const EMPTY = new Uint8Array(0);

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY;
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
