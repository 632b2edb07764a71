/**
 * Receiver side of acknowledgement: which packet numbers arrived, when to send an ACK
 * (RFC 9000 §13.2: every 2nd ack-eliciting packet, within max_ack_delay, immediately on
 * reordering or a gap) and replay detection (a number seen before is refused).
 */
import { MAX_ACK_RANGES } from '../constants';
import { RangeSet } from './range-set';
import { ackFrameLength, writeAckFrame } from '../wire';

export class AckTracker {
  private readonly received = new RangeSet();
  /** Packet numbers below this are treated as already seen (old ranges were pruned). */
  private floor = 0;
  private largest = -1;
  private largestTime = 0;
  private unackedEliciting = 0;
  private ackDeadline = Infinity;
  private immediate = false;
  /** Something new arrived since the last ACK we sent. */
  private dirty = false;
  private readonly scratch: number[] = [];

  constructor(private readonly maxAckDelayMs: number) {}

  /** True when `pn` was already received (a duplicate or a replay). */
  isDuplicate(pn: number): boolean {
    return pn < this.floor || this.received.contains(pn);
  }

  /** Records an authenticated packet. */
  onPacket(pn: number, ackEliciting: boolean, now: number): void {
    const gap = this.largest >= 0 && pn !== this.largest + 1;
    this.received.add(pn, pn + 1);
    if (pn > this.largest) {
      this.largest = pn;
      this.largestTime = now;
    }
    this.dirty = true;
    if (this.received.rangeCount > MAX_ACK_RANGES * 2) {
      const r = this.received.r;
      this.floor = r[r.length - 2 * MAX_ACK_RANGES];
      this.received.removeBelow(this.floor);
    }
    if (!ackEliciting) return;
    this.unackedEliciting++;
    // RFC 9000 §13.2.1: reordering or a new gap -> ACK immediately.
    if (gap || this.unackedEliciting >= 2) this.immediate = true;
    else if (this.ackDeadline === Infinity) this.ackDeadline = now + this.maxAckDelayMs;
  }

  /** An ACK must go out now (the caller may still batch within one I/O turn). */
  ackNeeded(now: number): boolean {
    return this.immediate || now >= this.ackDeadline;
  }

  /** An ACK may be piggybacked on an outgoing packet. */
  hasNewAcks(): boolean {
    return this.dirty;
  }

  deadline(): number {
    return this.immediate ? 0 : this.ackDeadline;
  }

  frameLength(): number {
    return ackFrameLength(Math.min(MAX_ACK_RANGES, this.received.rangeCount));
  }

  /** Writes an ACK frame at `off`; returns the new offset. */
  writeFrame(buf: Buffer, off: number, now: number): number {
    const r = this.received.r;
    const count = Math.min(MAX_ACK_RANGES, r.length >> 1);
    const s = this.scratch;
    s.length = 0;
    for (let i = r.length - 2, k = 0; k < count; i -= 2, k++) s.push(r[i + 1] - 1, r[i]);
    const end = writeAckFrame(buf, off, s, count, now - this.largestTime);
    this.unackedEliciting = 0;
    this.ackDeadline = Infinity;
    this.immediate = false;
    this.dirty = false;
    return end;
  }

  largestReceived(): number {
    return this.largest;
  }
}
