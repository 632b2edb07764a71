/**
 * Work in progress on a node (Sends awaiting an ack, Requests awaiting a reply), so a
 * draining node can wait for it to finish, up to its drain timeout.
 */
import type { Clock } from '../common';

export class InFlightWork {
  private count = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.count;
  }

  /** Counts `p` until it settles. */
  track<T>(p: Promise<T>): Promise<T> {
    this.count++;
    // then(ok, fail), not finally(): two microtask hops fewer on every request's answer
    const done = (): void => {
      this.count--;
      if (this.count === 0) this.wakeIdle();
    };
    return p.then(
      v => {
        done();
        return v;
      },
      (err: unknown) => {
        done();
        throw err;
      }
    );
  }

  /** Resolves true when nothing is in flight, or false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return true;
    return new Promise<boolean>(resolve => {
      const timer = this.clock.setTimer(timeoutMs, () => resolve(false));
      this.idleWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
