/**
 * Frames of the mux wire protocol. Every frame has an 8-byte header:
 *
 *   0      1      2             4                           8
 *   +------+------+-------------+---------------------------+
 *   | type | flags| channel u16 | payload length u32 (BE)   | payload...
 *   +------+------+-------------+---------------------------+
 *
 * DATA carries one fragment of a channel message; flag EOF marks its last fragment
 * (as MConnection's PacketMsg with an EOF byte). PING/PONG carry a 4-byte nonce. CLOSE carries
 * a UTF-8 reason. Channel is 0 for every frame but DATA.
 */

export const FRAME_HEADER_BYTES = 8;

export enum FrameType {
  DATA = 0,
  PING = 1,
  PONG = 2,
  CLOSE = 3,
}

/** Flag bit of DATA: this fragment ends its message. */
export const FLAG_EOF = 0x01;

export interface DataFrame {
  type: FrameType.DATA;
  channelId: number;
  eof: boolean;
  payload: Buffer;
}

export interface PingFrame {
  type: FrameType.PING;
  nonce: number;
}

export interface PongFrame {
  type: FrameType.PONG;
  nonce: number;
}

export interface CloseFrame {
  type: FrameType.CLOSE;
  reason: string;
}

export type Frame = DataFrame | PingFrame | PongFrame | CloseFrame;
