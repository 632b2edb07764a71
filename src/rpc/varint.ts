/** Unsigned LEB128 varints of at most 32 bits (pure helpers of the envelope codec). */
import { ProtocolError } from '../common';

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** Writes v at off; returns the offset after it. */
export function writeVarint(buf: Buffer, off: number, v: number): number {
  while (v >= 0x80) {
    buf[off++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[off++] = v;
  return off;
}

/** A cursor for reading; `pos` advances. */
export interface Cursor {
  buf: Buffer;
  pos: number;
}

export function readVarint(c: Cursor): number {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (c.pos >= c.buf.length) throw new ProtocolError('envelope truncated inside a varint');
    const b = c.buf[c.pos++];
    if (i === 4 && b > 0x0f) throw new ProtocolError('varint above 32 bits');
    result += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return result;
    shift += 7;
  }
  throw new ProtocolError('varint longer than 5 bytes');
}
