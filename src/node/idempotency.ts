/**
 * Exactly-once publish across client retries: Sends with an idempotency key.
 *
 * One node keeps each key (its owner: rendezvous hashing of the key over the node ids the
 * cluster lists, rendezvous.ts). The node a client publishes through claims the key at
 * the owner before delivering (IDEMPOTENCY_CLAIM, or a local call when it owns the key):
 * `new` -> it delivers, then tells the owner the ack (IDEMPOTENCY_COMPLETE) before
 * answering the client; `duplicate` -> it answers with the original ack and delivers
 * nothing; `pending` (the original Send is still delivering) -> the owner holds the claim
 * until that Send finishes or the caller's deadline nears. Nothing is delivered without a
 * claim: an owner that cannot be reached is UNAVAILABLE.
 *
 * Records live in memory (idempotency-store.ts), on the owner and on the key's replica
 * (the next member in hash order): the owner copies each ack there before answering
 * IDEMPOTENCY_COMPLETE, unless the completing node is that replica and kept the copy
 * itself (one round trip less). Bodies: idempotency-codec.ts (binary). An owner that
 * started less than one window ago may have lost records of its previous run, so on a
 * miss it asks the replica (IDEMPOTENCY_LOOKUP) before accepting a key: a restart of one node inside the window still deduplicates.
 * What is lost when both restart, or while a Send was pending: docs/design.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../common';
import { InvalidArgumentError, ResourceExhaustedError, UnavailableError, quote } from '../common';
import type { CompleteRequest, OwnerAnswer, RecordCopy } from './idempotency-codec';
import {
  MAX_IDEMPOTENCY_KEY_BYTES,
  SCOPE_BYTES,
  decodeClaim,
  decodeClaimAnswer,
  decodeComplete,
  decodeLookup,
  decodeLookupAnswer,
  decodeRecord,
  encodeClaim,
  encodeClaimAnswer,
  encodeComplete,
  encodeLookup,
  encodeLookupAnswer,
  encodeRecord,
} from './idempotency-codec';
import type { ClaimAnswer, IdempotencyStoreCounts } from './idempotency-store';
import { IdempotencyStore } from './idempotency-store';
import { rendezvousPair } from './rendezvous';
import type { SendResult } from './types';

export { MAX_IDEMPOTENCY_KEY_BYTES };
export type { OwnerAnswer };

/**
 * The key as the cluster keeps it: clients authenticated by different tokens have key
 * spaces of their own, so one client can neither suppress another's Send nor learn its
 * message id by reusing its key. The scope (a token name) becomes a fixed-size digest.
 */
export function scopedKey(key: string, scope: string): string {
  if (!scope) return key;
  let prefix = scopePrefixes.get(scope);
  if (prefix === undefined) {
    prefix = `${createHash('sha256')
      .update(scope)
      .digest('base64url')
      .slice(0, SCOPE_BYTES - 1)}:`;
    // Token names are few; a bounded memo spares a SHA-256 per keyed Send.
    if (scopePrefixes.size >= MAX_SCOPE_PREFIXES) scopePrefixes.clear();
    scopePrefixes.set(scope, prefix);
  }
  return prefix + key;
}

/** The digest prefix of recent scopes (scopedKey), at most MAX_SCOPE_PREFIXES. */
const scopePrefixes = new Map<string, string>();
const MAX_SCOPE_PREFIXES = 1024;

/** Default of idempotencyWindowMs: how long an accepted key is remembered. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 120_000;
/** Default of idempotencyMaxKeys: records an owner holds at most. */
export const DEFAULT_IDEMPOTENCY_MAX_KEYS = 1_000_000;

/** Claims waiting at an owner for a pending Send of the same key, at most. */
const MAX_WAITING_CLAIMS = 10_000;
/** Answer a held claim this long before the caller's deadline, so the answer arrives in time. */
const WAIT_MARGIN_MS = 250;

