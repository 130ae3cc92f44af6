/**
 * The etcdserverpb.KV service: validation as etcd's API layer does it, then the server.
 */
import * as grpc from '@grpc/grpc-js';
import { Errors } from '../errors';
import type { EtcdServer } from '../server/etcd-server';
import { checkIntervals, checkPutRequest, checkRangeRequest, checkTxnRequest } from '../server/kv-apply';
import type { CompactResult, DeleteResult, PutResult, TxnOp, TxnResult } from '../server/requests';
import {
  WireMessage,
  encodeCompactResponse,
  encodeDeleteResponse,
  encodePutResponse,
  encodeRangeRecords,
  encodeRangeResponse,
  encodeTxnResponse,
  toCompactOp,
  toDeleteOp,
  toPutOp,
  toRangeOp,
  toTxnOp,
} from './kv-wire';
import { isPlainRange, plainRange } from './range-records';
import { toStatus } from './status';
import type { Handlers } from './grpc-server';

type Unary = grpc.ServerUnaryCall<WireMessage, Buffer>;
type Callback = grpc.sendUnaryData<Buffer>;

function unary(fn: (req: WireMessage) => Promise<Buffer>): grpc.handleUnaryCall<WireMessage, Buffer> {
  return (call: Unary, cb: Callback) => {
    fn(call.request).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err)),
    );
  };
}

/** etcd's quota cost of a txn: the puts of every branch. */
function txnPutCost(t: TxnOp): number {
  let c = 0;
  for (const ops of [t.success, t.failure]) {
    for (const o of ops) {
      if (o.kind === 'put') c += 256 + o.key.length + o.value.length;
      else if (o.kind === 'txn') c += txnPutCost(o);
    }
  }
  return c;
}

/** Builds the KV handlers over a server. */
export function kvHandlers(s: EtcdServer, limits: { maxTxnOps: number }): Handlers {
  return {
    Range: unary(async (m) => {
      const op = toRangeOp(m);
      checkRangeRequest(op);
      if (!op.serializable && s.isLearner()) throw Errors.notSupportedForLearner();
      if (isPlainRange(op)) {
        // Served as EtcdServer.range would, with the stored records copied into the response.
        if (!op.serializable) await s.linearizableBarrier();
        const pr = await plainRange(s.store, op);
        return encodeRangeRecords(pr.records, pr.more, pr.count, op.keysOnly, { ...s.header(), revision: pr.revision });
      }
      const res = await s.range(op);
      // The header carries the revision the range was read at, not a later one.
      return encodeRangeResponse(res, { ...s.header(), revision: res.revision });
    }),
    Put: unary(async (m) => {
      const op = toPutOp(m);
      checkPutRequest(op);
      s.checkQuota(256 + op.key.length + op.value.length);
      const res = (await s.write(op)) as PutResult;
      return encodePutResponse(res, { ...s.header(), revision: res.revision });
    }),
    DeleteRange: unary(async (m) => {
      const op = toDeleteOp(m);
      if (op.key.length === 0) throw Errors.emptyKey();
      const res = (await s.write(op)) as DeleteResult;
      return encodeDeleteResponse(res, { ...s.header(), revision: res.revision });
    }),
    Txn: unary(async (m) => {
      const op = toTxnOp(m);
      checkTxnRequest(op, limits.maxTxnOps);
      checkIntervals(op.success);
      checkIntervals(op.failure);
      const cost = txnPutCost(op);
      if (cost > 0) s.checkQuota(cost);
      const res: TxnResult = await s.txn(op);
      return encodeTxnResponse(res, { ...s.header(), revision: res.revision });
    }),
    Compact: unary(async (m) => {
      const op = toCompactOp(m);
      const res = (await s.write(op)) as CompactResult;
      if (op.physical) await res.done;
      return encodeCompactResponse(s.header());
    }),
  };
}
