/**
 * Work for directory peers with no address yet (a DNS name not resolved): one bounded
 * queue per peer (messages and bytes), swept for items past their TTL, handed over in
 * order once the peer resolves.
 */
import type { Clock, Timer } from '../common';
import { BoundedRing, DeadlineExceededError, ResourceExhaustedError } from '../common';
import type { SenderItem } from './sender-item';
import { removeExpired } from './sender-item';

export interface UnresolvedQueuesInit {
  clock: Clock;
  /** Messages waiting per unresolved peer at most. @default 1000 */
  capacity?: number;
  /** Bytes waiting per unresolved peer at most. @default 16 MiB */
  bytes?: number;
  /** Counts refusals (queue full) and expiries (the cluster's counter). */
  drops: { add(reason: 'unresolved_queue_full' | 'unresolved_ttl_expired'): void };
}

interface Unresolved {
  items: BoundedRing<SenderItem>;
  bytes: number;
  timer: Timer | undefined;
}

/** How often queued items are checked against their TTL. */
const SWEEP_INTERVAL_MS = 100;

export class UnresolvedQueues {
  private readonly init: UnresolvedQueuesInit;
  private readonly queues = new Map<string, Unresolved>();

  constructor(init: UnresolvedQueuesInit) {
    this.init = init;
  }

  /** Items waiting for `peerId`. */
  depth(peerId: string): number {
    return this.queues.get(peerId)?.items.length ?? 0;
  }

  /** Queues `item` for `peerId`; RESOURCE_EXHAUSTED (counted) when its queue is full. */
  enqueue(peerId: string, item: SenderItem): void {
    let q = this.queues.get(peerId);
    if (!q) {
      q = {
        items: new BoundedRing<SenderItem>(this.init.capacity ?? 1000),
        bytes: 0,
        timer: undefined,
      };
      this.queues.set(peerId, q);
    }
    const limit = this.init.bytes ?? 16 * 1024 * 1024;
    if (q.items.full || q.bytes + item.bytes > limit) {
      this.init.drops.add('unresolved_queue_full');
      throw new ResourceExhaustedError(
        `queue for unresolved peer "${peerId}" is full (${q.items.length} messages, ${q.bytes} bytes)`
      );
    }
    q.items.push(item);
    q.bytes += item.bytes;
    this.scheduleSweep(peerId, q);
  }

  /** Removes `peerId`'s queue and returns its items in order (the peer resolved). */
  take(peerId: string): SenderItem[] {
    const q = this.queues.get(peerId);
    if (!q) return [];
    this.queues.delete(peerId);
    q.timer?.cancel();
    const out: SenderItem[] = [];
    let item: SenderItem | undefined;
    while ((item = q.items.shift())) out.push(item);
    return out;
  }

  /** Fails every item waiting for `peerId` with `err`. */
  fail(peerId: string, err: Error): void {
    for (const item of this.take(peerId)) item.reject(err);
  }

  /** Fails every queue's items with `err` (shutdown). */
  failAll(err: Error): void {
    for (const id of [...this.queues.keys()]) this.fail(id, err);
  }

  private scheduleSweep(peerId: string, q: Unresolved): void {
    if (q.timer) return;
    q.timer = this.init.clock.setTimer(SWEEP_INTERVAL_MS, () => {
      q.timer = undefined;
      q.bytes -= removeExpired(q.items, this.init.clock.now(), item => {
        this.init.drops.add('unresolved_ttl_expired');
        item.reject(
          new DeadlineExceededError(
            `peer "${peerId}" was not resolved in time: the message waited in the unresolved queue until its deadline`
          )
        );
      });
      if (q.items.length > 0) this.scheduleSweep(peerId, q);
      else if (this.queues.get(peerId) === q) this.queues.delete(peerId);
    });
  }
}
