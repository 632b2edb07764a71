/**
 * Rendezvous (highest-random-weight) hashing: which member of the cluster keeps a key.
 * Every member scores the key and the highest score wins, so every node that lists the
 * same members picks the same owner with no coordination, and when a member leaves only
 * the keys it owned move (each to its own next-best member). The second-best member is
 * the key's replica (idempotency.ts). Pure: no I/O, no state.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `s` (ids and keys are short strings). */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finalizer: spreads every input bit over the output. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The weight of `member` for a key whose hash is `keyHash`. */
function weight(member: string, keyHash: number): number {
  // Two rounds of mixing so member and key hashes do not cancel each other out.
  return fmix32(fmix32(fnv1a(member)) ^ keyHash);
}

/** Whether weight `w` of member `m` beats weight `bw` of member `b` (ties: smaller id). */
function beats(w: number, m: string, bw: number, b: string | undefined): boolean {
  return w > bw || (w === bw && b !== undefined && m < b);
}

/**
 * The owner of `key` among `members` (node ids); undefined when there are none. Ties
 * (equal weights) go to the smaller id, so the answer never depends on the list's order.
 */
export function rendezvousOwner(key: string, members: readonly string[]): string | undefined {
  const keyHash = fmix32(fnv1a(key, 0x9747b28c));
  let best: string | undefined;
  let bestWeight = -1;
  for (const m of members) {
    const w = weight(m, keyHash);
    if (w > bestWeight || (w === bestWeight && best !== undefined && m < best)) {
      best = m;
      bestWeight = w;
    }
  }
  return best;
}

/**
 * The owner of `key` and the member that would own it next (its replica): the two
 * highest weights, in order. One element for one member, none for none.
 */
export function rendezvousPair(key: string, members: readonly string[]): string[] {
  const keyHash = fmix32(fnv1a(key, 0x9747b28c));
  let first: string | undefined;
  let firstWeight = -1;
  let second: string | undefined;
  let secondWeight = -1;
  for (const m of members) {
    const w = weight(m, keyHash);
    if (beats(w, m, firstWeight, first)) {
      second = first;
      secondWeight = firstWeight;
      first = m;
      firstWeight = w;
    } else if (beats(w, m, secondWeight, second)) {
      second = m;
      secondWeight = w;
    }
  }
  const out: string[] = [];
  if (first !== undefined) out.push(first);
  if (second !== undefined) out.push(second);
  return out;
}
