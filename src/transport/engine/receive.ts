/**
 * The receive side of one authenticated DATA packet: decodes its frames, hands stream
 * bytes to the receive buffer (enforcing our flow-control window) and ACK/MAX_DATA frames
 * to the engine, and remembers what the packet held (ack-eliciting, readable data, a
 * CLOSE, a violation) for the engine to act on once the whole packet is read.
 */
import { decodeFrames } from '../wire';
import type { AckFrame, CloseFrame, FrameSink } from '../wire';
import type { ReceiveBuffer } from './receive-buffer';
import type { EngineDropReason } from './types';

/** What the receiver needs from its engine. */
export interface ReceiverHost {
  /** Stream frames are taken only while established. */
  established(): boolean;
  onAck(ack: AckFrame, now: number): void;
  onMaxData(max: number): void;
}

export class PacketReceiver implements FrameSink {
  // what the last decoded packet held
  ackEliciting = false;
  readable = false;
  close: CloseFrame | null = null;
  error: EngineDropReason | null = null;
  /** Stream bytes taken (stats()). */
  streamBytesReceived = 0;
  private now = 0;
  private readonly ackScratch: AckFrame = { ackDelayMs: 0, ranges: [] };

  constructor(
    private readonly recvBuf: ReceiveBuffer,
    private readonly host: ReceiverHost
  ) {}

  /** Decodes the frames of one authenticated packet; false when it is malformed. */
  decode(plain: Buffer, now: number): boolean {
    this.ackEliciting = false;
    this.readable = false;
    this.close = null;
    this.error = null;
    this.now = now;
    return decodeFrames(plain, this, this.ackScratch);
  }

  // FrameSink: called by decodeFrames for one authenticated packet
  onPing(): void {
    this.ackEliciting = true;
  }

  onAck(ack: AckFrame): void {
    this.host.onAck(ack, this.now);
  }

  onStream(offset: number, data: Buffer, fin: boolean): void {
    this.ackEliciting = true;
    if (!this.host.established()) return;
    const r = this.recvBuf.onFrame(offset, data, fin);
    if (r === 'flow_control') {
      this.error = 'flow_control';
      return;
    }
    if (r === 'ok') {
      this.streamBytesReceived += data.length;
      this.readable = true;
    }
  }

  onMaxData(max: number): void {
    this.ackEliciting = true;
    this.host.onMaxData(max);
  }

  onClose(close: CloseFrame): void {
    this.close = close;
  }
}
