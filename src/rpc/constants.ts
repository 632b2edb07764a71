/** Defaults and limits of the rpc layer. Units are in the names. */

/** Requests in flight per connection, per direction. */
export const DEFAULT_MAX_IN_FLIGHT = 1024;

/** Incoming requests whose handler has not finished, per connection. */
export const DEFAULT_MAX_CONCURRENT_HANDLERS = 1024;

/** Timeout of a request given neither timeoutMs nor deadline, counted from its write. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Largest number of headers in one envelope. */
export const MAX_HEADERS = 64;

/** Largest total of header key and value bytes in one envelope. */
export const MAX_HEADER_BYTES = 16 * 1024;

/** Longest status message kept (bytes of UTF-8); longer ones are cut. */
export const MAX_STATUS_MESSAGE_BYTES = 1024;

/** Envelope wire format version (high nibble of the first byte). */
export const ENVELOPE_VERSION = 1;
