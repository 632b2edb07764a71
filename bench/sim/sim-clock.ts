/**
 * The simulation's virtual clock: a Clock (src/common/clock.ts) whose time moves only when
 * the driver advances it, so a cluster's minutes run in seconds and a run replays from its
 * seed. Unlike ManualClock (a scan per timer, fine for a handful) it keeps its timers in a
 * binary heap: a simulated cluster holds hundreds of thousands.
 *
 * The node's own deferrals (setImmediate in the mux and transport pumps, microtasks) are
 * not timers: the driver lets the event loop run them before each step, so work deferred
 * at virtual time t still happens at t.
 */
import type { Clock, Timer } from '../../src/common';
import { heapPop, heapPush } from '../../src/common';

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

function less(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One event-loop turn: lets setImmediate pumps and promise continuations run. */
export function turn(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

export class SimClock implements Clock {
  private current = 0;
  private seq = 0;
  private heap: Entry[] = [];
  private cancelled = 0;
  /** Timers fired so far (a measure of simulation work). */
  fired = 0;

  now(): number {
    return this.current;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const entry: Entry = {
      at: this.current + Math.max(0, delayMs),
      seq: this.seq++,
      fn,
      cancelled: false,
    };
    this.push(entry);
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        this.cancelled++;
        // Cancelled entries stay in the heap until due; rebuild when they dominate, so
        // timers re-armed on every packet do not pile up.
        if (this.cancelled > 4096 && this.cancelled * 2 > this.heap.length) this.compact();
      },
    };
  }

  /** Live timers (not fired, not cancelled). */
  get pendingTimers(): number {
    return this.heap.length - this.cancelled;
  }

  /** The time of the next live timer, Infinity when none. */
  nextAt(): number {
    this.skipCancelled();
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }

  /**
   * Advances time by `ms`: before each step the event loop runs what is deferred, then
   * every timer due at the next instant fires. `until` stops early (checked each step).
   * Returns the virtual time reached.
   */
  async advance(ms: number, until?: () => boolean): Promise<number> {
    const end = this.current + ms;
    for (;;) {
      await turn();
      if (until?.()) return this.current;
      const at = this.nextAt();
      if (at > end) break;
      this.current = Math.max(this.current, at);
      // Every timer due at this instant, including ones they set for the same instant.
      while (this.heap.length > 0) {
        const top = this.heap[0];
        if (top.cancelled) {
          this.pop();
          this.cancelled--;
          continue;
        }
        if (top.at > this.current) break;
        this.pop();
        top.cancelled = true; // a late cancel() of a fired timer is a no-op
        this.fired++;
        top.fn();
      }
    }
    this.current = end;
    await turn();
    return this.current;
  }

  /**
   * Advances until `cond()` holds or `maxMs` of virtual time passed; true if it held.
   * `pollMs` > 0 checks at most that often (virtual): for conditions that cost O(N^2).
   */
  async waitFor(cond: () => boolean, maxMs: number, pollMs = 0): Promise<boolean> {
    if (cond()) return true;
    let nextCheck = this.current + pollMs;
    const due = (): boolean => {
      if (this.current < nextCheck) return false;
      nextCheck = this.current + pollMs;
      return cond();
    };
    await this.advance(maxMs, pollMs > 0 ? due : cond);
    return cond();
  }

  private skipCancelled(): void {
    while (this.heap.length > 0 && this.heap[0].cancelled) {
      this.pop();
      this.cancelled--;
    }
  }

  private compact(): void {
    const live = this.heap.filter(e => !e.cancelled);
    live.sort((a, b) => (less(a, b) ? -1 : 1));
    this.heap = live; // a sorted array is a valid heap
    this.cancelled = 0;
  }

  private push(e: Entry): void {
    heapPush(this.heap, e, less);
  }

  private pop(): Entry {
    return heapPop(this.heap, less);
  }
}
