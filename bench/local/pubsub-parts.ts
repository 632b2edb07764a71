/**
 * Pieces every publisher/subscriber worker shares, whatever the system: counting what a
 * subscriber receives (and telling the parent, which passes it to the publisher as
 * flow-control credit), and the publisher's stop flag and credit.
 */
import { emitEvent } from '../common/proc';
import { Credit, measureRate } from '../common/load';

/** How often a subscriber reports its total to the parent (for the publisher's credit). */
const PROGRESS_EVERY_MS = 10;

/** Counts deliveries of the expected size and reports the running total. */
export class SubscriberCounter {
  received = 0;
  dropped = 0;
  bad = 0;
  private _timer: NodeJS.Timeout | undefined;
  private _lastReported = -1;

  constructor(readonly size: number) {}

  start(): void {
    this._timer = setInterval(() => {
      const total = this.received + this.dropped;
      if (total !== this._lastReported) {
        this._lastReported = total;
        emitEvent('progress', total);
      }
    }, PROGRESS_EVERY_MS);
  }

  onMessage(len: number): void {
    if (len === this.size) this.received++;
    else this.bad++;
  }

  measure(warmupMs: number, durationMs: number) {
    return measureRate(() => this.received, warmupMs, durationMs).then(r => ({
      ...r,
      received: this.received,
      dropped: this.dropped,
    }));
  }

  /** Waits (bounded) until the total stops growing for 200 ms or reaches `expected`. */
  async settle(expected: number, maxMs = 3_000): Promise<void> {
    const end = Date.now() + maxMs;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < end) {
      const total = this.received + this.dropped;
      if (total >= expected) return;
      if (total !== last) {
        last = total;
        stableSince = Date.now();
      } else if (Date.now() - stableSince > 200) {
        return;
      }
      await new Promise(r => setTimeout(r, 20));
    }
  }

  stop(): void {
    if (this._timer) clearInterval(this._timer);
    this._timer = undefined;
  }
}

/** The publisher side: credit from the subscriber's totals and a stop flag. */
export class PublisherControl {
  readonly credit: Credit;
  stopped = false;
  sent = 0;

  constructor(window: number) {
    this.credit = new Credit(window);
  }

  /** Waits until `need` more messages fit in the credit window (true), or the run is stopped (false). */
  async room(need: number): Promise<boolean> {
    while (!this.stopped && this.credit.room(this.sent) < need) {
      await this.credit.wait(this.sent, need);
    }
    return !this.stopped;
  }
}

/** Where a meshwire message goes (the proto's `Target`); unset: by interest / locally. */
export interface Target {
  peerId?: string;
  address?: string;
}

export interface PublishParams {
  subject: string;
  size: number;
  /** Upper bound of the run; the parent normally stops it earlier. */
  maxMs: number;
  maxMessages: number;
  /** Messages the publisher may run ahead of the subscriber. */
  window: number;
  /** Messages per batch (per SendStream request, or between NATS flushes). */
  batch: number;
  /** Batches in flight (unacked SendStream requests, or outstanding NATS flushes). */
  inFlight: number;
  /** meshwire only: the target node of every SendStream request (cluster benchmark). */
  target?: Target;
}

export interface SubscribeParams {
  subject: string;
  size: number;
  maxBatch: number;
  /** Deliveries the node may buffer for this subscriber (meshwire; 0 = node default). */
  bufferSize: number;
}
