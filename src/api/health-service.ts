/**
 * The standard gRPC health service (grpc.health.v1.Health), as etcd registers it: the empty
 * service name and the etcd services are SERVING while the member runs.
 */
import * as grpc from '@grpc/grpc-js';
import type { Handlers } from './grpc-server';
import type { WireMessage } from './kv-wire';

/** HealthCheckResponse.ServingStatus values. */
const SERVING = 1;
const SERVICE_UNKNOWN = 3;

/** Services the health service answers for ("" means the whole server). */
const KNOWN = new Set(['', 'etcdserverpb.KV', 'etcdserverpb.Watch', 'etcdserverpb.Lease', 'etcdserverpb.Cluster', 'etcdserverpb.Maintenance']);

function statusFor(m: WireMessage): number {
  const service = typeof m.service === 'string' ? m.service : '';
  return KNOWN.has(service) ? SERVING : SERVICE_UNKNOWN;
}

/** Builds the Health handlers. */
export function healthHandlers(): Handlers {
  return {
    Check: (call: grpc.ServerUnaryCall<WireMessage, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const st = statusFor(call.request);
      if (st === SERVICE_UNKNOWN) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, { status: st });
    },
    Watch: (call: grpc.ServerWritableStream<WireMessage, unknown>) => {
      // The status never changes while the member runs: send it once and keep the stream open.
      call.write({ status: statusFor(call.request) });
    },
  };
}
