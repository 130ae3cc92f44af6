/**
 * The etcdserverpb.Maintenance service (the parts built so far: Status and MoveLeader; the other
 * methods answer UNIMPLEMENTED).
 */
import * as grpc from '@grpc/grpc-js';
import { ETCD_COMPAT_VERSION } from '../server/config';
import type { EtcdServer } from '../server/etcd-server';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';
import { Int64, toUBig } from './proto';
import { toStatus } from './status';
import { headerObject, nonZero } from './wire-objects';

type Unary = grpc.ServerUnaryCall<WireMessage, unknown>;

function unary(fn: (req: WireMessage) => Promise<Record<string, unknown>>): grpc.handleUnaryCall<WireMessage, unknown> {
  return (call: Unary, cb: grpc.sendUnaryData<unknown>) => {
    fn(call.request).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err)),
    );
  };
}

/** Builds the Maintenance handlers. */
export function maintenanceHandlers(s: EtcdServer): Handlers {
  return {
    Status: unary(async () => {
      const st = s.raftStatus();
      const size = await s.backend.approximateSize();
      return {
        header: headerObject(s.header()),
        ...nonZero({
          version: ETCD_COMPAT_VERSION,
          dbSize: size,
          leader: st.lead.toString(),
          raftIndex: st.commit,
          raftTerm: st.term,
          raftAppliedIndex: s.appliedIndex,
          dbSizeInUse: size,
          isLearner: s.isLearner(),
          storageVersion: ETCD_COMPAT_VERSION.replace(/\.\d+$/, '.0'),
        }),
      };
    }),
    MoveLeader: unary(async (m) => {
      await s.moveLeader(toUBig(m.targetID as Int64));
      return { header: headerObject(s.header()) };
    }),
  };
}
