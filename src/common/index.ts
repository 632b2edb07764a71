/**
 * Common: the bottom layer every other layer may import. Errors, the injected clock and
 * drop counters. No I/O here.
 */
export {
  MeshwireError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  NoRespondersError,
  DeadlineExceededError,
  ResourceExhaustedError,
  SlowConsumerError,
  UnauthenticatedError,
  PermissionDeniedError,
  FailedPreconditionError,
  CancelledError,
  ProtocolError,
  ConnectionClosedError,
  InternalError,
  isMeshwireError,
} from './errors';
export type { ErrorCode } from './errors';
export { systemClock, ManualClock } from './clock';
export type { Clock, Timer } from './clock';
export { DropCounter } from './drops';
export { parseHostPort, formatHostPort } from './address';
export type { HostPort } from './address';
export { BoundedRing } from './ring';
export type { Message, Target, Interest } from './message';
export { tuneRuntime, runtimeFlags, V8_FLAGS } from './runtime';
export { quote, MAX_QUOTED_CHARS } from './text';
