/**
 * Wire format: packet headers and frames. Pure codec, no I/O, no crypto.
 *
 * Packet types (first byte):
 *   INITIAL   client -> server: version, client cid, client nonce, transport params, padding, MAC
 *   HANDSHAKE server -> client: dcid, version, server cid, server nonce, transport params, MAC
 *   DATA      protected: dcid(8) pn(4) | AEAD(frames) | tag(16)
 *   RESET     stateless reset: cid(8) token(16)
 * All integers big-endian. Frames inside DATA are listed in FrameType.
 */

export const enum PacketType {
  Initial = 0x01,
  Handshake = 0x02,
  Data = 0x03,
  Reset = 0x04,
}

export const CID_LENGTH = 8;
export const NONCE_LENGTH = 16;
export const TAG_LENGTH = 16;
export const MAC_LENGTH = 16;
/** type + dcid + packet number */
export const DATA_HEADER_LENGTH = 1 + CID_LENGTH + 4;
export const RESET_LENGTH = 1 + CID_LENGTH + 16;
export const TRANSPORT_PARAMS_LENGTH = 16;
/** type + version + src cid + nonce + params */
export const INITIAL_BODY_LENGTH = 1 + 4 + CID_LENGTH + NONCE_LENGTH + TRANSPORT_PARAMS_LENGTH;
/** type + dcid + version + src cid + nonce + params */
export const HANDSHAKE_BODY_LENGTH =
  1 + CID_LENGTH + 4 + CID_LENGTH + NONCE_LENGTH + TRANSPORT_PARAMS_LENGTH;
export const HANDSHAKE_LENGTH = HANDSHAKE_BODY_LENGTH + MAC_LENGTH;
/** Largest packet number; the connection closes before reusing one. */
export const MAX_PACKET_NUMBER = 0xffff_ffff;

export const enum FrameType {
  Padding = 0x00,
  Ping = 0x01,
  /** count u8, ackDelayUs u32, then count x (hi u32, lo u32), descending */
  Ack = 0x02,
  /** offset u48, length u16, data */
  Stream = 0x03,
  /** as Stream, and the stream ends at offset + length */
  StreamFin = 0x04,
  /** max offset u48 */
  MaxData = 0x05,
  /** code u16, received offset u48, flags u8 (1 = fin received), reason length u16, reason */
  Close = 0x06,
}

export const STREAM_FRAME_OVERHEAD = 1 + 6 + 2;
export const MAX_DATA_FRAME_LENGTH = 7;
export const PING_FRAME_LENGTH = 1;
export const CLOSE_FRAME_OVERHEAD = 1 + 2 + 6 + 1 + 2;
export const MAX_CLOSE_REASON_BYTES = 200;

/** Negotiated at the handshake (RFC 9000 §18 in spirit). */
export interface TransportParams {
  maxDatagramSize: number;
  /** Initial flow-control window: the peer may send stream bytes up to this offset. */
  initialMaxData: number;
  idleTimeoutMs: number;
  maxAckDelayMs: number;
}

export function writeU48(buf: Buffer, value: number, off: number): void {
  buf.writeUInt16BE(Math.floor(value / 0x1_0000_0000) & 0xffff, off);
  buf.writeUInt32BE(value >>> 0, off + 2);
}

export function readU48(buf: Buffer, off: number): number {
  return buf.readUInt16BE(off) * 0x1_0000_0000 + buf.readUInt32BE(off + 2);
}

export function encodeParams(p: TransportParams, buf: Buffer, off: number): void {
  buf.writeUInt16BE(p.maxDatagramSize, off);
  writeU48(buf, p.initialMaxData, off + 2);
  buf.writeUInt32BE(Math.min(0xffff_ffff, Math.round(p.idleTimeoutMs)), off + 8);
  buf.writeUInt32BE(Math.min(0xffff_ffff, Math.round(p.maxAckDelayMs * 1000)), off + 12);
}

export function decodeParams(buf: Buffer, off: number): TransportParams {
  return {
    maxDatagramSize: buf.readUInt16BE(off),
    initialMaxData: readU48(buf, off + 2),
    idleTimeoutMs: buf.readUInt32BE(off + 8),
    maxAckDelayMs: buf.readUInt32BE(off + 12) / 1000,
  };
}

/** Reads the destination connection id of a DATA/HANDSHAKE/RESET packet as a map key. */
export function cidKey(buf: Buffer, off: number): string {
  return buf.toString('hex', off, off + CID_LENGTH);
}

/** Writes a DATA header; returns its length. */
export function writeDataHeader(buf: Buffer, dcid: Buffer, pn: number): number {
  buf[0] = PacketType.Data;
  dcid.copy(buf, 1, 0, CID_LENGTH);
  buf.writeUInt32BE(pn >>> 0, 1 + CID_LENGTH);
  return DATA_HEADER_LENGTH;
}

/** A decoded ACK frame: ranges as [hi, lo] pairs (inclusive), descending. */
export interface AckFrame {
  ackDelayMs: number;
  ranges: number[];
}

