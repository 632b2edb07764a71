/**
 * Duplicate suppression per origin node, in a bounded window: when a sender fails over
 * to another address (or retries), a message already delivered is not delivered twice.
 *
 * The key is the sequence number the sending node gave the message (wire.ts), never the
 * client's message id: clients reuse ids freely ("order-42" for every event of an order),
 * and an id of theirs must never make us drop a message. Sequence numbers are numbers, so
 * the window's memory is bounded in bytes as well as in count: 20 bytes an entry, and a
 * budget of entries across all origins (old origins, e.g. a restarted peer's previous
 * instance, are forgotten first).
 *
 * Per origin, the last `window` ids sit in a ring, indexed by an open-addressing hash
 * table (linear probing, backward-shift deletion) that lives in typed arrays: no per-id
 * allocation and no Set to grow, rotate and collect. This runs for every message a peer
 * sends; the two-generation Sets it replaces took 14% of a subscriber node's CPU under
 * cross-node pub/sub (docs/benchmarks.md). Tables start small and double up to the window.
 */

/** A multiplicative hash of a sequence number (an integer below 2^53). */
function hashSeq(seq: number): number {
  const lo = seq >>> 0;
  const hi = (seq / 0x1_0000_0000) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) >>> 0;
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
  /** Ring of sequence numbers, oldest at `head` once full. */
  private ids: Float64Array;
  /** Hash of ids[i], kept for probing and for moving entries on deletion. */
  private hashes: Uint32Array;
  /** Open-addressing table of ring positions + 1 (0 = empty): a power of two, >= 2x the ring. */
  private slots: Int32Array;
  private head = 0;
  private count = 0;

  constructor(private readonly maxCapacity: number) {
    this.capacity = Math.min(INITIAL_CAPACITY, maxCapacity);
    this.ids = new Float64Array(this.capacity);
    this.hashes = new Uint32Array(this.capacity);
    this.slots = new Int32Array(powerOfTwoAtLeast(this.capacity * 2));
  }

  /** Entries this window has room for now (it grows up to the window). */
  get size(): number {
    return this.capacity;
  }

  /** True the first time `id` is seen within the window (and remembers it). */
  firstSeen(id: number): boolean {
    const h = hashSeq(id);
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
    this.count--;
  }

  /** Doubles the ring (up to the window) and rebuilds the table, oldest first. */
  private grow(): void {
    const oldIds = this.ids;
    const oldHashes = this.hashes;
    const oldCapacity = this.capacity;
    this.capacity = Math.min(this.capacity * 2, this.maxCapacity);
    this.ids = new Float64Array(this.capacity);
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

/** Bytes an entry costs: its number, its hash and two table slots. */
export const DEDUP_BYTES_PER_ENTRY = 8 + 4 + 2 * 4;

export class DedupWindow {
  private readonly origins = new Map<string, OriginWindow>();
  private readonly window: number;
  private entries = 0;

  /**
   * @param window sequence numbers remembered per origin (exactly the last `window`)
   * @param maxOrigins origins remembered; the oldest is forgotten beyond it
   * @param maxEntries entries across all origins; the oldest origins are forgotten beyond it
   */
  constructor(
    window: number,
    private readonly maxOrigins = 1024,
    private readonly maxEntries = 1 << 20
  ) {
    this.window = Math.max(1, Math.floor(window));
  }

  /** Origins remembered now. */
  get originCount(): number {
    return this.origins.size;
  }

  /** Bytes the windows hold now (bounded by maxEntries * DEDUP_BYTES_PER_ENTRY). */
  get bytes(): number {
    return this.entries * DEDUP_BYTES_PER_ENTRY;
  }

  /** True the first time (origin, seq) is seen within the window; false for a repeat. */
  firstSeen(origin: string, seq: number): boolean {
    let w = this.origins.get(origin);
    if (!w) {
      const oldest = this.origins.keys().next().value;
      if (this.origins.size >= this.maxOrigins && oldest !== undefined) this.forget(oldest);
      w = new OriginWindow(this.window);
      this.origins.set(origin, w);
      this.entries += w.size;
    }
    const before = w.size;
    const first = w.firstSeen(seq);
    if (w.size !== before) {
      this.entries += w.size - before;
      // Over budget: forget the oldest origins (Map keeps insertion order), never this one.
      while (this.entries > this.maxEntries) {
        const oldest = this.origins.keys().next().value;
        if (oldest === undefined || oldest === origin) break;
        this.forget(oldest);
      }
    }
    return first;
  }

  private forget(origin: string): void {
    const w = this.origins.get(origin);
    if (!w) return;
    this.origins.delete(origin);
    this.entries -= w.size;
  }
}
