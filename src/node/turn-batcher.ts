/**
 * Gathers the calls made to one node during one run of JavaScript into one call, sent at
 * the end of the turn (a microtask: the flush policy's "end of turn", src/common/flush-policy.ts),
 * or at once when `maxItems` are waiting. The idempotency service batches its completions
 * and its copies to replicas with it: the claim answers of one receive batch finish their
 * Sends in the same turn, and one envelope then carries all their completions.
 *
 * Bounded: a batch holds `maxItems` at most, and every item has a caller waiting for it.
 */
export interface TurnBatcherInit<T, R> {
  maxItems: number;
  /**
   * Sends one batch to `dest`; resolves with one result per item, in order. A rejection
   * fails every item of the batch.
   */
  send(dest: string, items: T[]): Promise<R[]>;
}

interface Waiting<R> {
  resolve(r: R): void;
  reject(err: Error): void;
}

interface Batch<T, R> {
  items: T[];
  waiting: Array<Waiting<R>>;
}

export class TurnBatcher<T, R> {
  private readonly init: TurnBatcherInit<T, R>;
  private readonly open = new Map<string, Batch<T, R>>();
  private flushQueued = false;

  constructor(init: TurnBatcherInit<T, R>) {
    this.init = init;
  }

  /** Adds `item` to the batch for `dest`; resolves with its result. */
  add(dest: string, item: T): Promise<R> {
    let batch = this.open.get(dest);
    if (!batch) {
      batch = { items: [], waiting: [] };
      this.open.set(dest, batch);
    }
    const b = batch;
    const done = new Promise<R>((resolve, reject) => b.waiting.push({ resolve, reject }));
    b.items.push(item);
    if (b.items.length >= this.init.maxItems) {
      this.open.delete(dest);
      this.sendBatch(dest, b);
    } else if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
    return done;
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    for (const [dest, batch] of this.open) this.sendBatch(dest, batch);
    this.open.clear();
  };

  private sendBatch(dest: string, batch: Batch<T, R>): void {
    let sent: Promise<R[]>;
    try {
      sent = this.init.send(dest, batch.items);
    } catch (err) {
      sent = Promise.reject(err as Error);
    }
    sent.then(
      results => {
        for (let i = 0; i < batch.waiting.length; i++) batch.waiting[i].resolve(results[i]);
      },
      (err: Error) => {
        for (const w of batch.waiting) w.reject(err);
      }
    );
  }
}
