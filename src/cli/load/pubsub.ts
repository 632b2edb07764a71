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

/** What a publisher needs of PubSubParams (bench/local's PublishParams has it too). */
export type PublishLoad = Pick<
  PubSubParams,
  'subject' | 'size' | 'batch' | 'inFlight' | 'maxMessages' | 'maxMs'
>;

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
 * Where a publisher asks before each batch: `sent` counts the messages of every publisher
 * sharing the gate, `room(n)` resolves true once n more may be sent, false when the gate
 * gave up (the run is stopping or its time is up): then the publisher sends nothing more.
 * bench/local's PublisherControl is one, fed by its subscriber processes.
 */
export interface PublishGate {
  sent: number;
  room(need: number): Promise<boolean>;
}

/** The gate of `meshwire bench pub`: credit from the subscribers of this process. */
export class CreditGate implements PublishGate {
  sent = 0;

  constructor(
    private readonly subs: SubscriberStats[],
    private readonly queueGroup: boolean,
    private readonly window: number,
    private readonly stop: StopSignal,
    private readonly clock: Clock,
    /** clock.now() after which room() no longer waits (the run's end). */
    private readonly deadline: number
  ) {}

  async room(need: number): Promise<boolean> {
    const fits = (): boolean =>
      this.sent + need <= creditLimit(this.subs, this.queueGroup, this.window);
    while (!this.stop.stopped && this.clock.now() < this.deadline && !fits())
      await this.stop.sleep(1);
    // Given up at the deadline without credit: no batch past the window.
    return !this.stop.stopped && fits();
  }
}

/** Options of one publisher beyond PubSubParams. */
export interface PublisherOptions {
  /** Write the send time in each payload (off: one constant payload, as bench/local sends). */
  stamp: boolean;
  /** The proto's Target of every SendStream request; unset: by interest. */
  target?: { peerId?: string; address?: string };
}

/**
 * One publisher: SendStream requests of `batch` messages, at most `inFlight` unacked,
 * until the gate's count reaches maxMessages, time is up or stop; then waits (at most
 * 5 s) for its acks. Throws the first failed ack or stream error.
 */
export async function runPublisher(
  api: MessengerApi,
  p: PublishLoad,
  stats: PublisherStats,
  gate: PublishGate,
  stop: StopSignal,
  clock: Clock,
  options: PublisherOptions = { stamp: true }
): Promise<void> {
  const stream = api.SendStream();
  let seq = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** Until an ack, a failure or `ms`, whichever is first. */
  const waitAck = (ms: number): Promise<void> =>
    new Promise(resolve => {
      const t = setTimeout(poke, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  stream.on('data', r => {
    stats.acked++;
    if (r.errorCode !== 0) {
      stats.failures++;
      failure ??= new Error(`SendStream: code ${r.errorCode}: ${r.errorMessage}`);
    }
    poke();
  });
  const fail = (e: Error): void => {
    failure ??= e;
    poke();
  };
  stream.on('error', fail);
  stream.on('end', () => fail(new Error('SendStream ended')));
  const constant = Buffer.alloc(p.size, 7);
  const constantBatch: LoadMessage[] = Array.from({ length: p.batch }, () => ({
    topic: p.subject,
    payload: constant,
  }));
  const end = clock.now() + p.maxMs;
  try {
    stats.firstAt = clock.now();
    while (!stop.stopped && !failure && gate.sent < p.maxMessages && clock.now() < end) {
      if (!(await gate.room(Math.min(p.batch, p.maxMessages - gate.sent)))) break;
      while (seq - stats.acked >= p.inFlight && !failure && !stop.stopped && clock.now() < end)
        await waitAck(200);
      // Counted after the waits: other publishers on the gate may have sent meanwhile.
      const n = Math.min(p.batch, p.maxMessages - gate.sent);
      if (stop.stopped || failure || n <= 0 || clock.now() >= end) break;
      gate.sent += n;
      const now = clock.now();
      let messages = constantBatch;
      if (options.stamp || n < p.batch) {
        // One payload per batch: its messages leave together, so they share the send time.
        const payload = options.stamp ? Buffer.alloc(p.size, 7) : constant;
        if (options.stamp && p.size >= STAMP_BYTES) payload.writeDoubleLE(now, 0);
        messages = Array.from({ length: n }, () => ({ topic: p.subject, payload }));
      }
      stream.write({ sequence: ++seq, messages, target: options.target });
      stats.sent += n;
      stats.bytes += n * p.size;
      stats.lastAt = now;
    }
    const drainEnd = clock.now() + 5_000;
    while (stats.acked < seq && !failure && clock.now() < drainEnd) await waitAck(100);
    if (failure) throw failure;
  } finally {
    stream.end();
  }
}
