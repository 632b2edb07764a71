/**
 * Close and draining (RFC 9000 §10.2) of one connection.
 *
 * Closing: we sent CLOSE and repeat it (at most MAX_CLOSE_RESENDS times, one per PTO, or
 * when the peer is still talking) until the peer acknowledges it. Draining: the peer
 * closed; we send nothing but ACKs of each CLOSE it repeats, so it learns its CLOSE
 * arrived. Either way the connection lingers a few PTOs to answer late packets.
 * Pure logic: time comes in as `now`; datagrams leave through the host.
 */
import { ConnectionClosedError } from '../../common';
import type { CloseFrame } from '../wire';
import type { AckTracker } from './ack-tracker';
import type { PacketAssembler } from './assembler';
import type { ReceiveBuffer } from './receive-buffer';
import type { PacketReceiver } from './receive';
import type { Recovery } from './recovery';
import type { SendBuffer } from './send-buffer';
import { CloseCode } from './types';
import type { EngineState } from './types';

/** What closing needs from its engine. */
export interface ClosingHost {
  state(): EngineState;
  setState(state: EngineState): void;
  /** Sends one datagram (subject to the amplification limit). */
  emit(parts: Buffer[]): void;
  /** A packet arrived at `now` (the idle timer restarts). */
  touch(now: number): void;
  onClosed(err: Error | null): void;
  onReadable(): void;
}

/** The connection's parts closing works with. */
export interface ClosingParts {
  host: ClosingHost;
  assembler: PacketAssembler;
  recovery: Recovery;
  acks: AckTracker;
  receiver: PacketReceiver;
  sendBuf: SendBuffer;
  recvBuf: ReceiveBuffer;
}

/** Times a CLOSE is repeated (closer) or acknowledged (peer). */
export const MAX_CLOSE_RESENDS = 16;

export class Closing {
  /** close() was called: CLOSE goes out once all our data is acknowledged. */
  requested = false;
  /** Our sealed CLOSE datagram, for repeats. */
  packet: Buffer[] | null = null;
  /** The error the connection ended with (null while open or after a clean close). */
  error: Error | null = null;
  /** Packet number of our CLOSE (-1 = none sent). */
  pn = -1;
  acked = false;
  private resends = 0;
  private resendAt = Infinity;
  /** The peer closed: acknowledge its CLOSEs, send nothing else. */
  draining = false;
  /** When the closing (or draining) connection is gone. */
  until = Infinity;
  /** onClosed was raised. */
  notified = false;

  constructor(private readonly parts: ClosingParts) {}

  /** Abrupt close: CLOSE goes out at once (with keys), the connection is over. */
  abort(code: number, reason: string, err: Error | null, now: number): void {
    this.sendClose(code, reason, now);
    this.finish(err ?? new ConnectionClosedError(`closed locally: ${reason} (code ${code})`), now);
    // nothing to linger for without keys (handshake) or without a CLOSE sent
    if (this.pn < 0) this.parts.host.setState('closed');
  }

  /** Seals and sends our CLOSE (nothing without keys). */
  sendClose(code: number, reason: string, now: number): void {
    const close = this.parts.assembler.buildClose(code, reason, now);
    if (!close) return;
    this.onSent(close.pn, close.packet, now + this.parts.recovery.basePto());
    this.parts.host.emit(close.packet);
  }

  /** The connection is over for the application: it lingers (closing) unless closed. */
  finish(err: Error | null, now: number): void {
    const host = this.parts.host;
    if (host.state() !== 'closed') {
      host.setState('closing');
      this.linger(now, this.parts.recovery.basePto());
    }
    this.error = err;
    if (!this.notified) {
      this.notified = true;
      host.onClosed(err);
    }
  }

