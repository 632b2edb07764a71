/**
 * The congestion-control seam. Controllers are pure state machines fed with ACK and loss
 * events by the engine; they never see packets or time except through these calls.
 * Rates are in bytes per millisecond, windows in bytes, times in milliseconds.
 */

/** A delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation). */
export interface RateSample {
  /** bytes/ms; 0 when the sample is invalid. */
  deliveryRate: number;
  /** True when the sender was application-limited when the sampled packet was sent. */
  isAppLimited: boolean;
  /** Total bytes delivered when the sampled packet was sent (for round counting). */
  priorDelivered: number;
  /** Total bytes delivered now. */
  delivered: number;
  /** RTT of the newest acknowledged packet. */
  rtt: number;
}

export interface AckEvent {
  now: number;
  /** Bytes newly acknowledged by this ACK. */
  ackedBytes: number;
  /** Bytes in flight after the ACK was processed. */
  bytesInFlight: number;
  /** Send time of the newest acknowledged packet. */
  largestAckedSentTime: number;
  smoothedRtt: number;
  minRtt: number;
  sample: RateSample;
}

export interface LossEvent {
  now: number;
  lostBytes: number;
  /** Send time of the newest lost packet (RFC 9002 §7.3.2: one reduction per round trip). */
  largestLostSentTime: number;
  bytesInFlight: number;
  /** RFC 9002 §7.6: every packet over a long span was lost. */
  persistentCongestion: boolean;
}

export type CongestionAlgorithm = 'bbr' | 'cubic' | 'newreno';

export interface CongestionController {
  readonly algorithm: CongestionAlgorithm;
  /** Congestion window in bytes. */
  cwnd(): number;
  /** Pacing rate in bytes per ms (Infinity = unpaced). */
  pacingRate(smoothedRtt: number, hasRttSample: boolean): number;
  onPacketSent(now: number, bytes: number, bytesInFlight: number): void;
  onAck(ev: AckEvent): void;
  onLoss(ev: LossEvent): void;
  /** Whether the last sends were limited by the application, not the window. */
  setAppLimited(appLimited: boolean): void;
  /** Counters and state for stats(). */
  state(): Record<string, number | string>;
}

export interface CongestionInit {
  maxDatagramSize: number;
  initialWindowPackets?: number;
  minimumWindowPackets?: number;
}