/** Why an idempotent Send was refused (meshwire_idempotency_refusals_total{reason}). */
export const IDEMPOTENCY_REFUSAL_REASONS = [
  /** idempotency_key over MAX_IDEMPOTENCY_KEY_BYTES (INVALID_ARGUMENT). */
  'key_too_long',
  /** The owner holds idempotencyMaxKeys records within their window (RESOURCE_EXHAUSTED). */
  'store_full',
  /** The owner could not be reached or did not answer (UNAVAILABLE, nothing delivered). */
  'owner_unreachable',
  /** The original Send was still in progress when the caller's deadline neared (UNAVAILABLE). */
  'still_pending',
  /** Too many claims already waited at the owner for pending Sends (UNAVAILABLE). */
  'waiters_full',
  /**
   * An owner that started less than one window ago could not ask the key's replica
   * whether its previous run accepted the key (UNAVAILABLE, nothing delivered).
   */
  'replica_unreachable',
] as const;
export type IdempotencyRefusalReason = (typeof IDEMPOTENCY_REFUSAL_REASONS)[number];

/** Throws InvalidArgumentError for a key over MAX_IDEMPOTENCY_KEY_BYTES. */
export function checkIdempotencyKey(key: string): void {
  if (key.length * 3 <= MAX_IDEMPOTENCY_KEY_BYTES) return;
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_IDEMPOTENCY_KEY_BYTES) {
    throw new InvalidArgumentError(
      `send: idempotency_key is ${bytes} bytes; at most ${MAX_IDEMPOTENCY_KEY_BYTES} bytes are allowed`
    );
  }
}

// --- the service ---------------------------------------------------------------------

/** The calls between nodes (one IDEMPOTENCY_* op each). */
export type IdempotencyCall = 'claim' | 'complete' | 'replicate' | 'lookup';

/** How the service reaches the owner or replica of a key on another node. */
export interface IdempotencyPeers {
  /** Node ids of the cluster, this node's included (every node must list the same ones). */
  members(): readonly string[];
  call(peerId: string, call: IdempotencyCall, body: Buffer, timeoutMs: number): Promise<Buffer>;
}

/** The answers of COMPLETE and REPLICATE (idempotency-codec.ts). */
const EMPTY = Buffer.alloc(0);
const TAKEN = Buffer.from([1]);
const REFUSED = Buffer.from([0]);

/** How long an owner waits for its replica (copying an ack, or a lookup after a restart). */
const REPLICA_TIMEOUT_MS = 5_000;

export interface IdempotencyInit {
  localId: string;
  clock: Clock;
  windowMs: number;
  maxKeys: number;
  peers: IdempotencyPeers;
}

/** Counters of one node (exported as metrics by src/api/node-metrics.ts). */
export interface IdempotencyCounts extends IdempotencyStoreCounts {
  /** Idempotent Sends this node answered with duplicate = true. */
  duplicatesReturned: number;
  /** Claims this node sent to the key's owner on another node. */
  claimsForwarded: number;
  /** Completions that did not reach the owner (the key stays pending until its lease lapses). */
  completionsLost: number;
  /**
   * Acks this node, as owner, copied to the key's replica (including those the replica
   * kept itself because the Send came through it).
   */
  replicated: number;
  /** Acks the replica did not take (unreachable or full): kept on the owner only. */
  replicationsFailed: number;
  /** Records copied to this node as a replica. */
  replicaRecords: number;
  /** Lookups this node, recently started, made at replicas. */
  lookups: number;
  /** Of those, lookups that found a record (a key its previous run accepted). */
  recovered: number;
}

interface WaitingClaim {
  token: string;
  leaseMs: number;
  timer: Timer;
  resolve(a: ClaimAnswer): void;
}

export class Idempotency {
  readonly store: IdempotencyStore;
  private readonly init: IdempotencyInit;
  /** Claims held for pending Sends, by key (MAX_WAITING_CLAIMS in all). */
  private readonly waiting = new Map<string, WaitingClaim[]>();
  private waitingCount = 0;
  private readonly tokenPrefix = `${randomBytes(6).toString('base64url')}.`;
  private nextToken = 0;
  readonly refusals: Record<IdempotencyRefusalReason, number> = {
    key_too_long: 0,
    store_full: 0,
    owner_unreachable: 0,
    still_pending: 0,
    waiters_full: 0,
    replica_unreachable: 0,
  };
  private readonly publisherCounts = {
    duplicatesReturned: 0,
    claimsForwarded: 0,
    completionsLost: 0,
    replicated: 0,
    replicationsFailed: 0,
    replicaRecords: 0,
    lookups: 0,
    recovered: 0,
  };
  /** When this node started: until one window later it may have lost records. */
  private readonly startedAt: number;

