/**
 * Duplicate suppression by message id, per origin node, in a bounded window: when a
 * sender fails over to another address (or retries), a message already delivered is
 * not delivered twice.
 *
 * Per origin, the last `window` ids sit in a ring, indexed by an open-addressing hash
 * table (linear probing, backward-shift deletion) that lives in typed arrays: no per-id
 * allocation and no Set to grow, rotate and collect. This runs for every message a peer
 * sends; the two-generation Sets it replaces took 14% of a subscriber node's CPU under
 * cross-node pub/sub (docs/benchmarks.md). Tables start small and double up to the window.
 */

/** FNV-1a over the UTF-16 code units: cheap, and good enough for random-looking ids. */
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Rounds up to a power of two (the table's mask needs one). */
function powerOfTwoAtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

const INITIAL_CAPACITY = 64;

class OriginWindow {
  private capacity: number;
  /** Ring of ids, oldest at `head` once full. */
  private ids: (string | undefined)[];
  /** Hash of ids[i], kept for probing and for moving entries on deletion. */
  private hashes: Uint32Array;
  /** Open-addressing table of ring positions + 1 (0 = empty): a power of two, >= 2x the ring. */
  private slots: Int32Array;
  private head = 0;
  private count = 0;

  constructor(private readonly maxCapacity: number) {
    this.capacity = Math.min(INITIAL_CAPACITY, maxCapacity);
    this.ids = new Array<string | undefined>(this.capacity);
    this.hashes = new Uint32Array(this.capacity);
    this.slots = new Int32Array(powerOfTwoAtLeast(this.capacity * 2));
  }

  /** True the first time `id` is seen within the window (and remembers it). */
  firstSeen(id: string): boolean {
    const h = hashId(id);
    const mask = this.slots.length - 1;
    for (let p = h & mask; this.slots[p] !== 0; p = (p + 1) & mask) {
      if (this.ids[this.slots[p] - 1] === id) return false;
    }
    if (this.count === this.capacity) {
      if (this.capacity < this.maxCapacity) this.grow();
      else this.evictOldest();
    }
    const at = this.head;
    this.ids[at] = id;
    this.hashes[at] = h;
    this.insert(at, h);
    this.head = (this.head + 1) % this.capacity;
    this.count++;
    return true;
  }

  private insert(ringIndex: number, h: number): void {
    const mask = this.slots.length - 1;
    let p = h & mask;
    while (this.slots[p] !== 0) p = (p + 1) & mask;
    this.slots[p] = ringIndex + 1;
  }

  /** Drops the oldest id (at `head`, the ring being full) from the table. */
  private evictOldest(): void {
    const ringIndex = this.head;
    const slots = this.slots;
    const mask = slots.length - 1;
    let i = this.hashes[ringIndex] & mask;
    while (slots[i] !== ringIndex + 1) i = (i + 1) & mask;
    slots[i] = 0;
    // Backward shift: pull later entries of the probe run into the hole when their home
    // slot is not between the hole and where they sit.
    for (let j = (i + 1) & mask; slots[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashes[slots[j] - 1] & mask;
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (!between) {
        slots[i] = slots[j];
        slots[j] = 0;
        i = j;
      }
    }
    this.ids[ringIndex] = undefined;
    this.count--;
  }

  /** Doubles the ring (up to the window) and rebuilds the table, oldest first. */
  private grow(): void {
    const oldIds = this.ids;
    const oldHashes = this.hashes;
    const oldCapacity = this.capacity;
    this.capacity = Math.min(this.capacity * 2, this.maxCapacity);
    this.ids = new Array<string | undefined>(this.capacity);
    this.hashes = new Uint32Array(this.capacity);
    this.slots = new Int32Array(powerOfTwoAtLeast(this.capacity * 2));
    // the ring is full: the oldest entry is at head
    for (let k = 0; k < oldCapacity; k++) {
      const from = (this.head + k) % oldCapacity;
      this.ids[k] = oldIds[from];
      this.hashes[k] = oldHashes[from];
      this.insert(k, oldHashes[from]);
    }
    this.head = oldCapacity % this.capacity;
  }
}

export class DedupWindow {
  private readonly origins = new Map<string, OriginWindow>();
  private readonly window: number;

  /**
   * @param window ids remembered per origin (exactly the last `window`)
   * @param maxOrigins origins remembered; the oldest is forgotten beyond it
   */
  constructor(
    window: number,
    private readonly maxOrigins = 4096
  ) {
    this.window = Math.max(1, Math.floor(window));
  }

  /** True the first time (origin, id) is seen within the window; false for a repeat. */
  firstSeen(origin: string, id: string): boolean {
    let w = this.origins.get(origin);
    if (!w) {
      if (this.origins.size >= this.maxOrigins) {
        // Forget the oldest origin (Map keeps insertion order).
        const oldest = this.origins.keys().next().value;
        if (oldest !== undefined) this.origins.delete(oldest);
      }
      w = new OriginWindow(this.window);
      this.origins.set(origin, w);
    }
    return w.firstSeen(id);
  }
}