/** A stream frame: `data` is a view into the decrypted payload. */
export interface StreamFrame {
  offset: number;
  data: Buffer;
  fin: boolean;
}

export interface CloseFrame {
  code: number;
  receivedOffset: number;
  finReceived: boolean;
  reason: string;
}

/** Receives frames as they are decoded (avoids allocating a frame list per packet). */
export interface FrameSink {
  onPing(): void;
  onAck(ack: AckFrame): void;
  onStream(offset: number, data: Buffer, fin: boolean): void;
  onMaxData(max: number): void;
  onClose(close: CloseFrame): void;
}

/**
 * Decodes the frames of a decrypted payload into `sink`. Returns false on a malformed
 * payload (the caller drops the whole packet and counts it); frames before the error
 * may already have been delivered, which is why the engine validates before acting on
 * anything irreversible (the sink only records).
 */
export function decodeFrames(p: Buffer, sink: FrameSink, ackScratch: AckFrame): boolean {
  let i = 0;
  const n = p.length;
  while (i < n) {
    const t = p[i++];
    switch (t) {
      case FrameType.Padding:
        break;
      case FrameType.Ping:
        sink.onPing();
        break;
      case FrameType.Ack: {
        if (i + 5 > n) return false;
        const count = p[i];
        const delayUs = p.readUInt32BE(i + 1);
        i += 5;
        if (count === 0 || i + count * 8 > n) return false;
        const ranges = ackScratch.ranges;
        ranges.length = 0;
        let prevLo = Infinity;
        for (let k = 0; k < count; k++) {
          const hi = p.readUInt32BE(i);
          const lo = p.readUInt32BE(i + 4);
          i += 8;
          if (lo > hi || hi >= prevLo) return false;
          prevLo = lo;
          ranges.push(hi, lo);
        }
        ackScratch.ackDelayMs = delayUs / 1000;
        sink.onAck(ackScratch);
        break;
      }
      case FrameType.Stream:
      case FrameType.StreamFin: {
        if (i + 8 > n) return false;
        const offset = readU48(p, i);
        const len = p.readUInt16BE(i + 6);
        i += 8;
        if (i + len > n) return false;
        sink.onStream(offset, p.subarray(i, i + len), t === FrameType.StreamFin);
        i += len;
        break;
      }
      case FrameType.MaxData:
        if (i + 6 > n) return false;
        sink.onMaxData(readU48(p, i));
        i += 6;
        break;
      case FrameType.Close: {
        if (i + 11 > n) return false;
        const code = p.readUInt16BE(i);
        const receivedOffset = readU48(p, i + 2);
        const flags = p[i + 8];
        const rlen = p.readUInt16BE(i + 9);
        i += 11;
        if (i + rlen > n) return false;
        const reason = p.toString('utf8', i, i + rlen);
        i += rlen;
        sink.onClose({ code, receivedOffset, finReceived: (flags & 1) !== 0, reason });
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

export function ackFrameLength(rangeCount: number): number {
  return 1 + 1 + 4 + rangeCount * 8;
}

/** Writes an ACK frame from descending [hi, lo] pairs; returns the new offset. */
export function writeAckFrame(
  buf: Buffer,
  off: number,
  ranges: readonly number[],
  rangeCount: number,
  ackDelayMs: number
): number {
  buf[off] = FrameType.Ack;
  buf[off + 1] = rangeCount;
  buf.writeUInt32BE(Math.min(0xffff_ffff, Math.max(0, Math.round(ackDelayMs * 1000))), off + 2);
  off += 6;
  for (let k = 0; k < rangeCount; k++) {
    buf.writeUInt32BE(ranges[2 * k], off);
    buf.writeUInt32BE(ranges[2 * k + 1], off + 4);
    off += 8;
  }
  return off;
}

/** Writes a stream frame header (the caller copies the data after it); returns the data offset. */
export function writeStreamFrameHeader(
  buf: Buffer,
  off: number,
  offset: number,
  len: number,
  fin: boolean
): number {
  buf[off] = fin ? FrameType.StreamFin : FrameType.Stream;
  writeU48(buf, offset, off + 1);
  buf.writeUInt16BE(len, off + 7);
  return off + STREAM_FRAME_OVERHEAD;
}

export function writeMaxDataFrame(buf: Buffer, off: number, max: number): number {
  buf[off] = FrameType.MaxData;
  writeU48(buf, max, off + 1);
  return off + MAX_DATA_FRAME_LENGTH;
}

export function writeCloseFrame(buf: Buffer, off: number, f: CloseFrame): number {
  const reason = Buffer.from(f.reason, 'utf8').subarray(0, MAX_CLOSE_REASON_BYTES);
  buf[off] = FrameType.Close;
  buf.writeUInt16BE(f.code & 0xffff, off + 1);
  writeU48(buf, f.receivedOffset, off + 3);
  buf[off + 9] = f.finReceived ? 1 : 0;
  buf.writeUInt16BE(reason.length, off + 10);
  reason.copy(buf, off + 12);
  return off + 12 + reason.length;
}