  constructor(init: IdempotencyInit) {
    this.init = init;
    this.store = new IdempotencyStore({
      clock: init.clock,
      windowMs: init.windowMs,
      maxKeys: init.maxKeys,
    });
    this.startedAt = init.clock.now();
  }

  get counts(): IdempotencyCounts {
    return { ...this.store.counts, ...this.publisherCounts };
  }

  /** Claims held at this node waiting for a pending Send. */
  get waitingClaims(): number {
    return this.waitingCount;
  }

  /** The node that keeps `key`. */
  ownerOf(key: string): string {
    return rendezvousPair(key, this.init.peers.members())[0] ?? this.init.localId;
  }

  /** Whether this node started less than one window ago (it may have lost records). */
  get recentlyStarted(): boolean {
    return this.init.clock.now() - this.startedAt < this.init.windowMs;
  }

  /** Counts a key refused for its length (the caller validated it). */
  checkKey(key: string): void {
    try {
      checkIdempotencyKey(key);
    } catch (err) {
      this.refusals.key_too_long++;
      throw err;
    }
  }

  /**
   * Publishes through `deliver` at most once per key within the window: claims the key at
   * its owner, delivers when new, records the ack there. `timeoutMs` bounds the wait.
   */
  async publish(
    clientKey: string,
    timeoutMs: number,
    deliver: () => SendResult | Promise<SendResult>,
    /** The delivered count the client sees (0 for ACCEPTED). */
    ackedCount: (r: SendResult) => number,
    /** Whose key space the key is in (the client's token name); '' for the shared one. */
    scope = ''
  ): Promise<SendResult & { duplicate: boolean }> {
    // Errors quote the client's key; the cluster keeps the scoped one.
    const key = scopedKey(clientKey, scope);
    const deadline = this.init.clock.now() + timeoutMs;
    const [owner = this.init.localId, replica] = rendezvousPair(key, this.init.peers.members());
    const token = `${this.init.localId}.${this.tokenPrefix}${this.nextToken++}`;
    // The claim lapses if this node never completes it (it crashed): after the Send's time.
    const leaseMs = timeoutMs + 5_000;
    const answer = await this.claimAt(owner, key, clientKey, token, leaseMs, timeoutMs);
    switch (answer.kind) {
      case 'duplicate':
        this.publisherCounts.duplicatesReturned++;
        return { id: answer.id, delivered: answer.delivered, duplicate: true };
      case 'full':
        this.refusals.store_full++;
        throw new ResourceExhaustedError(
          `send: node ${quote(owner)}, which keeps idempotency_key ${quote(clientKey)}, holds idempotencyMaxKeys keys within their window; nothing was delivered: retry later`
        );
      case 'pending':
        this.refusals.still_pending++;
        throw new UnavailableError(
          `send: a Send with idempotency_key ${quote(clientKey)} is still in progress; nothing was delivered: retry to get its ack`
        );
      case 'unverified':
        this.refusals.replica_unreachable++;
        throw new UnavailableError(
          `send: node ${quote(owner)}, which keeps idempotency_key ${quote(clientKey)}, restarted recently and could not ask node ${quote(answer.replica)} whether the key was already accepted; nothing was delivered: retry`
        );
      case 'new':
        break;
    }
    let result: SendResult;
    try {
      result = await deliver();
    } catch (err) {
      // The key is forgotten so that a retry delivers (the error said it was not sent).
      void this.completeAt(
        owner,
        { key, token, ok: false, id: '', delivered: 0 },
        this.remainingUntil(deadline)
      );
      throw err;
    }
    const delivered = ackedCount(result);
    // This node is the key's replica: it keeps the copy now and the owner need not send
    // it (one round trip less; the owner checks that this node is the replica it picks).
    let replicaHeld = false;
    if (replica === this.init.localId && owner !== this.init.localId) {
      replicaHeld = this.store.put(key, result.id, delivered, this.init.windowMs);
      if (replicaHeld) this.publisherCounts.replicaRecords++;
    }
    await this.completeAt(
      owner,
      { key, token, ok: true, id: result.id, delivered, replicaHeld },
      this.remainingUntil(deadline)
    );
    return { id: result.id, delivered, duplicate: false };
  }

