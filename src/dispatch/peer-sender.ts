/**
 * PeerSender: one per resolved peer address. It owns the outbound connection
 * to that address, reconnects with exponential backoff and jitter, and keeps a bounded
 * queue of work while the link is down. Hand-off is non-blocking: a full queue refuses at
 * once (counted). While the peer is unreachable, callers that wait for an answer
 * (requests, DELIVERED sends) fail fast with UNAVAILABLE; fire-and-forget messages wait
 * in the queue until their TTL.
 *
 * A sender with `retryForever: false` (the pool's senders for address targets) gives
 * up after a failure once its queue is empty: no retry timer, no handshake traffic, until
 * work is submitted again (and not before its backoff delay has passed).
 */
import type { Duplex } from 'node:stream';
import type { Clock, DropLedger, HostPort, Timer } from '../common';
import {
  BoundedRing,
  DeadlineExceededError,
  DropCounter,
  ResourceExhaustedError,
  UnavailableError,
  formatHostPort,
} from '../common';
import type { LinkHandler } from './peer-link';
import { PeerLink } from './peer-link';
import type { SenderItem } from './sender-item';
import { removeExpired, waitsForAnswer } from './sender-item';

export type SenderDropReason =
  | 'sender_queue_full'
  | 'ttl_expired'
  | 'peer_unreachable'
  | 'shutdown'
  | 'link_send_failed'
  /** Queued for an address target whose sender was retired (idle, see cluster.ts). */
  | 'address_sender_retired';

export type SenderState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

/**
 * How a sender dials (the cluster's RudpSocket, or a test double). `signal` aborts the
 * attempt when the sender closes meanwhile.
 */
export type Dialer = (
  address: HostPort,
  timeoutMs: number,
  signal?: AbortSignal
) => Promise<Duplex>;

export interface PeerSenderInit {
  address: HostPort;
  /** Peer id expected at the address ('' when addressed by address only). */
  expectedId: string;
  dial: Dialer;
  handler: LinkHandler;
  clock: Clock;
  maxMessageBytes: number;
  /** Items queued at most. @default 10000 */
  queueCapacity?: number;
  /** Bytes queued at most. @default 64 MiB */
  queueBytes?: number;
  /** @default 3000 */
  connectTimeoutMs?: number;
  /** @default 100 */
  backoffBaseMs?: number;
  /** @default 5000 */
  backoffMaxMs?: number;
  /**
   * Keep reconnecting with backoff while nothing is queued. False: give up after a
   * failure once the queue is empty (address targets). @default true
   */
  retryForever?: boolean;
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Called when a link is up (after HELLO) and when it goes down. */
  onLinkUp?(sender: PeerSender, link: PeerLink): void;
  onLinkDown?(sender: PeerSender, err: Error): void;
  random?: () => number;
  log?: ClusterLogger;
  /** Where the sender and its links record drops (the node's ledger). @default none */
  drops?: DropLedger;
}