  /** The peer's CLOSE arrived while established. */
  onPeerClose(c: CloseFrame, now: number): void {
    const err = peerCloseError(c, this.parts.sendBuf);
    const recvBuf = this.parts.recvBuf;
    if (recvBuf.readableBytes() > 0 || recvBuf.finReceived()) this.parts.host.onReadable();
    // draining (RFC 9000 §10.2.2): send nothing but ACKs of the peer's CLOSE, so the
    // closer learns it arrived and stops repeating it.
    this.draining = true;
    this.finish(err, now);
    this.resends = 0;
    this.ackCloseNow(now);
  }

  private ackCloseNow(now: number): void {
    if (!this.mayRepeat()) return;
    this.parts.assembler.buildPacket(now, true, 0, 0);
  }

  /**
   * An authenticated packet while closing. Closing: we sent CLOSE and repeat it until the
   * peer acknowledges it. Draining: the peer closed; we acknowledge each CLOSE it repeats.
   */
  onPacket(plain: Buffer, pn: number, now: number): void {
    this.parts.host.touch(now);
    this.parts.acks.onPacket(pn, true, now);
    if (this.draining) {
      this.ackCloseNow(now);
      return;
    }
    const receiver = this.parts.receiver;
    if (!receiver.decode(plain, now)) return;
    if (this.acked || receiver.close) {
      this.parts.host.setState('closed');
      return;
    }
    // the peer is still talking: it did not get our CLOSE yet
    if (this.packet && this.mayRepeat()) this.parts.host.emit(this.packet);
  }

  /** Timers while closing: gone once acknowledged or lingered out; else repeat CLOSE. */
  tick(now: number): void {
    if (this.acked || now >= this.until) {
      this.parts.host.setState('closed');
      return;
    }
    const repeat = this.repeatDue(now, this.parts.recovery.basePto());
    if (repeat) this.parts.host.emit(repeat);
  }

  /** Our CLOSE went out as packet `pn`; the first repeat is due at `resendAt`. */
  private onSent(pn: number, packet: Buffer[], resendAt: number): void {
    this.pn = pn;
    this.resendAt = resendAt;
    this.packet = packet;
  }

  /** An ACK arrived while closing: does it cover our CLOSE? */
  onAck(ranges: readonly number[]): void {
    for (let k = 0; k < ranges.length; k += 2) {
      if (this.pn <= ranges[k] && this.pn >= ranges[k + 1]) this.acked = true;
    }
  }

  /** Enters closing/draining at `now`: linger long enough for the repeats, or 3 PTOs. */
  private linger(now: number, pto: number): void {
    this.until = now + (this.pn >= 0 && !this.draining ? MAX_CLOSE_RESENDS + 2 : 3) * pto;
  }

  /** Counts one more CLOSE (or ACK of one); false once the budget is spent. */
  private mayRepeat(): boolean {
    return this.resends++ < MAX_CLOSE_RESENDS;
  }

  /** Timer deadline while closing. */
  deadline(): number {
    return Math.min(this.until, this.draining ? Infinity : this.resendAt);
  }

  /** The CLOSE to repeat at `now` (null when none is due); the next is due a PTO later. */
  private repeatDue(now: number, pto: number): Buffer[] | null {
    if (this.draining || !this.packet || now < this.resendAt) return null;
    const repeat = this.mayRepeat() ? this.packet : null;
    this.resendAt = now + pto;
    return repeat;
  }
}

/**
 * The error a CLOSE from the peer ends the connection with: null for a clean close that
 * received all our data, else what went wrong.
 */
function peerCloseError(c: CloseFrame, sendBuf: SendBuffer): Error | null {
  if (c.code !== CloseCode.NO_ERROR) {
    return new ConnectionClosedError(`closed by peer: ${c.reason} (code ${c.code})`);
  }
  const ourDataReceived =
    c.receivedOffset >= sendBuf.writeOffset && (sendBuf.finOffset < 0 || c.finReceived);
  if (!ourDataReceived || (!sendBuf.allAcked() && !ourDataReceived)) {
    return new ConnectionClosedError(
      `closed by peer with ${sendBuf.writeOffset - c.receivedOffset} bytes undelivered`
    );
  }
  return null;
}
