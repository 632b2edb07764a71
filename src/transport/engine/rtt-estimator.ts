/** RTT estimation, RFC 9002 §5. */
import { INITIAL_RTT_MS, TIMER_GRANULARITY_MS } from '../constants';

export class RttEstimator {
  latestRtt = 0;
  smoothedRtt: number;
  rttVar: number;
  minRtt = Infinity;
  hasSample = false;

  constructor(initialRttMs = INITIAL_RTT_MS) {
    this.smoothedRtt = initialRttMs;
    this.rttVar = initialRttMs / 2;
  }

  /** RFC 9002 §5.3; ackDelay is already capped at max_ack_delay by the caller. */
  update(latestRtt: number, ackDelay: number): void {
    this.latestRtt = latestRtt;
    if (!this.hasSample) {
      this.hasSample = true;
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttVar = latestRtt / 2;
      return;
    }
    this.minRtt = Math.min(this.minRtt, latestRtt);
    let adjusted = latestRtt;
    if (latestRtt >= this.minRtt + ackDelay) adjusted = latestRtt - ackDelay;
    this.rttVar = 0.75 * this.rttVar + 0.25 * Math.abs(this.smoothedRtt - adjusted);
    this.smoothedRtt = 0.875 * this.smoothedRtt + 0.125 * adjusted;
  }

  /**
   * Probe timeout, RFC 9002 §6.2.1: srtt + max(4 rttvar, kGranularity) + max_ack_delay,
   * doubled per consecutive PTO, never below `floorMs`.
   */
  pto(maxAckDelayMs: number, ptoCount: number, floorMs = TIMER_GRANULARITY_MS): number {
    const base = this.smoothedRtt + Math.max(4 * this.rttVar, TIMER_GRANULARITY_MS) + maxAckDelayMs;
    return Math.max(base, floorMs) * Math.pow(2, ptoCount);
  }
}
