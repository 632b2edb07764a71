/**
 * Defaults of the mux layer. Units are in the names. See issue 4
 * (Tendermint's MConnection) for where each one comes from.
 */

/**
 * Largest payload of one DATA frame; a message is cut into fragments of at most this.
 * Smaller fragments interleave channels more finely (an urgent frame waits behind at most
 * one fragment), larger ones cost fewer frames; 32 KiB keeps a 16 KiB message plus its
 * envelope in one frame.
 */
export const DEFAULT_MAX_FRAGMENT_BYTES = 32 * 1024;

/** Largest frame payload the decoder accepts (a fragment, a close reason, a ping nonce). */
export const MAX_FRAME_PAYLOAD_BYTES = 1024 * 1024;

/** Largest number of undecoded bytes the decoder holds. */
export const DEFAULT_MAX_DECODER_BUFFER_BYTES = 2 * MAX_FRAME_PAYLOAD_BYTES;

/** Longest close reason sent on the wire (bytes of UTF-8). */
export const MAX_CLOSE_REASON_BYTES = 256;

/** Default queue capacity of a channel, in messages. */
export const DEFAULT_SEND_QUEUE_CAPACITY = 1024;

/** Default largest message of a channel. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Ping every this often (Tendermint: 60 s; we want failures found sooner). */
export const DEFAULT_PING_INTERVAL_MS = 10_000;

/** Close the connection when a pong has not come back this long after its ping. */
export const DEFAULT_PONG_TIMEOUT_MS = 5_000;

/**
 * Default cap on what the mux keeps written into the duplex: whatever sits there is ahead
 * of urgent frames, so a duplex with a large highWaterMark must not set the default.
 */
export const MAX_DEFAULT_WRITE_BUFFER_BYTES = 256 * 1024;

/** Largest batch of frames joined into one write to the duplex. */
export const MAX_WRITE_BATCH_BYTES = 32 * 1024;

/** A write batch this large is handed over as views (corked), not joined into a copy. */
export const LARGE_BATCH_BYTES = 8 * 1024;

/** After a close, destroy the duplex if it has not finished closing by then. */
export const DESTROY_AFTER_CLOSE_MS = 2_000;

/** Per-byte cost the scheduler adds for each frame header (keeps tiny messages honest). */
export const SCHEDULER_FRAME_OVERHEAD_BYTES = 8;

/** Largest number of send() callers waiting for room on one channel. */
export const DEFAULT_MAX_SEND_WAITERS = 1024;
