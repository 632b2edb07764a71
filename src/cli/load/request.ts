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
  /** The node to ask (a peer id or address); unset: any node with a responder. */
  target?: { peerId?: string; address?: string };
  /** Responders echo the payload: a reply of another size counts as failed. */
  expectEcho?: boolean;
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
 * flight; then waits for the ones in flight (bounded by the request timeout). Each reply
 * sends the next request at once (no polling), so the loop measures the node, not a timer.
 */
export function runRequester(
  api: MessengerApi,
  p: RequestParams,
  stats: RequesterStats,
  stop: StopSignal,
  clock: Clock
): Promise<void> {
  const stream = api.RequestStream();
  const pending = new Map<string, number>();
  const payload = Buffer.alloc(p.size, 7);
  const message = { topic: p.subject, payload };
  const sendEnd = clock.now() + p.maxMs;
  let next = 0;
  let sending = true;
  return new Promise<void>((resolve, reject) => {
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    let offStop = (): void => undefined;
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearTimeout(sendTimer);
      clearTimeout(drainTimer);
      offStop();
      stream.end();
      if (err) reject(err);
      else resolve();
    };
    const stopSending = (): void => {
      if (!sending) return;
      sending = false;
      if (pending.size === 0) return finish();
      drainTimer = setTimeout(() => finish(), p.timeoutMs + 1_000);
    };
    const pump = (): void => {
      while (sending && pending.size < p.concurrency) {
        if (stop.stopped || stats.sent >= p.maxMessages || clock.now() >= sendEnd) {
          stopSending();
          return;
        }
        const requestId = String(next++);
        pending.set(requestId, clock.now());
        stream.write({ requestId, message, timeoutMs: p.timeoutMs, target: p.target });
        stats.sent++;
      }
    };
    stream.on('data', r => {
      const startedAt = pending.get(r.requestId);
      if (startedAt === undefined) return;
      pending.delete(r.requestId);
      const size = r.reply?.payload.length ?? 0;
      if (r.errorCode !== 0) {
        stats.failed++;
        stats.firstError ||= `code ${r.errorCode}: ${r.errorMessage}`;
      } else if (p.expectEcho && size !== p.size) {
        stats.failed++;
        stats.firstError ||= `a reply of ${size} bytes to a request of ${p.size} bytes`;
      } else {
        stats.answered++;
        stats.bytes += size;
        stats.latency.record(clock.now() - startedAt);
      }
      if (sending) pump();
      else if (pending.size === 0) finish();
    });
    stream.on('error', (e: Error) => finish(e));
    stream.on('end', () => finish(new Error('RequestStream ended')));
    // The time limit and Ctrl-C must end a loop whose requests are all still in flight.
    const sendTimer = setTimeout(stopSending, Math.max(0, sendEnd - clock.now()));
    offStop = stop.onStop(stopSending);
    pump();
  });
}
