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
  ListenError,
  ProtocolError,
  ConnectionClosedError,
  InternalError,
  isMeshwireError,
} from './errors';
export type { ErrorCode } from './errors';
export { systemClock, ManualClock } from './clock';
export type { Clock, Timer } from './clock';
export type { Component } from './component';
export { DropCounter, DropLedger, DropTally, DROP_LOG_INTERVAL_MS, isDropLogger } from './drops';
export type { DropLedgerInit, DropLogger } from './drops';
export { parseHostPort, formatHostPort, isLoopbackHost, systemErrorReason } from './address';
export type { HostPort } from './address';
export { CidrSet, parseCidr, parseCidrList, formatCidr } from './cidr';
export type { Cidr } from './cidr';
export { BoundedRing } from './ring';
export type { Message, Target, Interest } from './message';
export { tuneRuntime, runtimeFlags, V8_FLAGS } from './runtime';
export { quote, MAX_QUOTED_CHARS } from './text';
export {
  LATENCY_TRACE,
  Stage,
  STAGE_NAMES,
  traceBegin,
  traceMark,
  tracePending,
  traceCommit,
  traceNow,
  latencyRecords,
  dumpLatencyTrace,
  aggregateBudget,
} from './latency-trace';
export type { StageId, Budget, BudgetRow } from './latency-trace';
export {
  VARINT_MAX_SAFE,
  VARINT_MAX_U32,
  readVarint,
  varintLimit,
  varintSize,
  writeVarint,
} from './varint';
export type { VarintCursor, VarintLimit } from './varint';
