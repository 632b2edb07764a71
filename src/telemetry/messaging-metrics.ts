/**
 * The per-node figures of the message path: plain integer counters bumped on the hot
 * path (an increment, nothing else), open streams by method, and the request latency
 * histogram. They become OpenTelemetry instruments in attach(meter), read at scrape
 * time, so a node without /metrics pays only the increments.
 */
import type { Histogram, Meter } from '@opentelemetry/api';
import { TransportMetrics } from './transport-metrics';

/** Request latency buckets, seconds (OTel advice for a message round trip on a LAN). */
export const REQUEST_DURATION_BUCKETS_S = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export type RequestOutcome = 'ok' | 'error';

/** Events after which a server stream is over. */
export const STREAM_END_EVENTS = ['finish', 'cancelled', 'close'] as const;

const OK_ATTRS = Object.freeze({ outcome: 'ok' });
const ERROR_ATTRS = Object.freeze({ outcome: 'error' });

/** One node's messaging telemetry: counters, streams, request latency and transport. */
export class MessagingTelemetry {
  /** Messages accepted from local clients (Send, SendStream). */
  sentMessages = 0;
  /** Requests accepted from local clients (Request, RequestStream). */
  sentRequests = 0;
  /** Replies accepted from local responders (Respond, RespondStream). */
  sentReplies = 0;
  /** Messages routed to this node's subscribers that came from this node's clients. */
  receivedLocal = 0;
  /** Messages routed to this node's subscribers that came from peers. */
  receivedFromPeers = 0;
  /** Per-peer connections and queue depths (registered by the cluster layer). */
  readonly transport = new TransportMetrics();
  private readonly streams = new Map<string, number>();
  private histogram: Histogram | undefined;

  /**
   * Counts an open gRPC stream of `method` until the returned function is called
   * (idempotent, so it can be wired to every end event of the call).
   */
  openStream(method: string): () => void {
    this.streams.set(method, (this.streams.get(method) ?? 0) + 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.streams.set(method, (this.streams.get(method) ?? 1) - 1);
    };
  }

  /**
   * Counts a gRPC server stream as open until one of `endEvents` fires on it. Server
   * streams emit 'finish' after end() (also after an error) and 'cancelled' when the
   * client goes away; a client-streaming call ends its reading side with 'end'.
   */
  trackStream(
    call: { once(event: string, fn: () => void): unknown },
    method: string,
    endEvents: readonly string[] = STREAM_END_EVENTS
  ): void {
    const close = this.openStream(method);
    for (const e of endEvents) call.once(e, close);
  }

  /** Open streams by method (tests, metrics). */
  openStreams(): Record<string, number> {
    return Object.fromEntries(this.streams);
  }

  /** Records one request's latency (from the node accepting it to its outcome). */
  recordRequest(seconds: number, outcome: RequestOutcome): void {
    this.histogram?.record(seconds, outcome === 'ok' ? OK_ATTRS : ERROR_ATTRS);
  }

  /**
   * Records the latency of a request promise when it settles (nothing when /metrics is
   * off) and returns the same promise.
   */
  timeRequest<T>(p: Promise<T>, now: () => number): Promise<T> {
    const histogram = this.histogram;
    if (!histogram) return p;
    const startedMs = now();
    p.then(
      () => histogram.record((now() - startedMs) / 1000, OK_ATTRS),
      () => histogram.record((now() - startedMs) / 1000, ERROR_ATTRS)
    );
    return p;
  }

  /** Creates the instruments on `meter` (once per node; /metrics reads them). */
  attach(meter: Meter): void {
    this.histogram = meter.createHistogram('meshwire.request.duration', {
      description: 'Time from a Request being accepted to its reply, timeout or error',
      unit: 's',
      advice: { explicitBucketBoundaries: REQUEST_DURATION_BUCKETS_S },
    });
    const sent = meter.createObservableCounter('meshwire.messages.sent', {
      description: 'Messages accepted from this node’s clients, by kind (message, request, reply)',
      unit: '{message}',
    });
    const received = meter.createObservableCounter('meshwire.messages.received', {
      description: 'Messages routed to this node’s subscribers, by source (local, peer)',
      unit: '{message}',
    });
    const streams = meter.createObservableGauge('meshwire.grpc.streams.active', {
      description: 'Open gRPC streams, by method',
      unit: '{stream}',
    });
    meter.addBatchObservableCallback(
      obs => {
        obs.observe(sent, this.sentMessages, { kind: 'message' });
        obs.observe(sent, this.sentRequests, { kind: 'request' });
        obs.observe(sent, this.sentReplies, { kind: 'reply' });
        obs.observe(received, this.receivedLocal, { source: 'local' });
        obs.observe(received, this.receivedFromPeers, { source: 'peer' });
        for (const [method, n] of this.streams) obs.observe(streams, n, { 'rpc.method': method });
      },
      [sent, received, streams]
    );
    this.transport.attach(meter);
  }
}
