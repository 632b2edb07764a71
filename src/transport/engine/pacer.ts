/**
 * Token-bucket pacer: credit accrues at the controller's pacing rate, capped at a burst
 * of max(PACING_MIN_BURST_PACKETS, rate x PACING_BURST_MS) so a large window does not
 * leave in one burst (RFC 9002 §7.7). Node timers have ~1 ms resolution, hence the burst.
 */
import { PACING_BURST_MS, PACING_MIN_BURST_PACKETS } from '../constants';

export class Pacer {
  private tokens: number;
  private last = 0;
  private rate = Infinity;

  constructor(private readonly mss: number) {
    this.tokens = PACING_MIN_BURST_PACKETS * mss;
  }

  private capacity(): number {
    return Math.max(PACING_MIN_BURST_PACKETS * this.mss, this.rate * PACING_BURST_MS);
  }

  /** Sets the rate (bytes/ms) and accrues credit up to `now`. */
  update(now: number, rate: number): void {
    this.rate = rate;
    if (rate === Infinity) {
      this.tokens = Infinity;
    } else {
      if (this.tokens === Infinity) this.tokens = this.capacity();
      const dt = Math.max(0, now - this.last);
      this.tokens = Math.min(this.capacity(), this.tokens + dt * rate);
    }
    this.last = now;
  }

  /** Bytes that may be sent now. */
  budget(): number {
    return this.tokens;
  }

  consume(bytes: number): void {
    if (this.tokens !== Infinity) this.tokens -= bytes;
  }

  /** When a packet of `bytes` may go, given the credit at the last update. */
  nextSendTime(bytes: number): number {
    if (this.tokens >= bytes || this.rate === Infinity) return this.last;
    return this.last + (bytes - this.tokens) / this.rate;
  }
}
