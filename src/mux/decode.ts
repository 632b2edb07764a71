/**
 * Pure, incremental decoder of mux frames (no I/O), after grpc-js stream-decoder.ts and
 * mplex decode.ts: `write(chunk)` returns every frame completed by the chunk. Limits:
 * a frame payload above `maxFramePayloadBytes`, or more than `maxBufferBytes` held
 * undecoded, throws ProtocolError, as do an unknown frame type or bad flags.
 */
import { ProtocolError } from '../common';
import {
  DEFAULT_MAX_DECODER_BUFFER_BYTES,
  MAX_CLOSE_REASON_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
} from './constants';
import type { Frame } from './frame-types';
import { FLAG_EOF, FRAME_HEADER_BYTES, FrameType } from './frame-types';

export interface FrameDecoderInit {
  /** @default MAX_FRAME_PAYLOAD_BYTES */
  maxFramePayloadBytes?: number;
  /** @default DEFAULT_MAX_DECODER_BUFFER_BYTES */
  maxBufferBytes?: number;
}

export class FrameDecoder {
  private readonly maxFramePayloadBytes: number;
  private readonly maxBufferBytes: number;
  /**
   * Undecoded chunks. They are joined only once they hold `need` bytes (a whole header,
   * or a whole frame once its header is known), so a large frame arriving in many small
   * chunks is copied once, not once per chunk.
   */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private need = FRAME_HEADER_BYTES;
  private failed = false;

  constructor(init: FrameDecoderInit = {}) {
    this.maxFramePayloadBytes = init.maxFramePayloadBytes ?? MAX_FRAME_PAYLOAD_BYTES;
    this.maxBufferBytes = init.maxBufferBytes ?? DEFAULT_MAX_DECODER_BUFFER_BYTES;
  }

  /** Bytes held that do not yet make a whole frame. */
  get bufferedBytes(): number {
    return this.chunkBytes;
  }

  write(chunk: Buffer): Frame[] {
    if (this.failed) throw new ProtocolError('decoder used after a protocol error');
    try {
      return this.decode(chunk);
    } catch (err) {
      this.failed = true;
      this.chunks = [];
      this.chunkBytes = 0;
      throw err;
    }
  }

  private decode(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
    if (this.chunkBytes > this.maxBufferBytes) {
      throw new ProtocolError(
        `decoder holds ${this.chunkBytes} bytes, above the limit of ${this.maxBufferBytes}`
      );
    }
    if (this.chunkBytes < this.need) return [];
    const buf =
      this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.chunkBytes);
    const out: Frame[] = [];
    let o = 0;
    this.need = FRAME_HEADER_BYTES;
    for (;;) {
      const avail = buf.length - o;
      if (avail < FRAME_HEADER_BYTES) break;
      const type = buf[o];
      const flags = buf[o + 1];
      const channelId = buf.readUInt16BE(o + 2);
      const len = buf.readUInt32BE(o + 4);
      this.checkHeader(type, flags, channelId, len);
      if (avail < FRAME_HEADER_BYTES + len) {
        this.need = FRAME_HEADER_BYTES + len;
        break;
      }
      const start = o + FRAME_HEADER_BYTES;
      o = start + len;
      out.push(this.toFrame(type, flags, channelId, buf.subarray(start, o)));
    }
    if (o === buf.length) {
      this.chunks = [];
      this.chunkBytes = 0;
    } else {
      const rest = buf.subarray(o);
      this.chunks = [rest];
      this.chunkBytes = rest.length;
    }
    return out;
  }

  private checkHeader(type: number, flags: number, channelId: number, len: number): void {
    if (type > FrameType.CLOSE) throw new ProtocolError(`unknown frame type ${type}`);
    if (type === FrameType.DATA) {
      if ((flags & ~FLAG_EOF) !== 0)
        throw new ProtocolError(`bad DATA flags 0x${flags.toString(16)}`);
      if (len > this.maxFramePayloadBytes) {
        throw new ProtocolError(
          `frame payload of ${len} bytes is above the limit of ${this.maxFramePayloadBytes}`
        );
      }
      return;
    }
    if (flags !== 0 || channelId !== 0) {
      throw new ProtocolError(`control frame type ${type} with flags or channel set`);
    }
    if ((type === FrameType.PING || type === FrameType.PONG) && len !== 4) {
      throw new ProtocolError(`ping/pong frame with ${len} payload bytes (want 4)`);
    }
    if (type === FrameType.CLOSE && len > MAX_CLOSE_REASON_BYTES) {
      throw new ProtocolError(`close reason of ${len} bytes is above ${MAX_CLOSE_REASON_BYTES}`);
    }
  }

  private toFrame(type: number, flags: number, channelId: number, payload: Buffer): Frame {
    switch (type) {
      case FrameType.DATA:
        return { type: FrameType.DATA, channelId, eof: (flags & FLAG_EOF) !== 0, payload };
      case FrameType.PING:
        return { type: FrameType.PING, nonce: payload.readUInt32BE(0) };
      case FrameType.PONG:
        return { type: FrameType.PONG, nonce: payload.readUInt32BE(0) };
      default:
        return { type: FrameType.CLOSE, reason: payload.toString('utf8') };
    }
  }
}