  /** Milliseconds left until `deadline` (at least 1). */
  private remainingUntil(deadline: number): number {
    return Math.max(1, deadline - this.init.clock.now());
  }

  private async claimAt(
    owner: string,
    key: string,
    /** The key as the client sent it (for the error message). */
    clientKey: string,
    token: string,
    leaseMs: number,
    timeoutMs: number
  ): Promise<OwnerAnswer> {
    if (owner === this.init.localId) {
      return this.claim(key, token, leaseMs, timeoutMs - WAIT_MARGIN_MS);
    }
    this.publisherCounts.claimsForwarded++;
    let body: Buffer;
    try {
      body = await this.init.peers.call(
        owner,
        'claim',
        encodeClaim({ key, token, leaseMs }),
        answerWithin(timeoutMs)
      );
    } catch (err) {
      this.refusals.owner_unreachable++;
      throw new UnavailableError(
        `send: node ${quote(owner)}, which keeps idempotency_key ${quote(clientKey)}, did not answer (${(err as Error).message}); nothing was delivered: retry`
      );
    }
    return decodeClaimAnswer(body);
  }

  private async completeAt(owner: string, c: CompleteRequest, timeoutMs: number): Promise<void> {
    if (owner === this.init.localId) {
      await this.complete(c, this.init.localId);
      return;
    }
    try {
      await this.init.peers.call(owner, 'complete', encodeComplete(c), answerWithin(timeoutMs));
    } catch {
      // Delivered all the same: the owner keeps the claim pending until its lease lapses,
      // so a retry until then waits and is told to retry; counted.
      this.publisherCounts.completionsLost++;
    }
  }

  // --- the owner's side ----------------------------------------------------------------

  /**
   * A claim at this node (the owner). A key whose Send is pending holds the claim up to
   * `waitMs` for that Send to finish: it then answers duplicate, or new when it failed.
   * A new key at a recently started owner is first looked up at its replica.
   */
  async claim(key: string, token: string, leaseMs: number, waitMs: number): Promise<OwnerAnswer> {
    const answer = this.store.claim(key, token, leaseMs);
    if (answer.kind === 'new' && this.recentlyStarted) return this.verifyNew(key, token);
    if (answer.kind !== 'pending' || waitMs <= 0) return answer;
    if (this.waitingCount >= MAX_WAITING_CLAIMS) {
      this.refusals.waiters_full++;
      return answer;
    }
    return new Promise<ClaimAnswer>(resolve => {
      const waiter: WaitingClaim = {
        token,
        leaseMs,
        resolve,
        timer: this.init.clock.setTimer(waitMs, () => {
          this.unwait(key, waiter);
          // A lease that lapsed meanwhile frees the key: ask once more.
          resolve(this.store.claim(key, token, leaseMs));
        }),
      };
      let list = this.waiting.get(key);
      if (!list) this.waiting.set(key, (list = []));
      list.push(waiter);
      this.waitingCount++;
    });
  }

  /**
   * A key new to this recently started owner (it now holds the claim): asks the replica
   * whether the previous run of this node accepted it. Found: the record is restored and
   * the claim answered duplicate. Replica unreachable: the claim is released, unverified.
   */
  private async verifyNew(key: string, token: string): Promise<OwnerAnswer> {
    const [owner, replica] = rendezvousPair(key, this.init.peers.members());
    if (owner !== this.init.localId || replica === undefined) return { kind: 'new' };
    this.publisherCounts.lookups++;
    let found: RecordCopy | undefined;
    try {
      found = decodeLookupAnswer(
        await this.init.peers.call(replica, 'lookup', encodeLookup(key), REPLICA_TIMEOUT_MS)
      );
    } catch {
      this.store.release(key, token);
      this.wake(key);
      return { kind: 'unverified', replica };
    }
    if (!found) return { kind: 'new' };
    this.publisherCounts.recovered++;
    this.store.put(key, found.id, found.delivered, found.remainingMs);
    this.wake(key);
    return { kind: 'duplicate', id: found.id, delivered: found.delivered };
  }

