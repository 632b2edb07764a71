/** Pure encoder of mux frames (no I/O); see frame-types.ts for the layout. */
import { MAX_CLOSE_REASON_BYTES } from './constants';
import type { Frame } from './frame-types';
import { FLAG_EOF, FRAME_HEADER_BYTES, FrameType } from './frame-types';

function header(buf: Buffer, type: FrameType, flags: number, channelId: number, len: number) {
  buf[0] = type;
  buf[1] = flags;
  buf.writeUInt16BE(channelId, 2);
  buf.writeUInt32BE(len, 4);
}

/** Encodes a DATA frame from a slice of a message without an intermediate frame object. */
export function encodeData(
  channelId: number,
  eof: boolean,
  src: Buffer,
  start = 0,
  end = src.length
): Buffer {
  const len = end - start;
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
  header(buf, FrameType.DATA, eof ? FLAG_EOF : 0, channelId, len);
  src.copy(buf, FRAME_HEADER_BYTES, start, end);
  return buf;
}

/**
 * Encodes only the 8-byte header of a DATA frame whose payload has `len` bytes: the mux
 * writes the header and a view of the message side by side and copies both once, into
 * the batch it hands to the connection.
 */
export function encodeDataHeader(channelId: number, eof: boolean, len: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header(buf, FrameType.DATA, eof ? FLAG_EOF : 0, channelId, len);
  return buf;
}

/** Cuts a close reason to MAX_CLOSE_REASON_BYTES without splitting a UTF-8 sequence. */
export function truncateReason(reason: string): Buffer {
  const b = Buffer.from(reason, 'utf8');
  if (b.length <= MAX_CLOSE_REASON_BYTES) return b;
  let end = MAX_CLOSE_REASON_BYTES;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

export function encodeFrame(f: Frame): Buffer {
  switch (f.type) {
    case FrameType.DATA:
      return encodeData(f.channelId, f.eof, f.payload);
    case FrameType.PING:
    case FrameType.PONG: {
      const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
      header(buf, f.type, 0, 0, 4);
      buf.writeUInt32BE(f.nonce >>> 0, FRAME_HEADER_BYTES);
      return buf;
    }
    case FrameType.CLOSE: {
      const reason = truncateReason(f.reason);
      const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + reason.length);
      header(buf, f.type, 0, 0, reason.length);
      reason.copy(buf, FRAME_HEADER_BYTES);
      return buf;
    }
  }
}
