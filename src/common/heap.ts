/**
 * A binary min-heap kept in a plain array, ordered by `less`: the virtual network's
 * pending datagrams and the simulator's timers. Functions on the caller's array, so the
 * caller can still read `h[0]` (the least) and `h.length`, clear it or rebuild it.
 */

/** Adds `e` to the heap `h`. */
export function heapPush<T>(h: T[], e: T, less: (a: T, b: T) => boolean): void {
  h.push(e);
  let i = h.length - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (less(h[p], h[i])) break;
    [h[p], h[i]] = [h[i], h[p]];
    i = p;
  }
}

/** Removes and returns the least element of the non-empty heap `h`. */
export function heapPop<T>(h: T[], less: (a: T, b: T) => boolean): T {
  const top = h[0];
  const last = h.pop() as T;
  if (h.length > 0) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && less(h[l], h[m])) m = l;
      if (r < h.length && less(h[r], h[m])) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
  return top;
}
