/**
 * The one place where meshwire errors become gRPC statuses. grpc-js turns any error
 * without a numeric `code` into UNKNOWN, so every handler passes errors through here.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { Metadata, status } from '@grpc/grpc-js';
import type { ErrorCode } from '../common';
import { isMeshwireError } from '../common';

const CODE_TO_STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  UNAVAILABLE: status.UNAVAILABLE,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  CANCELLED: status.CANCELLED,
  INTERNAL: status.INTERNAL,
};

/** gRPC status code for an error (INTERNAL for anything outside our hierarchy). */
export function grpcCodeOf(err: unknown): status {
  return isMeshwireError(err) ? CODE_TO_STATUS[err.code] : status.INTERNAL;
}

/**
 * Converts any error to a ServiceError. Errors outside our hierarchy are bugs: the client
 * gets INTERNAL with a generic message (details stay in the node's log via `onInternal`).
 */
export function toServiceError(err: unknown, onInternal?: (err: unknown) => void): ServiceError {
  if (isMeshwireError(err)) {
    return Object.assign(new Error(err.message), {
      code: CODE_TO_STATUS[err.code],
      details: err.message,
      metadata: new Metadata(),
    });
  }
  onInternal?.(err);
  return Object.assign(new Error('internal error'), {
    code: status.INTERNAL,
    details: 'internal error in meshwire node (see the node log)',
    metadata: new Metadata(),
  });
}

/** Status code and message for per-item errors carried inside stream responses. */
export function errorFields(
  err: unknown,
  onInternal?: (err: unknown) => void
): { errorCode: number; errorMessage: string } {
  const se = toServiceError(err, onInternal);
  return { errorCode: se.code, errorMessage: se.details };
}
