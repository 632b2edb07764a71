/**
 * Request/reply load: responders answer every request with its own payload over one
 * RespondStream each (in a queue group, so each request is answered once); a requester
 * keeps `concurrency` requests in flight over one RequestStream, matching replies by
 * request_id and recording each round trip's latency.
 */
import type { Clock } from '../../common';
import { LatencyHistogram } from './histogram';
import { subscribed } from './messenger';
import type { LoadLimits, MessengerApi, StopSignal } from './messenger';

/** The queue group the tool's responders share. */
export const RESPONDER_GROUP = 'meshwire-bench-responders';

export interface RequestParams extends LoadLimits {
  subject: string;
  size: number;
  concurrency: number;
  timeoutMs: number;
}

export class ResponderStats {
  answered = 0;
}

export class RequesterStats {
  sent = 0;
  answered = 0;
  failed = 0;
  bytes = 0;
  readonly latency = new LatencyHistogram();
  firstError = '';
}

/** Starts a responder; resolves once its subscription is live, with its stop. */
export async function startResponder(
  api: MessengerApi,
  subject: string,
  stats: ResponderStats
): Promise<() => void> {
  const sub = api.Subscribe({ topics: [subject], queueGroup: RESPONDER_GROUP, maxBatch: 64 });
  const rs = api.RespondStream(() => undefined);
  rs.on('error', () => undefined); // ends with the node or our cancel
  sub.on('data', (b: { deliveries: { replyTo: string; message: { payload: Buffer } }[] }) => {
    for (const d of b.deliveries) {
      rs.write({ replyTo: d.replyTo, message: { topic: '', payload: d.message.payload } });
      stats.answered++;
    }
  });
  sub.on('error', () => undefined);
  await subscribed(sub);
  return () => {
    sub.cancel();
    rs.end();
  };
}

/**
 * Sends requests until the count or time is reached or stop, at most `concurrency` in
 * flight; then waits for the ones in flight (bounded by the request timeout).
 */
export async function runRequester(
  api: MessengerApi,
  p: RequestParams,
  stats: RequesterStats,
  stop: StopSignal,
  clock: Clock
): Promise<void> {
  const stream = api.RequestStream();
  const pending = new Map<string, number>();
  let broken: Error | undefined;
  stream.on('data', r => {
    const startedAt = pending.get(r.requestId);
    if (startedAt === undefined) return;
    pending.delete(r.requestId);
    if (r.errorCode !== 0) {
      stats.failed++;
      stats.firstError ||= `code ${r.errorCode}: ${r.errorMessage}`;
    } else {
      stats.answered++;
      stats.bytes += r.reply?.payload.length ?? 0;
      stats.latency.record(clock.now() - startedAt);
    }
  });
  stream.on('error', (e: Error) => (broken ??= e));
  stream.on('end', () => (broken ??= new Error('RequestStream ended')));
  const payload = Buffer.alloc(p.size, 7);
  const end = clock.now() + p.maxMs;
  let next = 0;
  try {
    while (!stop.stopped && !broken && stats.sent < p.maxMessages && clock.now() < end) {
      if (pending.size >= p.concurrency) {
        await stop.sleep(1);
        continue;
      }
      const requestId = String(next++);
      pending.set(requestId, clock.now());
      stream.write({ requestId, message: { topic: p.subject, payload }, timeoutMs: p.timeoutMs });
      stats.sent++;
    }
    const drainEnd = clock.now() + p.timeoutMs + 1_000;
    while (pending.size > 0 && !broken && clock.now() < drainEnd) await stop.sleep(5);
    if (broken) throw broken;
  } finally {
    stream.end();
  }
}
