/**
 * A set of non-overlapping half-open integer ranges [start, end), kept sorted in a flat
 * array. Used for received packet numbers and for acknowledged stream bytes; both grow
 * mostly at the top, so insertion scans from the end.
 */
export class RangeSet {
  /** [s0, e0, s1, e1, ...] ascending, non-adjacent. */
  readonly r: number[] = [];

  get rangeCount(): number {
    return this.r.length >> 1;
  }

  isEmpty(): boolean {
    return this.r.length === 0;
  }

  /** Largest member + 1, or 0 when empty. */
  max(): number {
    return this.r.length === 0 ? 0 : this.r[this.r.length - 1];
  }

  min(): number {
    return this.r.length === 0 ? 0 : this.r[0];
  }

  contains(x: number): boolean {
    const r = this.r;
    for (let i = r.length - 2; i >= 0; i -= 2) {
      if (x >= r[i]) return x < r[i + 1];
    }
    return false;
  }

  /** True when all of [s, e) is in the set. */
  containsRange(s: number, e: number): boolean {
    const r = this.r;
    for (let i = r.length - 2; i >= 0; i -= 2) {
      if (s >= r[i]) return e <= r[i + 1];
    }
    return false;
  }

  /** Adds [s, e); returns the number of members that were not in the set. */
  add(s: number, e: number): number {
    if (e <= s) return 0;
    const r = this.r;
    const n = r.length;
    // fast path: append or extend the last range
    if (n === 0 || s > r[n - 1]) {
      r.push(s, e);
      return e - s;
    }
    if (s >= r[n - 2]) {
      if (e <= r[n - 1]) return 0;
      const added = e - r[n - 1];
      r[n - 1] = e;
      return added;
    }
    // general case: find ranges overlapping or adjacent to [s, e]
    let first = 0;
    while (first < n && r[first + 1] < s) first += 2;
    let last = first;
    let covered = 0;
    while (last < n && r[last] <= e) {
      covered += Math.min(r[last + 1], e) - Math.max(r[last], s);
      last += 2;
    }
    if (first === last) {
      r.splice(first, 0, s, e);
      return e - s;
    }
    const ns = Math.min(s, r[first]);
    const ne = Math.max(e, r[last - 1]);
    let overlap = 0;
    // covered counts only the overlap inside [s,e]; adjacency (touching) adds 0
    overlap = Math.max(0, covered);
    r.splice(first, last - first, ns, ne);
    return e - s - overlap;
  }

  /** Removes every member below x. */
  removeBelow(x: number): void {
    const r = this.r;
    let k = 0;
    while (k < r.length && r[k + 1] <= x) k += 2;
    if (k > 0) r.splice(0, k);
    if (r.length > 0 && r[0] < x) r[0] = x;
  }

  /** End of the range starting at or before `from` that covers it, else `from`. */
  contiguousEnd(from: number): number {
    const r = this.r;
    for (let i = 0; i < r.length; i += 2) {
      if (r[i] > from) return from;
      if (r[i + 1] >= from) return r[i + 1];
    }
    return from;
  }
}
