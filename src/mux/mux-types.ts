/** The mux's public types: its options, events, close and drop reasons, and counters. */
import type { Clock, DropLedger, MeshwireError } from '../common';
import type { ChannelDescriptor } from './channel';

export interface MuxInit {
  /** The channels both sides declared (same ids on both ends). */
  channels: readonly ChannelDescriptor[];
  /** @default systemClock */
  clock?: Clock;
  /** Where this connection's drops are recorded (the node's ledger). @default none */
  drops?: DropLedger;
  /** Ping this long after the last pong; 0 turns keepalive off. @default DEFAULT_PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /** Close when nothing (no pong, no frame) comes from the peer this long after a ping. @default DEFAULT_PONG_TIMEOUT_MS */
  pongTimeoutMs?: number;
  /** Largest fragment payload. @default DEFAULT_MAX_FRAGMENT_BYTES */
  maxFragmentBytes?: number;
  /** Largest number of send() calls waiting for room, per channel. @default DEFAULT_MAX_SEND_WAITERS */
  maxSendWaiters?: number;
  /**
   * Bytes the mux keeps written into the duplex and not yet taken by it. Everything there
   * is ahead of any later frame, however urgent: small keeps priorities sharp, large keeps
   * a slow-to-call-back transport busy.
   * @default the duplex's writableHighWaterMark, at most MAX_DEFAULT_WRITE_BUFFER_BYTES
   */
  writeBufferBytes?: number;
}

export interface SendOptions {
  /** Aborting rejects a send still waiting for room with CancelledError. */
  signal?: AbortSignal;
  /** Called once the message's last fragment has been handed to the connection. */
  onWritten?: () => void;
}

/** Why a mux closed. */
export type MuxCloseReason =
  | 'local'
  | 'peer_closed'
  | 'transport_closed'
  | 'transport_error'
  | 'protocol_error'
  | 'pong_timeout';

/** Drop reasons counted by `mux.drops`. */
export type MuxDropReason = 'queue_full' | 'unsent_on_close' | 'listener_error' | 'protocol_error';

export interface MuxStats {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  pingsSent: number;
  pongsReceived: number;
}

/** Events of a Mux. */
export interface MuxEvents {
  /** A whole message arrived on a channel. */
  message: [channelId: number, payload: Buffer];
  /** The mux closed; emitted once. */
  close: [err: MeshwireError, reason: MuxCloseReason];
}
