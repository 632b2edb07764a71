/**
 * Status codes carried in response envelopes: the gRPC numbering, so the API edge maps
 * a remote failure to the same status without a table of its own.
 */
import type { ErrorCode, MeshwireError } from '../common';
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  isMeshwireError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from '../common';

export enum StatusCode {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

const BY_CODE: Record<ErrorCode, StatusCode> = {
  INVALID_ARGUMENT: StatusCode.INVALID_ARGUMENT,
  NOT_FOUND: StatusCode.NOT_FOUND,
  ALREADY_EXISTS: StatusCode.ALREADY_EXISTS,
  UNAVAILABLE: StatusCode.UNAVAILABLE,
  DEADLINE_EXCEEDED: StatusCode.DEADLINE_EXCEEDED,
  RESOURCE_EXHAUSTED: StatusCode.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: StatusCode.UNAUTHENTICATED,
  PERMISSION_DENIED: StatusCode.PERMISSION_DENIED,
  FAILED_PRECONDITION: StatusCode.FAILED_PRECONDITION,
  CANCELLED: StatusCode.CANCELLED,
  INTERNAL: StatusCode.INTERNAL,
};

/** The status a handler's error travels back as (UNKNOWN for errors outside our hierarchy). */
export function statusOfError(err: unknown): StatusCode {
  return isMeshwireError(err) ? BY_CODE[err.code] : StatusCode.UNKNOWN;
}

/** The error a caller gets for a non-OK response. */
export function errorOfStatus(status: StatusCode, message: string): MeshwireError {
  const m = message || `remote returned status ${StatusCode[status] ?? status}`;
  switch (status) {
    case StatusCode.CANCELLED:
      return new CancelledError(m);
    case StatusCode.INVALID_ARGUMENT:
    case StatusCode.OUT_OF_RANGE:
      return new InvalidArgumentError(m);
    case StatusCode.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(m);
    case StatusCode.NOT_FOUND:
      return new NotFoundError(m);
    case StatusCode.PERMISSION_DENIED:
      return new PermissionDeniedError(m);
    case StatusCode.RESOURCE_EXHAUSTED:
      return new ResourceExhaustedError(m);
    case StatusCode.FAILED_PRECONDITION:
      return new FailedPreconditionError(m);
    case StatusCode.UNAUTHENTICATED:
      return new UnauthenticatedError(m);
    case StatusCode.UNAVAILABLE:
      return new UnavailableError(m);
    default:
      return new InternalError(m);
  }
}
