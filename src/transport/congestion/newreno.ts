/** NewReno, RFC 9002 §7 (the reference controller). */
import { INITIAL_WINDOW_PACKETS, MINIMUM_WINDOW_PACKETS } from '../constants';
import type {
  AckEvent,
  CongestionController,
  CongestionInit,
  LossEvent,
} from './congestion-controller';

/** RFC 9002 §7.3.2 kLossReductionFactor. */
const LOSS_REDUCTION = 0.5;
/** Pacing at 1.25 x cwnd/srtt (RFC 9002 §7.7 N = 1.25). */
export const WINDOW_PACING_GAIN = 1.25;

export class NewReno implements CongestionController {
  readonly algorithm: 'newreno' | 'cubic' = 'newreno';
  protected window: number;
  protected ssthresh = Infinity;
  protected recoveryStart = -Infinity;
  protected readonly mss: number;
  protected readonly minWindow: number;
  protected appLimited = false;
  congestionEvents = 0;

  constructor(init: CongestionInit) {
    this.mss = init.maxDatagramSize;
    this.window = (init.initialWindowPackets ?? INITIAL_WINDOW_PACKETS) * this.mss;
    this.minWindow = (init.minimumWindowPackets ?? MINIMUM_WINDOW_PACKETS) * this.mss;
  }

  cwnd(): number {
    return this.window;
  }

  pacingRate(smoothedRtt: number, hasRttSample: boolean): number {
    if (!hasRttSample) return Infinity;
    return (WINDOW_PACING_GAIN * this.window) / Math.max(smoothedRtt, 0.001);
  }

  onPacketSent(): void {}

  setAppLimited(appLimited: boolean): void {
    this.appLimited = appLimited;
  }

  protected inRecovery(sentTime: number): boolean {
    return sentTime <= this.recoveryStart;
  }

  onAck(ev: AckEvent): void {
    if (this.inRecovery(ev.largestAckedSentTime)) return;
    // RFC 9002 §7.8: do not grow the window when it was not the limit.
    if (this.appLimited) return;
    if (this.window < this.ssthresh) {
      this.window += ev.ackedBytes;
    } else {
      this.growAvoidance(ev);
    }
  }

  protected growAvoidance(ev: AckEvent): void {
    this.window += (this.mss * ev.ackedBytes) / this.window;
  }

  onLoss(ev: LossEvent): void {
    if (!this.inRecovery(ev.largestLostSentTime)) {
      this.congestionEvents++;
      this.recoveryStart = ev.now;
      this.reduce(ev.now);
    }
    if (ev.persistentCongestion) {
      this.window = this.minWindow;
    }
  }

  protected reduce(_now: number): void {
    this.ssthresh = Math.max(this.window * LOSS_REDUCTION, this.minWindow);
    this.window = this.ssthresh;
  }

  state(): Record<string, number | string> {
    return {
      algorithm: this.algorithm,
      cwnd: this.window,
      ssthresh: this.ssthresh === Infinity ? -1 : this.ssthresh,
      congestionEvents: this.congestionEvents,
    };
  }
}
