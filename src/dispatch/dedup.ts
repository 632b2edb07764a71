/**
 * Duplicate suppression by message id, per origin node, in a bounded window: when a
 * sender fails over to another address (or retries), a message already delivered is
 * not delivered twice. Memory is bounded by `perOrigin` ids times `maxOrigins`.
 */
export class DedupWindow {
  private readonly origins = new Map<string, { ids: Set<string>; order: string[]; head: number }>();

  constructor(
    private readonly perOrigin: number,
    private readonly maxOrigins = 4096
  ) {}

  /** True the first time (origin, id) is seen within the window; false for a repeat. */
  firstSeen(origin: string, id: string): boolean {
    let w = this.origins.get(origin);
    if (!w) {
      if (this.origins.size >= this.maxOrigins) {
        // Forget the oldest origin (Map keeps insertion order).
        const oldest = this.origins.keys().next().value;
        if (oldest !== undefined) this.origins.delete(oldest);
      }
      w = { ids: new Set(), order: new Array<string>(this.perOrigin), head: 0 };
      this.origins.set(origin, w);
    }
    if (w.ids.has(id)) return false;
    const evicted = w.order[w.head];
    if (evicted !== undefined) w.ids.delete(evicted);
    w.order[w.head] = id;
    w.head = (w.head + 1) % this.perOrigin;
    w.ids.add(id);
    return true;
  }
}
