/**
 * Adapters from promise-returning functions to unary gRPC handlers, shared by the services whose
 * responses are plain objects encoded by the service definition.
 */
import type * as grpc from '@grpc/grpc-js';
import { asPlainError } from '../server/concurrency';
import type { WireMessage } from './kv-wire';
import { toStatus } from './status';

type Unary = grpc.ServerUnaryCall<WireMessage, unknown>;

/** A unary handler: resolves to the response, rejects with an error translated to a gRPC status. */
export function unary(fn: (req: WireMessage) => Promise<Record<string, unknown>>): grpc.handleUnaryCall<WireMessage, unknown> {
  return (call: Unary, cb: grpc.sendUnaryData<unknown>) => {
    fn(call.request).then(
      (res) => cb(null, res),
      (err: unknown) => cb(toStatus(err)),
    );
  };
}

/**
 * A unary handler whose work gets an AbortSignal that fires when the client cancels the call or
 * its deadline passes (a waiting Lock or Campaign then withdraws).
 */
export function cancellable(
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