/** The part of a pino logger the cluster uses. */
export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class PeerSender {
  readonly address: HostPort;
  readonly key: string;
  expectedId: string;
  /** This sender's drops (also recorded in the ledger, where they outlive it). */
  readonly drops: DropCounter<SenderDropReason>;
  state: SenderState = 'idle';
  failures = 0;
  lastError = '';
  /** Id that answered HELLO. */
  remoteId = '';
  link: PeerLink | undefined;
  private readonly init: PeerSenderInit;
  private readonly queue: BoundedRing<SenderItem>;
  private queuedBytes = 0;
  private readonly queueBytesLimit: number;
  private retryTimer: Timer | undefined;
  private sweepTimer: Timer | undefined;
  private outstanding = 0;
  private idleWaiters: Array<() => void> = [];
  private retryForever: boolean;
  /** Gave up after a failure with nothing queued: no retry timer until work arrives. */
  private dormant = false;
  /** Clock time before which a dormant sender does not dial again (its backoff). */
  private retryAt = 0;
  /** Aborts the dial in progress (close). */
  private dialAbort: AbortController | undefined;
  /** A link still in its HELLO exchange (closed by close()). */
  private pendingLink: PeerLink | undefined;

  constructor(init: PeerSenderInit) {
    this.init = init;
    this.drops = new DropCounter('peer_sender', init.drops);
    this.address = init.address;
    this.key = formatHostPort(init.address);
    this.expectedId = init.expectedId;
    this.queue = new BoundedRing<SenderItem>(init.queueCapacity ?? 10_000);
    this.queueBytesLimit = init.queueBytes ?? 64 * 1024 * 1024;
    this.retryForever = init.retryForever ?? true;
  }

  /** Items handed to the live link and not yet answered. */
  get inFlight(): number {
    return this.outstanding;
  }

  /** True while the sender has given up (retryForever false, failed, nothing queued). */
  get gaveUp(): boolean {
    return this.dormant;
  }

  /**
   * Turns `retryForever` on (an address target's sender became a directory peer's): a
   * sender that had given up retries after the rest of its backoff delay.
   */
  keepRetrying(): void {
    this.retryForever = true;
    if (this.dormant && this.state === 'backoff') {
      this.dormant = false;
      this.armRetry(Math.max(0, this.retryAt - this.init.clock.now()));
    }
  }

  /** Items queued plus items handed to the link and not yet answered. */
  get depth(): number {
    return this.queue.length + this.outstanding;
  }

  get queued(): number {
    return this.queue.length;
  }

  get srttUs(): number {
    const s = this.link?.transportStats();
    return s ? Math.round(s.srttMs * 1000) : 0;
  }

  /** Health score for choosing among a peer's addresses (lower is better). */
  score(): number {
    const connectedBonus = this.state === 'connected' ? 0 : 1_000_000;
    return connectedBonus + this.failures * 10_000 + this.srttUs;
  }

  /**
   * Hands work over without blocking. Throws ResourceExhaustedError when the queue is
   * full, UnavailableError for waiting callers while the peer is unreachable.
   */
  submit(item: SenderItem): void {
    if (this.state === 'closed') {
      this.drops.add('shutdown');
      throw new UnavailableError(`sender for ${this.key} is closed (node shutting down)`);
    }
    const waits = waitsForAnswer(item);
    if (this.dormant && this.init.clock.now() >= this.retryAt) {
      // Gave up earlier and its backoff has passed: a new attempt for this work.
      this.dormant = false;
      this.state = 'idle';
    }
    if (this.state === 'backoff' && waits) {
      this.drops.add('peer_unreachable');
      throw this.unreachableError();
    }
    if (this.state === 'connected' && this.queue.length === 0 && this.link) {
      this.dispatch(this.link, item);
      return;
    }
    if (this.queue.full || this.queuedBytes + item.bytes > this.queueBytesLimit) {
      this.drops.add('sender_queue_full');
      throw new ResourceExhaustedError(
        `queue for peer ${this.expectedId || this.key} is full (${this.queue.length} messages, ${this.queuedBytes} bytes) while it is ${this.state}`
      );
    }
    this.queue.push(item);
    this.queuedBytes += item.bytes;
    this.ensureSweep();
    if (this.state === 'idle') this.connect();
    else if (this.dormant) {
      // Fire-and-forget work for a sender that gave up: retry when its backoff ends.
      this.dormant = false;
      this.armRetry(Math.max(0, this.retryAt - this.init.clock.now()));
    }
  }

  private unreachableError(): UnavailableError {
    return new UnavailableError(
      `peer ${this.expectedId || this.key} at ${this.key} is unreachable${this.lastError ? `: ${this.lastError}` : ''}`
    );
  }

  /** Starts connecting now (e.g. a peer from static config). */
  start(): void {
    if (this.state === 'idle') this.connect();
  }

  private connect(): void {
    this.state = 'connecting';
    this.dormant = false;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const timeoutMs = this.init.connectTimeoutMs ?? 3000;
    const abort = new AbortController();
    this.dialAbort = abort;
    this.init
      .dial(this.address, timeoutMs, abort.signal)
      .then(async duplex => {
        if (this.dialAbort === abort) this.dialAbort = undefined;
        const link = new PeerLink(duplex, {
          role: 'outbound',
          handler: this.init.handler,
          expectedId: this.expectedId,
          clock: this.init.clock,
          maxMessageBytes: this.init.maxMessageBytes,
          pingIntervalMs: this.init.pingIntervalMs,
          pongTimeoutMs: this.init.pongTimeoutMs,
          onDrop: (reason, n) => this.drops.add(reason, n),
          drops: this.init.drops,
        });
        link.on('close', err => this.onLinkClosed(link, err));
        // close() ran while dialling (it aborts the dial).
        if (abort.signal.aborted) {
          link.close();
          return;
        }
        this.pendingLink = link;
        try {
          this.remoteId = await link.hello(timeoutMs);
        } catch (err) {
          link.close(err as Error);
          throw err;
        } finally {
          if (this.pendingLink === link) this.pendingLink = undefined;
        }
        if (this.state === 'closed') {
          link.close();
          return;
        }
        this.link = link;
        this.state = 'connected';
        this.failures = 0;
        this.lastError = '';
        this.init.log?.info({ peer_id: this.remoteId, address: this.key }, 'link to peer up');
        this.init.onLinkUp?.(this, link);
        this.flush();
      })
      .catch((err: Error) => {
        if (this.dialAbort === abort) this.dialAbort = undefined;
        this.onConnectFailed(err);
      });
  }

  private onConnectFailed(err: Error): void {
    if (this.state === 'closed') return;
    // Log the first failure of a streak (and id mismatches always), not every retry.
    if (this.failures === 0 || err.name === 'FailedPreconditionError') {
      this.init.log?.warn(
        { peer_id: this.expectedId, address: this.key, err: err.message },
        'cannot connect to peer; retrying with backoff'
      );
    }
    this.failures++;
    this.lastError = err.message;
    this.state = 'backoff';
    this.failWaiting();
    this.scheduleRetry();
  }

  private onLinkClosed(link: PeerLink, err: Error): void {
    if (this.link !== link) return;
    this.link = undefined;
    if (this.state === 'closed') return;
    this.lastError = err.message;
    this.failures++;
    this.state = 'backoff';
    this.init.log?.warn(
      { peer_id: this.remoteId, address: this.key, err: err.message },
      'link to peer lost'
    );
    this.init.onLinkDown?.(this, err);
    this.failWaiting();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const base = this.init.backoffBaseMs ?? 100;
    const max = this.init.backoffMaxMs ?? 5000;
    const exp = Math.min(max, base * 2 ** Math.min(this.failures - 1, 16));
    // Full jitter in [exp/2, exp] so restarted peers are not hit in lockstep.
    const delay = exp / 2 + (this.init.random ?? Math.random)() * (exp / 2);
    if (!this.retryForever && this.queue.length === 0) {
      this.giveUp(delay);
      return;
    }
    this.armRetry(delay);
  }

  private armRetry(delayMs: number): void {
    this.retryTimer?.cancel();
    this.retryTimer = this.init.clock.setTimer(delayMs, () => {
      this.retryTimer = undefined;
      if (this.state !== 'backoff') return;
      // Nothing left to deliver (sent items failed, queued ones expired): stop here.
      if (!this.retryForever && this.queue.length === 0) this.giveUp(0);
      else this.connect();
    });
  }

  /** Stops retrying (state stays 'backoff'); the next submit after `delayMs` dials again. */
  private giveUp(delayMs: number): void {
    this.dormant = true;
    this.retryAt = this.init.clock.now() + delayMs;
  }

  /** Fails queued items whose callers wait for an answer; fire-and-forget ones stay. */
  private failWaiting(): void {
    const keep: SenderItem[] = [];
    let item: SenderItem | undefined;
    while ((item = this.queue.shift())) {
      this.queuedBytes -= item.bytes;
      if (waitsForAnswer(item)) {
        this.drops.add('peer_unreachable');
        item.reject(this.unreachableError());
      } else {
        keep.push(item);
      }
    }
    for (const k of keep) {
      this.queue.push(k);
      this.queuedBytes += k.bytes;
    }
  }

  private ensureSweep(): void {
    if (this.sweepTimer) return;
    this.sweepTimer = this.init.clock.setTimer(100, () => {
      this.sweepTimer = undefined;
      this.sweep();
      if (this.queue.length > 0 && this.state !== 'connected') this.ensureSweep();
    });
  }

  /** Drops queued items past their TTL (counted; the caller, if any, is told). */
  private sweep(): void {
    this.queuedBytes -= removeExpired(this.queue, this.init.clock.now(), item => {
      this.drops.add('ttl_expired');
      item.reject(
        new DeadlineExceededError(
          `message for peer ${this.expectedId || this.key} expired after waiting while the peer was ${this.state}${this.lastError ? ` (${this.lastError})` : ''}`
        )
      );
    });
  }

  private flush(): void {
    const link = this.link;
    if (!link) return;
    let item: SenderItem | undefined;
    while (this.state === 'connected' && (item = this.queue.shift())) {
      this.queuedBytes -= item.bytes;
      this.dispatch(link, item);
    }
  }

  /** One dispatched item is settled: wake idle waiters when nothing is left. */
  private settled(): void {
    this.outstanding--;
    if (this.outstanding === 0 && this.queue.length === 0) this.wakeIdle();
  }

  private dispatch(link: PeerLink, item: SenderItem): void {
    if (item.kind === 'message' && !item.wantCount) {
      // Fire-and-forget: batched on the link; accepted once queued there. Per message of
      // a stream: no clock read and no closure (it needs no remaining time).
      this.outstanding++;
      try {
        link.enqueueMessage(item.message, item.scope, item.seq);
        this.settled();
        item.resolve(0);
      } catch (err) {
        this.settled();
        item.reject(err as Error);
      }
      return;
    }
    const now = this.init.clock.now();
    const remaining = Math.max(1, Math.round(item.expiresAt - now));
    this.outstanding++;
    const done = (): void => this.settled();
    if (item.kind === 'message') {
      link.sendMessage(item.message, item.scope, item.wantCount, remaining, item.seq).then(
        n => {
          done();
          item.resolve(n);
        },
        (err: Error) => {
          done();
          item.reject(err);
        }
      );
    } else if (item.kind === 'call') {
      link.call(item.op, item.body, remaining).then(
        body => {
          done();
          item.resolve(body);
        },
        (err: Error) => {
          done();
          item.reject(err);
        }
      );
    } else if (item.kind === 'respond') {
      link.respond(item.token, item.message, item.responderPeer, remaining).then(
        () => {
          done();
          item.resolve();
        },
        (err: Error) => {
          done();
          item.reject(err);
        }
      );
    } else {
      link.request(item.message, remaining, item.signal).then(
        r => {
          done();
          item.resolve(r);
        },
        (err: Error) => {
          done();
          item.reject(err);
        }
      );
    }
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves when nothing is queued or outstanding, or after `timeoutMs` (false). */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.depth === 0 || this.state !== 'connected') return Promise.resolve(this.depth === 0);
    return new Promise(resolve => {
      const timer = this.init.clock.setTimer(timeoutMs, () => resolve(false));
      this.idleWaiters.push(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  /**
   * Stops: queued work fails (counted as `dropReason`), a dial in progress is aborted, the
   * link closes gracefully. Idempotent.
   */
  close(reason = 'node shutting down', dropReason: SenderDropReason = 'shutdown'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.dormant = false;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.dialAbort?.abort();
    this.dialAbort = undefined;
    this.pendingLink?.close();
    this.pendingLink = undefined;
    let item: SenderItem | undefined;
    while ((item = this.queue.shift())) {
      this.drops.add(dropReason);
      item.reject(
        new UnavailableError(`message for peer ${this.expectedId || this.key} not sent: ${reason}`)
      );
    }
    this.queuedBytes = 0;
    this.link?.close();
    this.link = undefined;
  }
}
