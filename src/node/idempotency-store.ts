/**
 * The records of idempotency keys this node owns (rendezvous.ts picks the owner): key ->
 * pending (a Send holds the claim and is delivering) or done (its ack, kept for the
 * window). Pure and synchronous: time comes from the injected clock; waiting for a pending
 * claim lives in idempotency.ts.
 *
 * Bounded: at most `maxKeys` records. When full (after forgetting expired records) a new
 * key is refused (`full`, the caller answers RESOURCE_EXHAUSTED) rather than forgetting a
 * record still inside its window, which would let a retry deliver twice.
 */
import type { Clock } from '../common';

/** What the owner answers a claim. */
export type ClaimAnswer =
  /** The key is new (or its earlier claim failed or lapsed): the claimer delivers. */
  | { kind: 'new' }
  /** Already accepted within the window: the original ack. */
  | { kind: 'duplicate'; id: string; delivered: number }
  /** Another Send holds the claim and has not finished. */
  | { kind: 'pending' }
  /** The store holds maxKeys records within their window. */
  | { kind: 'full' };

interface KeyRecord {
  /** The claim holder's token: only it may complete or release the claim. */
  token: string;
  state: 'pending' | 'done';
  id: string;
  delivered: number;
  /** Clock time the record lapses: the claim's lease while pending, the window once done. */
  expiresAt: number;
}

export interface IdempotencyStoreInit {
  clock: Clock;
  /** How long a completed key is remembered after its ack. */
  windowMs: number;
  /** Records held at most. */
  maxKeys: number;
}

/** Counters of the store (exported as metrics). */
export interface IdempotencyStoreCounts {
  /** Claims answered `new`. */
  accepted: number;
  /** Claims answered `duplicate`. */
  duplicates: number;
  /** Claims answered `pending`. */
  pending: number;
  /** Claims refused: the store was full. */
  refusedFull: number;
  /** Records forgotten at the end of their window (or a lapsed claim's lease). */
  expired: number;
  /** Pending claims whose holder never completed nor released them within the lease. */
  leasesLapsed: number;
}

/** How often a full store may scan all its records for expired ones (ms). */
const FULL_SCAN_INTERVAL_MS = 1000;

export class IdempotencyStore {
  /** Insertion order is expiry order for done records (completion re-inserts). */
  private readonly records = new Map<string, KeyRecord>();
  private readonly clock: Clock;
  readonly windowMs: number;
  readonly maxKeys: number;
  private lastFullScan = -Infinity;
  readonly counts: IdempotencyStoreCounts = {
    accepted: 0,
    duplicates: 0,
    pending: 0,
    refusedFull: 0,
    expired: 0,
    leasesLapsed: 0,
  };

  constructor(init: IdempotencyStoreInit) {
    this.clock = init.clock;
    this.windowMs = init.windowMs;
    this.maxKeys = Math.max(1, Math.floor(init.maxKeys));
  }

  /** Records held now (pending and done). */
  get size(): number {
    return this.records.size;
  }

  /**
   * Claims `key` for the Send holding `token`, for at most `leaseMs` unless completed.
   * A claim by the token that already holds the key is answered `new` again (a claim
   * whose answer was lost and is asked again).
   */
  claim(key: string, token: string, leaseMs: number): ClaimAnswer {
    const now = this.clock.now();
    this.sweep(now);
    const r = this.live(key, now);
    if (r) {
      if (r.state === 'done') {
        this.counts.duplicates++;
        return { kind: 'duplicate', id: r.id, delivered: r.delivered };
      }
      if (r.token === token) return { kind: 'new' };
      this.counts.pending++;
      return { kind: 'pending' };
    }
    if (this.records.size >= this.maxKeys) {
      if (now - this.lastFullScan >= FULL_SCAN_INTERVAL_MS) {
        this.lastFullScan = now;
        for (const [k, rec] of this.records) if (rec.expiresAt <= now) this.forget(k, rec);
      }
      if (this.records.size >= this.maxKeys) {
        this.counts.refusedFull++;
        return { kind: 'full' };
      }
    }
    this.records.set(key, {
      token,
      state: 'pending',
      id: '',
      delivered: 0,
      expiresAt: now + Math.max(1, Math.min(leaseMs, this.windowMs)),
    });
    this.counts.accepted++;
    return { kind: 'new' };
  }

  /**
   * The claim's Send was acked: remember its id and delivered count for the window.
   * False when `token` no longer holds the key (its lease lapsed and another took it).
   */
  complete(key: string, token: string, id: string, delivered: number): boolean {
    const r = this.records.get(key);
    if (!r || r.token !== token || r.state !== 'pending') return false;
    this.records.delete(key);
    this.records.set(key, {
      token,
      state: 'done',
      id,
      delivered,
      expiresAt: this.clock.now() + this.windowMs,
    });
    return true;
  }

  /**
   * Records `key` as done (a replica's copy, or a record recovered from the replica) for
   * `remainingMs`, replacing a pending claim of any holder. False when the store is full.
   */
  put(key: string, id: string, delivered: number, remainingMs: number): boolean {
    const now = this.clock.now();
    this.sweep(now);
    if (!this.records.has(key) && this.records.size >= this.maxKeys) {
      this.counts.refusedFull++;
      return false;
    }
    this.records.delete(key);
    this.records.set(key, {
      token: '',
      state: 'done',
      id,
      delivered,
      expiresAt: now + remainingMs,
    });
    return true;
  }

  /** The ack recorded for `key` and how long it stays, if done and within its window. */
  peek(key: string): { id: string; delivered: number; remainingMs: number } | undefined {
    const now = this.clock.now();
    const r = this.live(key, now);
    if (!r || r.state !== 'done') return undefined;
    return { id: r.id, delivered: r.delivered, remainingMs: r.expiresAt - now };
  }

  /** The claim's Send failed: forget the key so a retry delivers. */
  release(key: string, token: string): boolean {
    const r = this.records.get(key);
    if (!r || r.token !== token || r.state !== 'pending') return false;
    this.records.delete(key);
    return true;
  }

  /** The record of `key` if still within its window or lease (expired ones are forgotten). */
  private live(key: string, now: number): KeyRecord | undefined {
    const r = this.records.get(key);
    if (!r) return undefined;
    if (r.expiresAt > now) return r;
    this.forget(key, r);
    return undefined;
  }

  /** Forgets expired records at the head of the map (the oldest). */
  private sweep(now: number): void {
    for (const [k, r] of this.records) {
      if (r.expiresAt > now) return;
      this.forget(k, r);
    }
  }

  private forget(key: string, r: KeyRecord): void {
    this.records.delete(key);
    if (r.state === 'pending') this.counts.leasesLapsed++;
    else this.counts.expired++;
  }
}
