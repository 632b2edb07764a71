/**
 * Rpc: request/response/oneway envelopes over one mux channel, with an opaque-id
 * response table.
 *
 * @example
 * ```ts
 * const rpc = new RpcConnection(mux, { channelId: 1, maxInFlight: 256 });
 * rpc.setHandler(async (req, ctx) => {
 *   // ctx.deadline / ctx.signal: the caller's remaining deadline, here.
 *   return { body: handle(req.op, req.headers, req.body) };
 * });
 * const res = await rpc.request({ op: 7, headers: { traceparent }, body }, { timeoutMs: 2000, signal });
 * await rpc.oneway({ op: 8, body });
 * ```
 */
export { RpcConnection } from './rpc-connection';
export type {
  RpcConnectionInit,
  RequestOptions,
  HandlerContext,
  RpcHandler,
  RpcDropReason,
} from './rpc-connection';
export { EnvelopeKind } from './envelope-types';
export type { Envelope, EnvelopeInit } from './envelope-types';
export { encodeEnvelope } from './envelope-encode';
export { decodeEnvelope } from './envelope-decode';
export { StatusCode, statusOfError, errorOfStatus } from './status';
export { RequestTable, PendingCall } from './request-table';
export type { RequestTableInit, PendingOptions } from './request-table';
export {
  DEFAULT_MAX_IN_FLIGHT,
  DEFAULT_MAX_CONCURRENT_HANDLERS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  MAX_HEADERS,
  MAX_HEADER_BYTES,
} from './constants';
