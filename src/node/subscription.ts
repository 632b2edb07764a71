/**
 * One subscription: its patterns, optional queue group and a bounded buffer of
 * deliveries drained by the API layer at the pace the client's gRPC stream allows.
 * When the buffer is full the subscription's slow-consumer policy decides.
 */
import type { DropLedger, Message } from '../common';
import { BoundedRing, DropCounter, SlowConsumerError } from '../common';

export type SlowConsumerPolicy = 'DROP_OLDEST' | 'DROP_NEWEST' | 'CLOSE';

/** A message handed to a subscriber. */
export interface Delivery {
  message: Message;
  /** Node id the message came from. */
  sourcePeer: string;
  /** Reply token when the message is a request, else ''. */
  replyTo: string;
}

export interface SubscriptionInit {
  patterns: string[];
  /** @default '' (no queue group) */
  queueGroup?: string;
  /** @default 1 */
  maxBatch?: number;
  /** @default 'DROP_OLDEST' */
  policy?: SlowConsumerPolicy;
  /** Deliveries buffered before the policy applies. */
  bufferSize: number;
  /** The node's drop ledger (totals outlive the subscription). @default none */
  drops?: DropLedger;
}

export type SubscriptionDropReason = 'slow_consumer_drop_oldest' | 'slow_consumer_drop_newest';

export class Subscription {
  readonly id: string;
  /**
   * Settles once every peer connected when the subscription opened knows its patterns
   * (or did not answer within 2 s): from then on, messages sent on any of those nodes
   * reach it. Set by MeshNode.subscribe; already settled without a cluster.
   */
  ready: Promise<void> = Promise.resolve();
  readonly patterns: readonly string[];
  readonly queueGroup: string;
  readonly maxBatch: number;
  readonly policy: SlowConsumerPolicy;
  /** This subscription's drops (also recorded in the node's ledger). */
  readonly drops: DropCounter<SubscriptionDropReason>;
  /** Deliveries handed to this subscription in total. */
  delivered = 0;
  private readonly buffer: BoundedRing<Delivery>;
  private droppedSinceTake = 0;
  private closedWith: Error | null | undefined = undefined;
  private readableListener: (() => void) | undefined;
  private readonly closeListeners: Array<(err: Error | null) => void> = [];
  private notifyScheduled = false;

  constructor(id: string, init: SubscriptionInit) {
    this.id = id;
    this.patterns = init.patterns;
    this.queueGroup = init.queueGroup ?? '';
    this.maxBatch = init.maxBatch ?? 1;
    this.drops = new DropCounter('subscription', init.drops);
    this.policy = init.policy ?? 'DROP_OLDEST';
    this.buffer = new BoundedRing<Delivery>(init.bufferSize);
  }

  /** True once closed (unsubscribed, slow consumer, node shutdown). */
  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** True when the buffer has room (queue groups prefer such members). */
  get hasRoom(): boolean {
    return !this.buffer.full;
  }

  /** Human-readable name for errors and logs. */
  describe(): string {
    const group = this.queueGroup ? ` queue_group "${this.queueGroup}"` : '';
    return `subscription ${this.id} (${this.patterns.join(', ')}${group})`;
  }

  /**
   * Offers a delivery. Returns true when it was buffered (the subscriber will see it),
   * false when it was dropped or the subscription is closed.
   */
  offer(d: Delivery): boolean {
    if (this.closedWith !== undefined) return false;
    if (!this.buffer.push(d)) {
      switch (this.policy) {
        case 'DROP_NEWEST':
          this.drops.add('slow_consumer_drop_newest');
          this.droppedSinceTake++;
          return false;
        case 'DROP_OLDEST':
          this.buffer.shift();
          this.drops.add('slow_consumer_drop_oldest');
          this.droppedSinceTake++;
          this.buffer.push(d);
          break;
        case 'CLOSE':
          this.close(
            new SlowConsumerError(
              `${this.describe()} fell behind: ${this.buffer.length} deliveries buffered and the client is not reading; slow_consumer_policy CLOSE ended it (read faster, raise buffer_size or use DROP_OLDEST)`
            )
          );
          return false;
      }
    }
    this.delivered++;
    this.scheduleNotify();
    return true;
  }

  /**
   * Takes up to `maxBatch` deliveries (and the count dropped since the last take).
   * Returns undefined when nothing is buffered.
   */
  take(): { deliveries: Delivery[]; dropped: number } | undefined {
    if (this.buffer.length === 0) return undefined;
    const n = Math.min(this.maxBatch, this.buffer.length);
    const deliveries = new Array<Delivery>(n);
    for (let i = 0; i < n; i++) deliveries[i] = this.buffer.shift() as Delivery;
    const dropped = this.droppedSinceTake;
    this.droppedSinceTake = 0;
    return { deliveries, dropped };
  }

  /** Called (once per burst, asynchronously) when deliveries are waiting. */
  onReadable(fn: () => void): void {
    this.readableListener = fn;
    if (this.buffer.length > 0) this.scheduleNotify();
  }

  /** Adds a listener called once when the subscription closes; `err` is null for a clean close. */
  onClose(fn: (err: Error | null) => void): void {
    if (this.closedWith !== undefined) fn(this.closedWith);
    else this.closeListeners.push(fn);
  }

  /** Closes the subscription; buffered deliveries are discarded. Idempotent. */
  close(err: Error | null = null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = err;
    this.buffer.clear();
    const listeners = this.closeListeners.splice(0);
    for (const fn of listeners) fn(err);
  }

  private scheduleNotify(): void {
    if (this.notifyScheduled || !this.readableListener) return;
    this.notifyScheduled = true;
    // One notification per burst of offers (a microtask runs after the synchronous loop
    // that offered them): the reader takes batches of up to maxBatch, without waiting
    // for the next event-loop turn.
    queueMicrotask(() => {
      this.notifyScheduled = false;
      if (this.closedWith === undefined && this.buffer.length > 0) this.readableListener?.();
    });
  }
}
