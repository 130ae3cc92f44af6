/**
 * gRPC server metrics under the names etcd exports (go-grpc-prometheus):
 *
 *   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
 *   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
 *
 * grpc_type is unary, client_stream, server_stream or bidi_stream; grpc_code is the status name
 * as grpc-go spells it ("OK", "InvalidArgument", "Unavailable", …). Every method of a registered
 * service is exported from the start, at 0 for every code, as etcd does.
 *
 * A call counts as handled when its handler answers: a unary call when the callback is called, a
 * stream when it ends (OK), fails (the status code) or is cancelled by the client (Canceled).
 */
import * as grpc from '@grpc/grpc-js';
import type { Counter, CounterSeries, MetricsRegistry } from '../server/metrics';

/** How a method streams, as the grpc_type label spells it. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** grpc-go's names of the status codes, indexed by code. */
export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** grpc-go's name of a status code ("Code(99)" for one outside the table). */
export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `Code(${code})`;
}

/** The grpc_type of a method from its streaming flags. */
export function grpcType(requestStream: boolean, responseStream: boolean): GrpcType {
  if (requestStream && responseStream) return 'bidi_stream';
  if (requestStream) return 'client_stream';
  if (responseStream) return 'server_stream';
  return 'unary';
}

function codeOf(err: unknown): number {
  if (err === null || err === undefined) return grpc.status.OK;
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? c : grpc.status.UNKNOWN;
}

type AnyCallback = (err: unknown, ...rest: unknown[]) => void;
type AnyHandler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerDuplexStream<unknown, unknown>, cb?: AnyCallback) => void;

/** The started/handled counters of the gRPC server. */
export class GrpcServerMetrics {
  private readonly started: Counter;
  private readonly handled: Counter;

  /** Registers grpc_server_started_total and grpc_server_handled_total in `reg`. */
  constructor(reg: MetricsRegistry) {
    this.started = reg.counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method'],
    });
    this.handled = reg.counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'],
    });
  }

  /** Exports a method's series at 0 (every code), before its first call. */
  initMethod(service: string, method: string, type: GrpcType): void {
    const labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    this.started.init(labels);
    for (const code of GRPC_CODE_NAMES) this.handled.init({ ...labels, grpc_code: code });
  }

  /** Calls started so far for a method. */
  startedCount(service: string, method: string, type: GrpcType): number {
    return this.started.get({ grpc_type: type, grpc_service: service, grpc_method: method });
  }

  /** Calls of a method handled with `code` (a grpc-go name, e.g. "OK") so far. */
  handledCount(service: string, method: string, type: GrpcType, code: string): number {
    return this.handled.get({ grpc_type: type, grpc_service: service, grpc_method: method, grpc_code: code });
  }

  /**
   * Wraps a handler of `service`/`method` so each call is counted when it starts and when it is
   * handled; the handler's behaviour is unchanged. Also exports the method's series at 0.
   */
  instrument(service: string, method: string, type: GrpcType, handler: grpc.UntypedHandleCall): grpc.UntypedHandleCall {
    this.initMethod(service, method, type);
    const labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    const started = this.started.handle(labels);
    const handledByCode = new Map<number, CounterSeries>();
    const handled = (code: number): CounterSeries => {
      let s = handledByCode.get(code);
      if (s === undefined) {
        s = this.handled.handle({ ...labels, grpc_code: grpcCodeName(code) });
        handledByCode.set(code, s);
      }
      return s;
    };
    const fn = handler as AnyHandler;
    const wrapped: AnyHandler = (call, cb) => {
      started.inc();
      let done = false;
      const finish = (code: number): void => {
        if (done) return;
        done = true;
        handled(code).inc();
      };
      if (cb !== undefined) {
        fn(call, (err: unknown, ...rest: unknown[]) => {
          finish(codeOf(err));
          cb(err, ...rest);
        });
        return;
      }
      call.on('error', (err: unknown) => finish(codeOf(err)));
      call.on('finish', () => finish(grpc.status.OK));
      call.on('cancelled', () => finish(grpc.status.CANCELLED));
      call.on('close', () => finish(grpc.status.CANCELLED));
      fn(call);
    };
    return wrapped as unknown as grpc.UntypedHandleCall;
  }
}
