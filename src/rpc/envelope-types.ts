/**
 * The rpc envelope: one per mux message. Wire layout (all integers unsigned LEB128
 * varints unless said otherwise):
 *
 *   u8    version << 4 | kind
 *   u8    flags: 1 op, 2 status message, 4 timeout, 8 headers
 *   var   id (opaque, u32)
 *   u8    status (StatusCode; 0 on requests and oneways)
 *   [var  op]                               if flag 1
 *   [var  length, UTF-8 status message]     if flag 2
 *   [var  timeoutMs: remaining deadline]    if flag 4
 *   [var  count, (var len, key, var len, value)*]  if flag 8
 *   body: every remaining byte (the mux message delimits the envelope)
 *
 * A 128-byte request with no headers costs 5 bytes of envelope. The remaining deadline
 * is a field rather than a header so that it costs two bytes and no string formatting;
 * trace context (W3C `traceparent`) travels in the headers.
 */
import type { StatusCode } from './status';

export enum EnvelopeKind {
  REQUEST = 1,
  RESPONSE = 2,
  ONEWAY = 3,
  /**
   * The caller gave up on request `id` (its status says why: DEADLINE_EXCEEDED or
   * CANCELLED): the handler's signal aborts and no response is sent. Without it a far
   * handler would keep a request the caller has already failed, and a late reply there
   * would look accepted.
   */
  CANCEL = 4,
}

export const FLAG_OP = 0x01;
export const FLAG_STATUS_MESSAGE = 0x02;
export const FLAG_TIMEOUT = 0x04;
export const FLAG_HEADERS = 0x08;

/** A decoded envelope (every field present). */
export interface Envelope {
  kind: EnvelopeKind;
  /** Opaque id pairing a response with its request; 0 on oneways. */
  id: number;
  /** Application operation code (message type), for the upper layer's dispatch. */
  op: number;
  status: StatusCode;
  statusMessage: string;
  /** Remaining deadline in ms when the request was sent; 0 = none. */
  timeoutMs: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** What a caller or a handler gives: anything omitted takes its zero value. */
export interface EnvelopeInit {
  op?: number;
  status?: StatusCode;
  statusMessage?: string;
  headers?: Record<string, string>;
  body?: Buffer;
}
