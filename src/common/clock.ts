/**
 * Time is injected so that timers can be tested deterministically. Production code
 * uses `systemClock`; tests use `ManualClock` (or @sinonjs/fake-timers with systemClock).
 */

/** A cancellable timer handle. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (fractional), not wall-clock time. */
  now(): number;
  /** Calls `fn` once after `delayMs`. Timers never keep the process alive. */
  setTimer(delayMs: number, fn: () => void): Timer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(delayMs, fn) {
    const handle = setTimeout(fn, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

/**
 * Calls `tick` every `intervalMs` on `clock` until the returned timer is cancelled (also
 * from inside `tick`). The next timer is armed after `tick` returns, so ticks never overlap.
 */
export function repeatEvery(clock: Clock, intervalMs: number, tick: () => void): Timer {
  let cancelled = false;
  let timer: Timer | undefined;
  const arm = (): void => {
    if (cancelled) return;
    timer = clock.setTimer(intervalMs, () => {
      tick();
      arm();
    });
  };
  arm();
  return {
    cancel() {
      cancelled = true;
      timer?.cancel();
    },
  };
}

/** A clock that moves only when told to: `advance(ms)` fires due timers in order. */
export class ManualClock implements Clock {
  private current: number;
  private readonly timers = new Set<{ at: number; seq: number; fn: () => void }>();
  private seq = 0;

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const entry = { at: this.current + Math.max(0, delayMs), seq: this.seq++, fn };
    this.timers.add(entry);
    return { cancel: () => this.timers.delete(entry) };
  }

  /** Moves time forward, firing every timer that falls due, earliest first. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      let next: { at: number; seq: number; fn: () => void } | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) {
          next = t;
        }
      }
      if (!next) break;
      this.timers.delete(next);
      this.current = next.at;
      next.fn();
    }
    this.current = target;
  }

  /** Number of timers not yet fired or cancelled (for leak assertions). */
  get pendingTimers(): number {
    return this.timers.size;
  }
}
