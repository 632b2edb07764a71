/**
 * Load loops shared by every benchmark client. Each loop is bounded in time (warm-up plus
 * measurement window) and in count (`maxOps`), and only what completes inside the
 * measurement window counts.
 */
import { LatencyRecorder } from './hist';
import type { LatencySummary } from './hist';

export interface LoopLimits {
  /** Run but do not count for this long first. */
  warmupMs: number;
  /** Then count for this long. */
  durationMs: number;
  /** Stop after this many operations in all (warm-up included). */
  maxOps: number;
}

export interface LatencyResult extends LatencySummary {
  errors: number;
  firstError?: string;
}

export interface ThroughputResult {
  /** Operations per second completed inside the measurement window. */
  rate: number;
  count: number;
  elapsedMs: number;
  errors: number;
  firstError?: string;
}

const nowNs = (): bigint => process.hrtime.bigint();

/** Told when the measurement window starts and ends (e.g. a CpuWindow of the servers). */
export interface WindowHooks {
  start(): void;
  stop(): void;
}

/**
 * Runs `op` one at a time and records each latency inside the window in an HDR histogram.
 * `window.start()` runs just before the first recorded op and `window.stop()` just after
 * the last one, so what it measures in between belongs to exactly `count` ops.
 */
export async function measureLatency(
  op: () => Promise<unknown>,
  limits: LoopLimits,
  window?: WindowHooks
): Promise<LatencyResult> {
  const rec = new LatencyRecorder();
  const t0 = nowNs();
  const warmEnd = t0 + BigInt(limits.warmupMs) * 1_000_000n;
  const end = warmEnd + BigInt(limits.durationMs) * 1_000_000n;
  let errors = 0;
  let firstError: string | undefined;
  let inWindow = false;
  try {
    for (let i = 0; i < limits.maxOps; i++) {
      let start = nowNs();
      if (start >= end) break;
      if (!inWindow && start >= warmEnd) {
        inWindow = true;
        window?.start();
        start = nowNs();
      }
      try {
        await op();
        if (inWindow) rec.recordSince(start);
      } catch (e) {
        errors++;
        firstError ??= String(e);
        if (errors > 100) break;
      }
    }
    if (inWindow) window?.stop();
    return { ...rec.summary(), errors, firstError };
  } finally {
    rec.destroy();
  }
}

/** Keeps `concurrency` calls of `op` in flight and counts completions inside the window. */
export async function measureThroughput(
  op: () => Promise<unknown>,
  concurrency: number,
  limits: LoopLimits
): Promise<ThroughputResult> {
  let started = 0;
  let count = 0;
  let errors = 0;
  let firstError: string | undefined;
  let measuring = false;
  let stopped = false;
  let tStart = 0n;
  let tEnd = 0n;
  const warm = setTimeout(() => {
    measuring = true;
    tStart = nowNs();
  }, limits.warmupMs);
  const stop = setTimeout(() => {
    if (measuring) tEnd = nowNs();
    measuring = false;
    stopped = true;
  }, limits.warmupMs + limits.durationMs);
  const lane = async (): Promise<void> => {
    while (!stopped && started < limits.maxOps) {
      started++;
      try {
        await op();
        if (measuring) count++;
      } catch (e) {
        errors++;
        firstError ??= String(e);
        if (errors > 100) stopped = true;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  clearTimeout(warm);
  clearTimeout(stop);
  if (tEnd === 0n) tEnd = nowNs();
  if (tStart === 0n) tStart = tEnd;
  const elapsedMs = Number(tEnd - tStart) / 1e6;
  return {
    rate: elapsedMs > 0 ? (count * 1000) / elapsedMs : 0,
    count,
    elapsedMs,
    errors,
    firstError,
  };
}

export interface RateResult {
  rate: number;
  count: number;
  elapsedMs: number;
}

/**
 * Measures how fast `getCount()` grows: reads it after `warmupMs` and again `durationMs`
 * later, with the real elapsed time between the two readings.
 */
export async function measureRate(
  getCount: () => number,
  warmupMs: number,
  durationMs: number
): Promise<RateResult> {
  await delay(warmupMs);
  const c0 = getCount();
  const t0 = nowNs();
  await delay(durationMs);
  const c1 = getCount();
  const elapsedMs = Number(nowNs() - t0) / 1e6;
  return { rate: ((c1 - c0) * 1000) / elapsedMs, count: c1 - c0, elapsedMs };
}

function delay(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}

/**
 * Flow-control credit for publishers: the publisher may run at most `window` messages ahead
 * of what the subscriber reported (received + dropped). `wait()` resolves when there is room.
 */
export class Credit {
  private _granted = 0;
  private _waiter: (() => void) | undefined;

  constructor(private readonly _window: number) {}

  /** The subscriber's latest total (monotonic). */
  update(total: number): void {
    if (total > this._granted) this._granted = total;
    const w = this._waiter;
    if (w) {
      this._waiter = undefined;
      w();
    }
  }

  /** Room left for a publisher that has sent `sent` messages. */
  room(sent: number): number {
    return this._granted + this._window - sent;
  }

  /** Resolves when room(sent) >= need, or after `maxWaitMs` (so a lost update cannot wedge). */
  wait(sent: number, need: number, maxWaitMs = 200): Promise<void> {
    if (this.room(sent) >= need) return Promise.resolve();
    return new Promise(resolve => {
      const t = setTimeout(() => {
        this._waiter = undefined;
        resolve();
      }, maxWaitMs);
      this._waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  reset(): void {
    this._granted = 0;
    this._waiter = undefined;
  }
}
