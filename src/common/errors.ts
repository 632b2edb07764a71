/**
 * The one error hierarchy of meshwire. Every layer throws (or rejects with) a
 * MeshwireError subclass; the gRPC edge maps `code` to a status in one place
 * (src/api/status.ts). Tests assert `name` and `code`, never message text.
 */

/** Stable error codes. They mirror the gRPC status names the API returns. */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'UNAVAILABLE'
  | 'DEADLINE_EXCEEDED'
  | 'RESOURCE_EXHAUSTED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'FAILED_PRECONDITION'
  | 'CANCELLED'
  | 'INTERNAL';

export class MeshwireError extends Error {
  static override readonly name: string = 'MeshwireError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input from a client or a config file is wrong; the message says what and why. */
export class InvalidArgumentError extends MeshwireError {
  static override readonly name: string = 'InvalidArgumentError';
  constructor(message: string, options?: ErrorOptions) {
    super('INVALID_ARGUMENT', message, options);
  }
}

export class NotFoundError extends MeshwireError {
  static override readonly name: string = 'NotFoundError';
  constructor(message: string, options?: ErrorOptions) {
    super('NOT_FOUND', message, options);
  }
}

/** The peer, responder or connection cannot be reached now; retrying later may work. */
export class UnavailableError extends MeshwireError {
  static override readonly name: string = 'UnavailableError';
  constructor(message: string, options?: ErrorOptions) {
    super('UNAVAILABLE', message, options);
  }
}

/** No responder subscribed to a request's topic. */
export class NoRespondersError extends UnavailableError {
  static override readonly name: string = 'NoRespondersError';
}

export class DeadlineExceededError extends MeshwireError {
  static override readonly name: string = 'DeadlineExceededError';
  constructor(message: string, options?: ErrorOptions) {
    super('DEADLINE_EXCEEDED', message, options);
  }
}

/** A bounded queue, window or limit is full. */
export class ResourceExhaustedError extends MeshwireError {
  static override readonly name: string = 'ResourceExhaustedError';
  constructor(message: string, options?: ErrorOptions) {
    super('RESOURCE_EXHAUSTED', message, options);
  }
}

/** A subscriber could not keep up and its policy is CLOSE. */
export class SlowConsumerError extends ResourceExhaustedError {
  static override readonly name: string = 'SlowConsumerError';
}

export class UnauthenticatedError extends MeshwireError {
  static override readonly name: string = 'UnauthenticatedError';
  /** Name of the presented token when it is known (e.g. expired), for logs; never the token. */
  readonly tokenName: string | undefined;
  constructor(message: string, options?: ErrorOptions & { tokenName?: string }) {
    super('UNAUTHENTICATED', message, options);
    this.tokenName = options?.tokenName;
  }
}

export class PermissionDeniedError extends MeshwireError {
  static override readonly name: string = 'PermissionDeniedError';
  constructor(message: string, options?: ErrorOptions) {
    super('PERMISSION_DENIED', message, options);
  }
}

/** The node is shutting down or a component is not started. */
export class FailedPreconditionError extends MeshwireError {
  static override readonly name: string = 'FailedPreconditionError';
  constructor(message: string, options?: ErrorOptions) {
    super('FAILED_PRECONDITION', message, options);
  }
}

/**
 * A listener (gRPC, UDP peer or metrics) could not bind. The message is one line naming
 * the config key, the address and the reason, e.g.
 * `grpcListen 127.0.0.1:7400: address already in use`.
 */
export class ListenError extends MeshwireError {
  static override readonly name: string = 'ListenError';
  /** The config key of the listener: grpcListen, peerListen or metricsListen. */
  readonly key: string;
  readonly address: string;
  constructor(key: string, address: string, reason: string, options?: ErrorOptions) {
    super('FAILED_PRECONDITION', `${key} ${address}: ${reason}`, options);
    this.key = key;
    this.address = address;
  }
}

export class CancelledError extends MeshwireError {
  static override readonly name: string = 'CancelledError';
  constructor(message: string, options?: ErrorOptions) {
    super('CANCELLED', message, options);
  }
}

/** The far side broke the wire protocol (malformed frame, unknown channel...). */
export class ProtocolError extends MeshwireError {
  static override readonly name: string = 'ProtocolError';
  constructor(message: string, options?: ErrorOptions) {
    super('UNAVAILABLE', message, options);
  }
}

/** A connection closed (gracefully or not) while work was pending on it. */
export class ConnectionClosedError extends UnavailableError {
  static override readonly name: string = 'ConnectionClosedError';
}

export class InternalError extends MeshwireError {
  static override readonly name: string = 'InternalError';
  constructor(message: string, options?: ErrorOptions) {
    super('INTERNAL', message, options);
  }
}

/** True for any error of our hierarchy. */
export function isMeshwireError(err: unknown): err is MeshwireError {
  return err instanceof MeshwireError;
}