  /**
   * A completion at this node (the owner) from node `from`: records the ack and copies it
   * to the replica (answered after both), or forgets the key when the Send failed. A
   * caller that is the replica and says it holds the record already is not sent a copy.
   */
  async complete(c: CompleteRequest, from: string): Promise<void> {
    if (!c.ok) {
      this.store.release(c.key, c.token);
      this.wake(c.key);
      return;
    }
    const recorded = this.store.complete(c.key, c.token, c.id, c.delivered);
    this.wake(c.key);
    if (!recorded) return;
    const [owner, replica] = rendezvousPair(c.key, this.init.peers.members());
    if (owner !== this.init.localId || replica === undefined) return;
    if (c.replicaHeld === true && replica === from) {
      this.publisherCounts.replicated++;
      return;
    }
    await this.replicate(replica, c.key, c.id, c.delivered);
  }

  /** Copies an ack to the key's replica (the next member in hash order). */
  private async replicate(
    replica: string,
    key: string,
    id: string,
    delivered: number
  ): Promise<void> {
    try {
      const body = encodeRecord({ key, id, delivered, remainingMs: this.init.windowMs });
      const ok = await this.init.peers.call(replica, 'replicate', body, REPLICA_TIMEOUT_MS);
      if (ok.length > 0 && ok[0] === 1) this.publisherCounts.replicated++;
      else this.publisherCounts.replicationsFailed++;
    } catch {
      this.publisherCounts.replicationsFailed++;
    }
  }

  /** Answers the claims waiting on `key` again: duplicate, or new for the first. */
  private wake(key: string): void {
    const list = this.waiting.get(key);
    if (!list) return;
    this.waiting.delete(key);
    for (const w of list) {
      this.waitingCount--;
      const answer = this.store.claim(key, w.token, w.leaseMs);
      if (answer.kind === 'pending') {
        let again = this.waiting.get(key);
        if (!again) this.waiting.set(key, (again = []));
        again.push(w);
        this.waitingCount++;
        continue;
      }
      w.timer.cancel();
      w.resolve(answer);
    }
  }

  private unwait(key: string, waiter: WaitingClaim): void {
    const list = this.waiting.get(key);
    const i = list ? list.indexOf(waiter) : -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    this.waitingCount--;
    if (list.length === 0) this.waiting.delete(key);
  }

  /**
   * What peer `from` asks this node (the body of an IDEMPOTENCY_* op); resolves with the
   * answer.
   */
  async onPeerCall(
    call: IdempotencyCall,
    body: Buffer,
    timeoutMs: number,
    from: string
  ): Promise<Buffer> {
    switch (call) {
      case 'claim': {
        const c = decodeClaim(body);
        const answer = await this.claim(c.key, c.token, c.leaseMs, timeoutMs - WAIT_MARGIN_MS);
        return encodeClaimAnswer(answer);
      }
      case 'complete':
        await this.complete(decodeComplete(body), from);
        return EMPTY;
      case 'replicate': {
        const r = decodeRecord(body);
        const remaining = Math.min(r.remainingMs, this.init.windowMs);
        const ok = this.store.put(r.key, r.id, r.delivered, remaining);
        if (ok) this.publisherCounts.replicaRecords++;
        return ok ? TAKEN : REFUSED;
      }
      case 'lookup': {
        const key = decodeLookup(body);
        const r = this.store.peek(key);
        return encodeLookupAnswer(r && { key, ...r });
      }
    }
  }

  /** Answers every held claim `pending` (the node is stopping). */
  close(): void {
    for (const [key, list] of this.waiting) {
      this.waiting.delete(key);
      for (const w of list) {
        w.timer.cancel();
        w.resolve({ kind: 'pending' });
      }
    }
    this.waitingCount = 0;
  }
}

/** How long a call to another node may take: a little less than the Send, so its error comes first. */
function answerWithin(timeoutMs: number): number {
  return Math.max(1, timeoutMs - Math.min(WAIT_MARGIN_MS, timeoutMs / 4));
}
