/**
 * A model-based controller in the style of BBR (Cardwell et al., "BBR: Congestion-Based
 * Congestion Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-control):
 * it estimates the bottleneck bandwidth (windowed max of delivery-rate samples) and the
 * min RTT, paces at gain x bandwidth and bounds inflight at cwndGain x BDP. It does not
 * cut its rate on isolated random losses: only delivery-rate samples move the model, so
 * real congestion (a bottleneck) shows up as a lower delivered rate.
 *
 * Min RTT is a 10 s windowed minimum of the RTT samples. When it expires without a lower
 * sample, PROBE_RTT (in BBRv2's gentler form) cuts the window to half a BDP for 200 ms and
 * one round, so a standing queue drains and the true minimum is seen again.
 *
 * Simplification: a fixed ACK-aggregation allowance in the window (the smoothed RTT above
 * the minimum, 2 to 10 ms), since Node delivers datagrams and timers in batches.
 */
import { INITIAL_WINDOW_PACKETS, MINIMUM_WINDOW_PACKETS } from '../constants';
import type {
  AckEvent,
  CongestionController,
  CongestionInit,
  LossEvent,
} from './congestion-controller';

/** 2/ln(2): the smallest gain that doubles the delivery rate each round in STARTUP. */
export const STARTUP_GAIN = 2 / Math.LN2;
export const DRAIN_GAIN = 1 / STARTUP_GAIN;
export const CWND_GAIN = 2;
export const PROBE_BW_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
/** Rounds over which the bandwidth max filter runs. */
export const BW_WINDOW_ROUNDS = 10;
/** STARTUP ends after 3 rounds without 25% bandwidth growth. */
const FULL_BW_THRESHOLD = 1.25;
const FULL_BW_ROUNDS = 3;
/** Extra window for batched ACKs and timer granularity (ms of bandwidth). */
export const ACK_AGGREGATION_MS = 2;
export const MAX_AGGREGATION_MS = 10;
/** A min RTT older than this is re-measured in PROBE_RTT (BBR's MinRTTFilterLen). */
export const MIN_RTT_WINDOW_MS = 10_000;
/** Time PROBE_RTT holds the small window (BBR's ProbeRTTDuration); one round at least. */
export const PROBE_RTT_DURATION_MS = 200;
/** PROBE_RTT window as a fraction of the BDP (BBRv2; v1 used 4 packets). */
export const PROBE_RTT_CWND_GAIN = 0.5;

export type BbrMode = 'startup' | 'drain' | 'probe_bw' | 'probe_rtt';

export class Bbr implements CongestionController {
  readonly algorithm = 'bbr' as const;
  mode: BbrMode = 'startup';
  private readonly mss: number;
  private readonly minWindow: number;
  private readonly initialWindow: number;
  private window: number;
  /** Per-round maxima of the delivery rate, newest last. */
  private readonly bwRounds: { round: number; bw: number }[] = [];
  private btlBw = 0;
  private minRtt = Infinity;
  private minRttStamp = 0;
  /** When PROBE_RTT may end (-1: waiting for inflight to drain to the probe window). */
  private probeRttDoneStamp = -1;
  private probeRttRoundDone = false;
  /** Window before PROBE_RTT, restored after it. */
  private priorWindow = 0;
  probeRttCount = 0;
  private round = 0;
  private nextRoundDelivered = 0;
  private roundStart = false;
  private fullBw = 0;
  private fullBwCount = 0;
  private filledPipe = false;
  private cycleIndex = 0;
  private cycleStamp = 0;
  private pacingGain = STARTUP_GAIN;
  private cwndGain = STARTUP_GAIN;
  private delivered = 0;

  constructor(init: CongestionInit) {
    this.mss = init.maxDatagramSize;
    this.initialWindow = (init.initialWindowPackets ?? INITIAL_WINDOW_PACKETS) * this.mss;
    this.window = this.initialWindow;
    this.minWindow = (init.minimumWindowPackets ?? MINIMUM_WINDOW_PACKETS) * this.mss;
  }

  cwnd(): number {
    return this.window;
  }

  bandwidth(): number {
    return this.btlBw;
  }

  pacingRate(smoothedRtt: number, hasRttSample: boolean): number {
    if (this.btlBw === 0) {
      if (!hasRttSample) return Infinity;
      return (STARTUP_GAIN * this.window) / Math.max(smoothedRtt, 0.001);
    }
    return this.pacingGain * this.btlBw;
  }

  onPacketSent(): void {}

  /** App-limited state arrives per sample (RateSample.isAppLimited). */
  setAppLimited(_appLimited: boolean): void {}

  private bdp(): number {
    if (this.btlBw === 0 || this.minRtt === Infinity) return this.window;
    return this.btlBw * this.minRtt;
  }

  private updateBandwidth(ev: AckEvent): void {
    const s = ev.sample;
    this.roundStart = false;
    if (s.priorDelivered >= this.nextRoundDelivered) {
      this.nextRoundDelivered = s.delivered;
      this.round++;
      this.roundStart = true;
    }
    if (s.deliveryRate <= 0) return;
    // App-limited samples underestimate the path; use them only when they raise the max.
    if (s.isAppLimited && s.deliveryRate < this.btlBw) return;
    const last = this.bwRounds[this.bwRounds.length - 1];
    if (last && last.round === this.round) last.bw = Math.max(last.bw, s.deliveryRate);
    else this.bwRounds.push({ round: this.round, bw: s.deliveryRate });
    while (this.bwRounds.length > 0 && this.bwRounds[0].round <= this.round - BW_WINDOW_ROUNDS) {
      this.bwRounds.shift();
    }
    let max = 0;
    for (const r of this.bwRounds) max = Math.max(max, r.bw);
    this.btlBw = max;
  }

