/**
 * Close and draining (RFC 9000 §10.2) of one connection.
 *
 * Closing: we sent CLOSE and repeat it (at most MAX_CLOSE_RESENDS times, one per PTO, or
 * when the peer is still talking) until the peer acknowledges it. Draining: the peer
 * closed; we send nothing but ACKs of each CLOSE it repeats, so it learns its CLOSE
 * arrived. Either way the connection lingers a few PTOs to answer late packets.
 * Pure state: the engine sends what this decides.
 */
import { ConnectionClosedError } from '../../common/errors';
import type { CloseFrame } from '../wire';
import type { SendBuffer } from './send-buffer';
import { CloseCode } from './types';

/** Times a CLOSE is repeated (closer) or acknowledged (peer). */
export const MAX_CLOSE_RESENDS = 16;

export class CloseState {
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

  /** Our CLOSE went out as packet `pn`; the first repeat is due at `resendAt`. */
  onSent(pn: number, packet: Buffer[], resendAt: number): void {
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
  linger(now: number, pto: number): void {
    this.until = now + (this.pn >= 0 && !this.draining ? MAX_CLOSE_RESENDS + 2 : 3) * pto;
  }

  /** The draining side starts counting its acknowledgements of the peer's CLOSE. */
  startDraining(): void {
    this.draining = true;
  }

  resetRepeats(): void {
    this.resends = 0;
  }

  /** Counts one more CLOSE (or ACK of one); false once the budget is spent. */
  mayRepeat(): boolean {
    return this.resends++ < MAX_CLOSE_RESENDS;
  }

  /** Timer deadline while closing. */
  deadline(): number {
    return Math.min(this.until, this.draining ? Infinity : this.resendAt);
  }

  /** The CLOSE to repeat at `now` (null when none is due); the next is due a PTO later. */
  repeatDue(now: number, pto: number): Buffer[] | null {
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
export function peerCloseError(c: CloseFrame, sendBuf: SendBuffer): Error | null {
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
