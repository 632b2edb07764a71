/**
 * Mux: prioritized channels over one connection (any `stream.Duplex`), modelled on Tendermint's MConnection.
 *
 * @example
 * ```ts
 * const mux = new Mux(conn, {
 *   channels: [
 *     { id: 0, priority: 1, urgent: true, maxMessageBytes: 64 * 1024 }, // hello, interest
 *     { id: 1, priority: 4, sendQueueCapacity: 1024 },                  // requests
 *     { id: 2, priority: 1 },                                            // bulk messages
 *   ],
 * });
 * mux.on('message', (channelId, payload) => { ... });
 * mux.on('close', (err, reason) => { ... });
 * await mux.send(1, payload, { signal });   // waits for room
 * if (!mux.trySend(2, payload)) { ... }     // never waits
 * mux.close('shutting down');
 * ```
 */
export { Mux } from './mux';
export type {
  MuxInit,
  MuxEvents,
  SendOptions,
  MuxCloseReason,
  MuxDropReason,
  MuxStats,
} from './mux';
export type { ChannelDescriptor, ResolvedChannel } from './channel';
export { resolveChannels } from './channel';
export { FrameDecoder } from './decode';
export type { FrameDecoderInit } from './decode';
export { encodeFrame, encodeData } from './encode';
export { FrameType, FLAG_EOF, FRAME_HEADER_BYTES } from './frame-types';
export type { Frame, DataFrame, PingFrame, PongFrame, CloseFrame } from './frame-types';
export { SendScheduler } from './scheduler';
export type { Fragment, QueuedMessage } from './scheduler';
export { Reassembler } from './reassembler';
export { createDuplexPair } from './memory-duplex';
export {
  DEFAULT_MAX_FRAGMENT_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_SEND_QUEUE_CAPACITY,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_PONG_TIMEOUT_MS,
  MAX_FRAME_PAYLOAD_BYTES,
  DESTROY_AFTER_CLOSE_MS,
} from './constants';