  private checkFullPipe(ev: AckEvent): void {
    if (this.filledPipe || !this.roundStart || ev.sample.isAppLimited) return;
    if (this.btlBw >= this.fullBw * FULL_BW_THRESHOLD) {
      this.fullBw = this.btlBw;
      this.fullBwCount = 0;
      return;
    }
    if (++this.fullBwCount >= FULL_BW_ROUNDS) this.filledPipe = true;
  }

  private enterProbeBw(now: number): void {
    this.mode = 'probe_bw';
    this.cwndGain = CWND_GAIN;
    // Start at a random-free but not-probing phase (index 2), as BBR avoids starting with 0.75.
    this.cycleIndex = 2;
    this.cycleStamp = now;
    this.pacingGain = PROBE_BW_GAINS[this.cycleIndex];
  }

  /** BBR's UpdateMinRTT and PROBE_RTT entry; true when the min RTT estimate expired. */
  private updateMinRtt(ev: AckEvent): void {
    const rtt = ev.sample.rtt > 0 ? ev.sample.rtt : ev.minRtt;
    const expired = this.minRtt !== Infinity && ev.now - this.minRttStamp > MIN_RTT_WINDOW_MS;
    if (rtt > 0 && rtt !== Infinity && (rtt <= this.minRtt || expired)) {
      this.minRtt = rtt;
      this.minRttStamp = ev.now;
    }
    if (expired && this.mode !== 'probe_rtt') {
      this.mode = 'probe_rtt';
      this.probeRttCount++;
      this.pacingGain = 1;
      this.priorWindow = this.window;
      this.probeRttDoneStamp = -1;
    }
  }

  private probeRttWindow(): number {
    return Math.max(this.minWindow, PROBE_RTT_CWND_GAIN * this.bdp());
  }

  /** PROBE_RTT: hold the small window for PROBE_RTT_DURATION_MS and a round, then resume. */
  private handleProbeRtt(ev: AckEvent): void {
    if (this.probeRttDoneStamp < 0) {
      if (ev.bytesInFlight <= this.probeRttWindow()) {
        this.probeRttDoneStamp = ev.now + PROBE_RTT_DURATION_MS;
        this.probeRttRoundDone = false;
        this.nextRoundDelivered = this.delivered;
      }
      return;
    }
    if (this.roundStart) this.probeRttRoundDone = true;
    if (this.probeRttRoundDone && ev.now >= this.probeRttDoneStamp) {
      this.minRttStamp = ev.now;
      this.window = Math.max(this.window, this.priorWindow);
      if (this.filledPipe) this.enterProbeBw(ev.now);
      else {
        this.mode = 'startup';
        this.pacingGain = STARTUP_GAIN;
        this.cwndGain = STARTUP_GAIN;
      }
    }
  }

  onAck(ev: AckEvent): void {
    this.delivered = ev.sample.delivered;
    this.updateBandwidth(ev);
    this.checkFullPipe(ev);
    this.updateMinRtt(ev);
    const bdp = this.bdp();
    if (this.mode === 'probe_rtt') {
      this.handleProbeRtt(ev);
      if (this.mode === 'probe_rtt') {
        this.window = this.probeRttWindow();
        return;
      }
    }
    if (this.mode === 'startup' && this.filledPipe) {
      this.mode = 'drain';
      this.pacingGain = DRAIN_GAIN;
      this.cwndGain = STARTUP_GAIN;
    }
    if (this.mode === 'drain' && ev.bytesInFlight <= bdp) this.enterProbeBw(ev.now);
    if (this.mode === 'probe_bw') {
      const phaseLen = Math.max(this.minRtt, 0.5);
      const gain = PROBE_BW_GAINS[this.cycleIndex];
      let advance = ev.now - this.cycleStamp > phaseLen;
      if (gain < 1 && ev.bytesInFlight <= bdp) advance = true;
      if (advance) {
        this.cycleIndex = (this.cycleIndex + 1) % PROBE_BW_GAINS.length;
        this.cycleStamp = ev.now;
        this.pacingGain = PROBE_BW_GAINS[this.cycleIndex];
      }
    }
    // Window: cwndGain x BDP plus an allowance for batched ACKs.
    // ACKs arrive in batches (one per event-loop turn at the receiver): allow for the
    // smoothed RTT above the minimum, within [ACK_AGGREGATION_MS, MAX_AGGREGATION_MS].
    const aggregation = Math.min(
      MAX_AGGREGATION_MS,
      Math.max(ACK_AGGREGATION_MS, ev.smoothedRtt - this.minRtt)
    );
    const target = this.cwndGain * bdp + this.btlBw * aggregation + 3 * this.mss;
    if (this.filledPipe) this.window = Math.min(this.window + ev.ackedBytes, target);
    // (BBR: grow toward the target; freely only until the initial window was delivered.
    // Comparing with the current window instead let app-limited traffic, which never
    // fills the pipe, grow it without bound.)
    else if (this.window < target || this.delivered < this.initialWindow)
      this.window += ev.ackedBytes;
    this.window = Math.max(this.window, this.minWindow);
  }

  onLoss(ev: LossEvent): void {
    // Random loss is not congestion: only persistent congestion (a blackout) resets the window.
    if (ev.persistentCongestion) this.window = this.minWindow;
  }

  state(): Record<string, number | string> {
    return {
      algorithm: this.algorithm,
      mode: this.mode,
      cwnd: this.window,
      btlBwBytesPerMs: this.btlBw,
      pacingGain: this.pacingGain,
      round: this.round,
      minRttMs: this.minRtt === Infinity ? 0 : this.minRtt,
      probeRttCount: this.probeRttCount,
    };
  }
}
