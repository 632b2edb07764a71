/**
 * The receive side of one DATA packet: authenticates it (AEAD, replay), decodes its frames, hands stream
 * bytes to the receive buffer (enforcing our flow-control window) and ACK/MAX_DATA frames
 * to the engine, and remembers what the packet held (ack-eliciting, readable data, a
 * CLOSE, a violation) for the engine to act on once the whole packet is read.
 */
import type { ConnectionKeys } from '../crypto/packet-protection';
import { DATA_HEADER_LENGTH, TAG_LENGTH, decodeFrames } from '../wire';
import type { AckFrame, CloseFrame, FrameSink } from '../wire';
import type { AckTracker } from './ack-tracker';
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
  /** Packet number of the last opened packet. */
  pn = 0;
  /** Stream bytes taken (stats()). */
  streamBytesReceived = 0;
  private now = 0;
  private readonly ackScratch: AckFrame = { ackDelayMs: 0, ranges: [] };

  constructor(
    private readonly recvBuf: ReceiveBuffer,
    private readonly acks: AckTracker,
    private readonly host: ReceiverHost
  ) {}

  /**
   * Authenticates a DATA datagram: its plaintext (packet number in `pn`), or null with
   * `error` saying why it is dropped. While draining, a repeated packet is let through:
   * the peer's repeated CLOSE is acknowledged each time.
   */
  open(d: Buffer, keys: ConnectionKeys | null, draining: boolean): Buffer | null {
    if (!keys || d.length < DATA_HEADER_LENGTH + TAG_LENGTH) {
      this.error = keys ? 'malformed' : 'not_ready';
      return null;
    }
    const pn = d.readUInt32BE(DATA_HEADER_LENGTH - 4);
    // replay protection: a packet number is accepted once (checked again after decryption)
    if (this.acks.isDuplicate(pn) && !draining) {
      this.error = 'replay';
      return null;
    }
    const plain = keys.receive.open(d, pn);
    if (plain === null) {
      this.error = 'bad_auth';
      return null;
    }
    this.pn = pn;
    return plain;
  }

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
