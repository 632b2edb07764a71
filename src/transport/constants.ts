/**
 * Defaults and protocol constants of the reliable-UDP transport. Units are in the names.
 * Values chosen for datacenter links (RTTs of tens of microseconds to a few milliseconds).
 */

/** Wire protocol version carried in the handshake. */
export const PROTOCOL_VERSION = 1;

/** Largest UDP payload we send by default: MTU 1500 - IPv4 20 - UDP 8. */
export const DEFAULT_MAX_DATAGRAM_SIZE = 1472;
/** Smallest max datagram size we accept from config or a peer. */
export const MIN_DATAGRAM_SIZE = 256;
/** A client INITIAL is padded to this size (or the max datagram size, if smaller). RFC 9000 §14.1. */
export const INITIAL_PADDED_SIZE = 1200;

/** Receive window (bytes) advertised to the peer; also bounds the reassembly buffer. */
export const DEFAULT_RECEIVE_WINDOW_BYTES = 8 * 1024 * 1024;
/** Bytes accepted from the application but not yet acknowledged, before write() backpressure. */
export const DEFAULT_SEND_BUFFER_BYTES = 8 * 1024 * 1024;

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
/** Max time a receiver delays an ACK (transport parameter max_ack_delay, RFC 9000 §18.2). */
export const DEFAULT_MAX_ACK_DELAY_MS = 2;
/** Client INITIAL retransmission timer (doubles each time). */
export const HANDSHAKE_INITIAL_TIMEOUT_MS = 100;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** RFC 9002 §6.1.1: packet reordering threshold. */
export const PACKET_THRESHOLD = 3;
/** Upper bound of the adaptive reordering threshold. */
export const MAX_PACKET_THRESHOLD = 32;
/** RFC 9002 §6.1.2: time threshold 9/8 of an RTT. */
export const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 §6.1.2 kGranularity; also the floor of the PTO (low milliseconds for datacenters). */
export const TIMER_GRANULARITY_MS = 1;
/** RFC 9002 §6.2.2: initial RTT before any sample; low since we target datacenter links. */
export const INITIAL_RTT_MS = 20;
/** Upper bound of one (backed-off) probe timeout. */
export const MAX_PTO_MS = 1000;
/** Maximum PTO backoff exponent. */
export const MAX_PTO_BACKOFF = 8;

/** Initial congestion window in packets (RFC 9002 §7.2). */
export const INITIAL_WINDOW_PACKETS = 32;
/** Minimum congestion window in packets. */
export const MINIMUM_WINDOW_PACKETS = 4;

/** Bytes of pacing credit allowed to accumulate: sub-millisecond timers are not available in Node. */
export const PACING_BURST_MS = 2;
export const PACING_MIN_BURST_PACKETS = 10;

/** Max ACK ranges kept by the receiver and sent in one ACK frame. */
export const MAX_ACK_RANGES = 32;

/** Anti-amplification factor before the peer address is validated (RFC 9000 §8.1). */
export const AMPLIFICATION_FACTOR = 3;

/** Max stateless resets sent per second by one socket. */
export const STATELESS_RESETS_PER_SECOND = 100;
/** Max half-open (handshaking, unvalidated) connections per socket. */
export const MAX_HALF_OPEN_CONNECTIONS = 1024;
/** Max connections per socket. */
export const MAX_CONNECTIONS = 4096;

/** Built-in development secret: used when no cluster secret is configured (a warning is logged). */
export const DEVELOPMENT_SECRET = Buffer.from(
  'meshwire-development-secret-do-not-use-in-production'
);
