/**
 * Counters of dropped items by reason. Every bounded queue owns one, so that every drop
 * is visible; the telemetry layer exports them as metrics.
 */
export class DropCounter<Reason extends string = string> {
  private readonly counts = new Map<Reason, number>();

  add(reason: Reason, n = 1): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }

  get(reason: Reason): number {
    return this.counts.get(reason) ?? 0;
  }

  total(): number {
    let sum = 0;
    for (const v of this.counts.values()) sum += v;
    return sum;
  }

  /** A snapshot, reason -> count. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
