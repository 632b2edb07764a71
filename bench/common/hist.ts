/**
 * Latency recording for benchmarks: an HDR histogram (hdr-histogram-js) in microseconds,
 * never a sorted array. Values are recorded with 3 significant digits up to 60 s.
 */
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

/** Percentiles of one recording, in microseconds. */
export interface LatencySummary {
  count: number;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
  mean_us: number;
}

const HIGHEST_US = 60_000_000;

export class LatencyRecorder {
  private readonly _h: Histogram;

  constructor() {
    this._h = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: HIGHEST_US,
      numberOfSignificantValueDigits: 3,
      autoResize: false,
      useWebAssembly: false,
    });
  }

  /** Records one value in microseconds (clamped to [1, 60 s]). */
  record(us: number): void {
    const v = Math.min(HIGHEST_US, Math.max(1, Math.round(us)));
    this._h.recordValue(v);
  }

  /** Records the time since `startNs` (a process.hrtime.bigint() reading). */
  recordSince(startNs: bigint): void {
    this.record(Number(process.hrtime.bigint() - startNs) / 1000);
  }

  get count(): number {
    return this._h.totalCount;
  }

  summary(): LatencySummary {
    const h = this._h;
    return {
      count: h.totalCount,
      p50_us: h.getValueAtPercentile(50),
      p90_us: h.getValueAtPercentile(90),
      p99_us: h.getValueAtPercentile(99),
      max_us: h.maxValue,
      mean_us: Math.round(h.mean),
    };
  }

  reset(): void {
    this._h.reset();
  }

  destroy(): void {
    this._h.destroy();
  }
}
