/**
 * Pub/sub load: publishers send over SendStream in batches with a bounded number of
 * unacknowledged requests and a credit window fed by what the subscribers received (so a
 * publisher cannot bury a subscriber); subscribers count deliveries and measure latency
 * from the send time the publisher wrote in the first 8 bytes of the payload.
 *
 * Pure of printing: the CLI (bench.ts) reads the counters for its progress line and summary.
 */
import type { Clock } from '../../common';
import { LatencyHistogram } from './histogram';
import { subscribed } from './messenger';
import type { LoadLimits, LoadMessage, MessengerApi, StopSignal } from './messenger';

/** Payload bytes that carry the send time (a float64 of clock.now()). */
export const STAMP_BYTES = 8;

export interface PubSubParams extends LoadLimits {
  subject: string;
  size: number;
  /** Messages per SendStream request. */
  batch: number;
  /** Unacknowledged SendStream requests per publisher. */
  inFlight: number;
  /** Messages sent beyond what subscribers received (ignored without subscribers). */
  window: number;
  queueGroup?: string;
  maxBatch: number;
}

export class SubscriberStats {
  received = 0;
  dropped = 0;
  bytes = 0;
  readonly latency = new LatencyHistogram();
  firstAt = 0;
  lastAt = 0;
}

export class PublisherStats {
  sent = 0;
  acked = 0;
  bytes = 0;
  failures = 0;
  firstAt = 0;
  lastAt = 0;
}

/** Subscribes one subscriber; resolves once the subscription is live, with its cancel. */
export async function startSubscriber(
  api: MessengerApi,
  p: PubSubParams,
  stats: SubscriberStats,
  clock: Clock
): Promise<() => void> {
  const call = api.Subscribe({
    topics: [p.subject],
    queueGroup: p.queueGroup ?? '',
    maxBatch: p.maxBatch,
    bufferSize: Math.max(1024, p.window),
  });
  call.on('data', (b: { deliveries: { message: { payload: Buffer } }[]; dropped: unknown }) => {
    const now = clock.now();
    stats.dropped += Number(b.dropped ?? 0);
    for (const d of b.deliveries) {
      const payload = d.message.payload;
      if (stats.received === 0) stats.firstAt = now;
      stats.received++;
      stats.bytes += payload.length;
      stats.lastAt = now;
      if (payload.length >= STAMP_BYTES) stats.latency.record(now - payload.readDoubleLE(0));
    }
  });
  call.on('error', () => undefined); // our own cancel at the end
  await subscribed(call);
  return () => call.cancel();
}

/**
 * How many messages all publishers together may have sent: without subscribers,
 * unlimited; with a queue group, the group's total received plus the window; otherwise
 * the slowest subscriber's count plus the window.
 */
export function creditLimit(subs: SubscriberStats[], queueGroup: boolean, window: number): number {
  if (subs.length === 0) return Infinity;
  const received = queueGroup
    ? subs.reduce((s, x) => s + x.received + x.dropped, 0)
    : Math.min(...subs.map(x => x.received + x.dropped));
  return received + window;
}

/**
 * One publisher: sends until `shared.sent` reaches the limit or time is up or stop, then
 * waits (at most 5 s) for its acks. `shared` counts messages of all publishers.
 */
export async function runPublisher(
  api: MessengerApi,
  p: PubSubParams,
  stats: PublisherStats,
  shared: { sent: number; credit: () => number },
  stop: StopSignal,
  clock: Clock
): Promise<void> {
  const stream = api.SendStream();
  let seq = 0;
  let failure: Error | undefined;
  stream.on('data', r => {
    stats.acked++;
    if (r.errorCode !== 0) {
      stats.failures++;
      failure ??= new Error(`SendStream: code ${r.errorCode}: ${r.errorMessage}`);
    }
  });
  stream.on('error', (e: Error) => (failure ??= e));
  stream.on('end', () => (failure ??= new Error('SendStream ended')));
  const end = clock.now() + p.maxMs;
  try {
    stats.firstAt = clock.now();
    while (!stop.stopped && !failure && shared.sent < p.maxMessages && clock.now() < end) {
      const n = Math.min(p.batch, p.maxMessages - shared.sent);
      if (seq - stats.acked >= p.inFlight || shared.sent + n > shared.credit()) {
        await stop.sleep(1);
        continue;
      }
      shared.sent += n;
      const now = clock.now();
      const messages: LoadMessage[] = [];
      for (let i = 0; i < n; i++) {
        const payload = Buffer.alloc(p.size, 7);
        if (p.size >= STAMP_BYTES) payload.writeDoubleLE(now, 0);
        messages.push({ topic: p.subject, payload });
      }
      stream.write({ sequence: ++seq, messages });
      stats.sent += n;
      stats.bytes += n * p.size;
      stats.lastAt = now;
    }
    const drainEnd = clock.now() + 5_000;
    while (stats.acked < seq && !failure && clock.now() < drainEnd) await stop.sleep(5);
    if (failure) throw failure;
  } finally {
    stream.end();
  }
}
