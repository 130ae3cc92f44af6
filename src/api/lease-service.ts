/**
 * The etcdserverpb.Lease service: grant and revoke go through the log; keep-alive and time-to-live
 * are answered by the leader (a follower forwards them over the peer transport).
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import { MAX_LEASE_TTL } from '../lease/lessor';
import { keyToBytes } from '../mvcc/key-range';
import type { EtcdServer } from '../server/etcd-server';
import type { LeaseResult } from '../server/requests';
import { unary } from './handlers';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';
import { Int64, toBig, toNum } from './proto';
import { toStatus } from './status';
import { headerObject, nonZero } from './wire-objects';

/** Builds the Lease handlers. `newId` makes a fresh positive 63-bit id. */
export function leaseHandlers(s: EtcdServer, newId: () => bigint): Handlers {
  const header = (): Record<string, unknown> => headerObject(s.header());
  // A grant or revoke reports the revision at which it was applied (as etcd does), not the one
  // current when the response is built: writes applied right after it may have moved on.
  const appliedHeader = (revision: number): Record<string, unknown> => headerObject({ ...s.header(), revision });
  return {
    LeaseGrant: unary(async (m) => {
      const ttl = toNum(m.TTL as Int64);
      if (ttl > MAX_LEASE_TTL) throw Errors.leaseTtlTooLarge();
      s.checkQuota(64);
      let id = toBig(m.ID as Int64);
      while (id === 0n) id = newId() & ((1n << 63n) - 1n);
      const r = (await s.write({ kind: 'lease-grant', id, ttl })) as LeaseResult;
      return { header: appliedHeader(r.revision), ...nonZero({ ID: r.id.toString(), TTL: r.ttl }) };
    }),
    LeaseRevoke: unary(async (m) => {
      const r = (await s.write({ kind: 'lease-revoke', id: toBig(m.ID as Int64) })) as LeaseResult;
      return { header: appliedHeader(r.revision) };
    }),
    LeaseTimeToLive: unary(async (m) => {
      const id = toBig(m.ID as Int64);
      await s.linearizableBarrier();
      const lease = s.lessor.get(id);
      const ttl = lease === undefined ? -1 : await s.leaseRemaining(id);
      if (lease === undefined || ttl === -1) return { header: header(), ...nonZero({ ID: id.toString() }), TTL: -1 };
      const keys = m.keys === true ? [...lease.keys].sort().map((k) => keyToBytes(k)) : [];
      return { header: header(), ...nonZero({ ID: id.toString(), TTL: ttl, grantedTTL: lease.ttl }), ...(keys.length > 0 ? { keys } : {}) };
    }),
    LeaseLeases: unary(async () => {
      await s.linearizableBarrier();
      const ids = s.lessor.ids().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return { header: header(), leases: ids.map((id) => ({ ID: id.toString() })) };
    }),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<WireMessage, unknown>) => {
      let chain = Promise.resolve();
      let closed = false;
      call.on('data', (m: WireMessage) => {
        const id = toBig(m.ID as Int64);
        // Answer in request order.
        chain = chain.then(async () => {
          if (closed) return;
          try {
            const ttl = await s.leaseRenew(id);
            if (!closed) call.write({ header: header(), ...nonZero({ ID: id.toString(), TTL: ttl }) });
          } catch (err) {
            if (!closed) {
              closed = true;
              call.emit('error', toStatus(err));
            }
          }
        });
      });
      const end = (): void => {
        closed = true;
      };
      call.on('end', () => {
        void chain.then(() => {
          if (!closed) call.end();
          closed = true;
        });
      });
      call.on('cancelled', end);
      call.on('error', end);
    },
  };
}
