/**
 * UTF-8 sizing and writing for the hand-written codecs (the api's delivery batches, the
 * node-to-node message bodies). Ids, topics and peer names are short and ASCII: for them a
 * JavaScript loop costs less than a native Buffer call, and a 128-byte message carries four.
 */

/** Strings up to this many UTF-16 units are measured and written in JavaScript when ASCII. */
export const SHORT_STRING = 64;

type FastWriteBuffer = Buffer & {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number, length: number): number;
};

/** The UTF-8 byte length of `s` (Buffer.byteLength's answer). */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT_STRING) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return n;
}

/**
 * Writes `s`, whose UTF-8 length is `len` (utf8Length), at `buf[pos]`; returns `len`. A
 * byte length equal to the string's length means every unit is ASCII: short ones are
 * copied byte by byte, long ones by latin1 (exact for ASCII, and faster than UTF-8).
 */
export function writeUtf8(buf: Buffer, pos: number, s: string, len: number): number {
  const n = s.length;
  if (len === n) {
    if (n <= SHORT_STRING) for (let i = 0; i < n; i++) buf[pos + i] = s.charCodeAt(i);
    else (buf as FastWriteBuffer).latin1Write(s, pos, len);
    return len;
  }
  return (buf as FastWriteBuffer).utf8Write(s, pos, len);
}
