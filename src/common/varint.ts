/**
 * Unsigned LEB128 varints (protobuf's encoding): the one implementation for every layer
 * (the rpc envelope, dispatch message bodies, the api's protobuf writer).
 *
 * Values are JavaScript numbers, so at most Number.MAX_SAFE_INTEGER (2^53 - 1, 8 bytes).
 * Each caller reads with an explicit {@link VarintLimit}: the largest value its format
 * allows and the error messages that name the format. Anything over the limit, longer
 * than the limit's bytes, or cut off throws ProtocolError. Encodings with redundant
 * continuation bytes (0x80 0x00) are accepted as protobuf does, within the byte limit.
 *
 * Hot path: no allocation; values below 2^32 take the integer-shift loop.
 */
import { ProtocolError } from './errors';

/** What a reader accepts, and how its errors read. */
export interface VarintLimit {
  /** Largest value accepted (at most Number.MAX_SAFE_INTEGER). */
  readonly maxValue: number;
  /** Most bytes read: the size of `maxValue` (a longer encoding is rejected). */
  readonly maxBytes: number;
  /** Error when the input ends inside a varint. */
  readonly truncated: string;
  /** Error when the value is above `maxValue`. */
  readonly tooLarge: string;
  /** Error when the varint runs past `maxBytes`. */
  readonly tooLong: string;
}

/** A limit of `maxValue`, with messages naming `what` (e.g. 'envelope'). */
export function varintLimit(maxValue: number, what: string): VarintLimit {
  if (!Number.isSafeInteger(maxValue) || maxValue < 0) {
    throw new RangeError(`varint limit ${maxValue} is not a safe non-negative integer`);
  }
  const maxBytes = varintSize(maxValue);
  return {
    maxValue,
    maxBytes,
    truncated: `${what} truncated inside a varint`,
    tooLarge: `varint above ${maxValue} in ${what}`,
    tooLong: `varint longer than ${maxBytes} bytes in ${what}`,
  };
}

/** Largest 32-bit unsigned value (5 bytes). */
export const VARINT_MAX_U32 = 0xffffffff;
/** Largest value a varint carries here: Number.MAX_SAFE_INTEGER (8 bytes). */
export const VARINT_MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Bytes `v` takes (v a non-negative safe integer). */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  if (v < 0x800000000) return 5;
  if (v < 0x40000000000) return 6;
  if (v < 0x2000000000000) return 7;
  return 8;
}

/** Writes `v` (a non-negative safe integer) at `off`; returns the offset after it. */
export function writeVarint(buf: Buffer, off: number, v: number): number {
  if (v > 0xffffffff) return writeWideVarint(buf, off, v);
  while (v >= 0x80) {
    buf[off++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[off++] = v;
  return off;
}

/** Above 32 bits `>>>` would truncate: divide (`& 0x7f` keeps the low bits of any integer). */
function writeWideVarint(buf: Buffer, off: number, v: number): number {
  while (v >= 0x80) {
    buf[off++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[off++] = v;
  return off;
}

/** A read position in a buffer; `pos` advances past what is read. */
export interface VarintCursor {
  readonly buf: Buffer;
  pos: number;
}

/** Reads a varint at `c.pos` within `limit`; advances `c.pos`. */
export function readVarint(c: VarintCursor, limit: VarintLimit): number {
  const buf = c.buf;
  let pos = c.pos;
  let result = 0;
  let mul = 1;
  for (let i = 0; i < limit.maxBytes; i++) {
    if (pos >= buf.length) throw new ProtocolError(limit.truncated);
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      if (result > limit.maxValue) throw new ProtocolError(limit.tooLarge);
      c.pos = pos;
      return result;
    }
    mul *= 0x80;
  }
  throw new ProtocolError(limit.tooLong);
}
