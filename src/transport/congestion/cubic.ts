/** CUBIC, RFC 9438, on top of NewReno's recovery logic. */
import type { AckEvent, CongestionInit } from './congestion-controller';
import { NewReno } from './newreno';

/** RFC 9438 §4.6 beta_cubic and §5 C. */
export const CUBIC_BETA = 0.7;
export const CUBIC_C = 0.4;
/** RFC 9438 §4.3 alpha_cubic for the Reno-friendly region. */
const ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/**
 * W_cubic(t) = C (t - K)^3 + W_max, with t in seconds and windows in segments
 * (RFC 9438 §4.2, eq. 1); K = cbrt(W_max (1 - beta) / C) (eq. 2).
 */
export function cubicWindow(tSec: number, wMaxSegments: number, kSec: number): number {
  return CUBIC_C * Math.pow(tSec - kSec, 3) + wMaxSegments;
}

export function cubicK(wMaxSegments: number, cwndSegments: number): number {
  return Math.cbrt(Math.max(0, wMaxSegments - cwndSegments) / CUBIC_C);
}

export class Cubic extends NewReno {
  override readonly algorithm = 'cubic' as const;
  private wMax = 0;
  private k = 0;
  private epochStart = -1;
  /** Reno-friendly estimate W_est, in bytes (RFC 9438 §4.3). */
  private wEst = 0;

  constructor(init: CongestionInit) {
    super(init);
  }

  protected override growAvoidance(ev: AckEvent): void {
    const mss = this.mss;
    if (this.epochStart < 0) {
      this.epochStart = ev.now;
      if (this.wMax < this.window) {
        this.wMax = this.window;
        this.k = 0;
      } else {
        this.k = cubicK(this.wMax / mss, this.window / mss);
      }
      this.wEst = this.window;
    }
    const t = (ev.now - this.epochStart + ev.smoothedRtt) / 1000;
    let target = cubicWindow(t, this.wMax / mss, this.k) * mss;
    // RFC 9438 §4.4: the target is clamped to [cwnd, 1.5 cwnd].
    target = Math.min(Math.max(target, this.window), 1.5 * this.window);
    this.wEst += (ALPHA * mss * ev.ackedBytes) / this.window;
    if (target < this.wEst) {
      this.window = Math.max(this.window, this.wEst);
    } else {
      this.window += ((target - this.window) * ev.ackedBytes) / this.window;
    }
  }

  protected override reduce(_now: number): void {
    // RFC 9438 §4.7 fast convergence.
    if (this.window < this.wMax) this.wMax = (this.window * (1 + CUBIC_BETA)) / 2;
    else this.wMax = this.window;
    this.ssthresh = Math.max(this.window * CUBIC_BETA, this.minWindow);
    this.window = this.ssthresh;
    this.epochStart = -1;
  }

  override state(): Record<string, number | string> {
    return { ...super.state(), wMax: this.wMax };
  }
}
