/**
 * Common: the bottom layer every other layer may import. Errors, the injected clock and
 * drop counters. No I/O here.
 */
import * as latencyTrace from './latency-trace';
import * as utf8 from './utf8';
import * as varint from './varint';
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
export { systemClock, ManualClock, repeatEvery } from './clock';
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
export { STAGE_NAMES, latencyRecords, dumpLatencyTrace, aggregateBudget } from './latency-trace';
export type { StageId, Budget, BudgetRow } from './latency-trace';
export type { VarintCursor, VarintLimit } from './varint';

/*
 * What runs per message or per datagram (latency stamps, varints, UTF-8 strings) is exported
 * as plain values, not as `export { x } from`: tsc compiles a re-export to a getter on this
 * module's exports, and V8 then does not inline the function at the call sites in other
 * layers (measured: a cross-node message body took 25% longer to encode).
 */
export const LATENCY_TRACE = latencyTrace.LATENCY_TRACE;
export const Stage = latencyTrace.Stage;
export const traceBegin = latencyTrace.traceBegin;
export const traceMark = latencyTrace.traceMark;
export const tracePending = latencyTrace.tracePending;
export const traceCommit = latencyTrace.traceCommit;
export const traceNow = latencyTrace.traceNow;
export const VARINT_MAX_SAFE = varint.VARINT_MAX_SAFE;
export const VARINT_MAX_U32 = varint.VARINT_MAX_U32;
export const readVarint = varint.readVarint;
export const varintLimit = varint.varintLimit;
export const varintSize = varint.varintSize;
export const writeVarint = varint.writeVarint;
export const SHORT_STRING = utf8.SHORT_STRING;
export const utf8Length = utf8.utf8Length;
export const writeUtf8 = utf8.writeUtf8;
export { heapPush, heapPop } from './heap';
