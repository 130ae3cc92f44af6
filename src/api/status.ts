/**
 * The one place where server errors become gRPC statuses. Expected errors (EtcdError) keep their
 * code and etcd's exact message; anything else is reported as UNKNOWN with its text, as etcd does.
 */
import * as grpc from '@grpc/grpc-js';
import { EtcdError } from '../errors';

/** A gRPC error status as grpc-js callbacks and streams accept it. */
export type StatusError = Partial<grpc.StatusObject> & { code: grpc.status; details: string };

/** Translates any thrown value to a gRPC status. */
export function toStatus(err: unknown): StatusError {
  if (err instanceof EtcdError) return { code: err.code as number as grpc.status, details: err.message };
  const msg = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.UNKNOWN, details: msg };
}
