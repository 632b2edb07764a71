/**
 * Client input quoted in error messages. An error echoes what the client sent so a person
 * can see what was wrong, but never all of it: a 100 KB field echoed whole makes the error
 * itself too large for the client to receive (grpc-js refuses status details over its
 * metadata limit), and a log line no one can read.
 */

/** Characters of client input an error message quotes at most. */
export const MAX_QUOTED_CHARS = 100;

/**
 * `value` as a JSON string, cut to MAX_QUOTED_CHARS with its full size noted:
 * `"orders.eu"`, or `"aaaa…" (102400 bytes)`.
 */
export function quote(value: unknown, max = MAX_QUOTED_CHARS): string {
  const text = typeof value === 'string' ? value : String(value);
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, max) + '…')} (${Buffer.byteLength(text)} bytes)`;
}
