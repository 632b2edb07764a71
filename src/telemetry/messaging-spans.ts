/**
 * Message spans per the OpenTelemetry messaging semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/messaging/messaging-spans/):
 *
 *   gRPC server span (Send/Request)           src/api/grpc-server-spans.ts, parent = client's traceparent
 *     └─ send <topic>      PRODUCER  one per message; its context is injected into the
 *        │                           message headers (W3C traceparent/tracestate/baggage).
 *        │                           A unary Send/Request's one message has none: the
 *        │                           call's server span is its producer span (same work,
 *        │                           same node, same duration; offerServerSpan)
 *        └─ receive <topic> CONSUMER  on the node that routes a Send's message to its
 *           │                         subscribers (this node or a peer, parent read from
 *           │                         the headers); none for a Request (one responder:
 *           │                         its process span is the consumer span)
 *           └─ process <topic> CONSUMER  one per delivery written to a Subscribe stream;
 *              │                          the delivered headers carry ITS context
 *              └─ respond    PRODUCER  a Respond whose message carries those headers
 *
 * A Request across nodes is then three spans: the Request server span on node A (the
 * producer), `process` and `respond` on node B.
 *
 * Every function here starts with one boolean check: with tracing off (no OTEL_*), the
 * message path pays a function call and nothing else, and headers are left untouched.
 *
 * Unsampled traces: the sampling decision is made once, by the sampler, for the trace's
 * first span (usually the gRPC server span) and travels in the traceparent flags. Every
 * sampler the SDK configures from OTEL_TRACES_SAMPLER keeps that decision for the spans
 * below (parentbased_* follow the parent, traceidratio decides by trace id, always_* are
 * constant), so a parent with the sampled flag unset means no span here would be
 * recorded: the functions below then create no span, attribute map or context, and only
 * carry the parent's traceparent (one string) in the message headers, so the next node
 * keeps the decision instead of starting a trace of its own.
 *
 * Writing and reading the trace context in message headers: message-trace-context.ts.
 */
import type { Attributes, Context, Link, Span, Tracer } from '@opentelemetry/api';
import { context, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import {
  extractContext,
  injectChild,
  propagateUnsampled,
  injectSpan,
  sameSpan,
  sampledTraceContext,
  setTraceContextPropagation,
  traceparentFlags,
  unsampledSpanContext,
} from './message-trace-context';

/** What the spans need of a message (the shape of common/message.ts Message). */
export interface TracedMessage {
  id: string;
  topic: string;
  payload: { length: number };
  headers: Record<string, string>;
}

/** Where a message is going, as the span records it. */
export interface SendTarget {
  /** Target peer id, when the message is addressed to a peer. */
  peerId?: string;
  /** Target node address "host:port", when addressed by address. */
  address?: string;
}

export const MESSAGING_SYSTEM = 'meshwire';
const TRACER_NAME = 'meshwire';

let enabled = false;
/** The tracer and the global provider it came from (looked up again when that changes). */
let cachedTracer: { provider: unknown; tracer: Tracer } | undefined;
/** Live producer spans by message, so lower layers can add events knowing only the message. */
let producerSpans = new WeakMap<object, Span>();
/** Callbacks run just before a message's producer span ends (onProducerSpanEnd). */
let endHooks = new WeakMap<object, (span: Span) => void>();
/**
 * gRPC server spans that became a message's producer span (adoptServerSpan): the
 * interceptor ends them with the call's status, not the message path.
 */
let adoptedSpans = new WeakSet<Span>();

/**
 * Server spans of unary Send/Request calls not yet taken by a message (offerServerSpan).
 * A set, not a context value: setting one would copy the call's context.
 */
let offeredSpans = new WeakSet<Span>();

/**
 * Offers the (recording) server span of a unary Send/Request call to the one message that
 * call sends: while it is the active span, the first traceSend takes it. The span and
 * `send <topic>` would cover the same work on the same node, with the same duration, so
 * the server span takes the producer's part (attributes, injected context, transport
 * events) instead of a child span being made: one span fewer per message, the path in
 * the trace unchanged. A second message in the same call gets a span of its own.
 */
export function offerServerSpan(span: Span): void {
  offeredSpans.add(span);
}

/** True when message spans are recorded (the tracing SDK was started). */
export function messagingTracingEnabled(): boolean {
  return enabled;
}

/**
 * Turns message spans on or off. startTracing() turns them on once the SDK is
 * registered; tests turn them on around an in-memory tracer provider.
 */
export function setMessagingTracing(on: boolean): void {
  enabled = on;
  cachedTracer = undefined;
  setTraceContextPropagation(on);
  if (!on) {
    producerSpans = new WeakMap();
    endHooks = new WeakMap();
    adoptedSpans = new WeakSet();
    offeredSpans = new WeakSet();
  }
}

function tracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (cachedTracer?.provider !== provider) {
    cachedTracer = { provider, tracer: provider.getTracer(TRACER_NAME) };
  }
  return cachedTracer.tracer;
}

/**
 * Starts a message span without attributes: the caller sets them on a recording span.
 * Samplers decide without them (none of the OTEL_TRACES_SAMPLER samplers reads them), and
 * attributes given to startSpan are copied and checked twice before the span sets them.
 */
function startMessageSpan(name: string, kind: SpanKind, parent: Context, links?: Link[]): Span {
  return tracer().startSpan(name, links ? { kind, links } : { kind }, parent);
}

/** The attributes every message span has, set one by one (no intermediate map). */
function setBaseAttributes(span: Span, msg: TracedMessage, operation: string, type: string): void {
  span.setAttribute('messaging.system', MESSAGING_SYSTEM);
  span.setAttribute('messaging.operation.name', operation);
  span.setAttribute('messaging.operation.type', type);
  span.setAttribute('messaging.destination.name', msg.topic);
  span.setAttribute('messaging.message.id', msg.id);
  span.setAttribute('messaging.message.body.size', msg.payload.length);
}

/** A producer span's attributes (`send <topic>` or an adopted server span). */
function setSendAttributes(span: Span, msg: TracedMessage, init: ProducerSpanInit): void {
  setBaseAttributes(span, msg, 'send', 'send');
  span.setAttribute('meshwire.source_peer.id', init.localPeer);
  if (init.target?.peerId) span.setAttribute('meshwire.peer.id', init.target.peerId);
  if (init.target?.address) span.setAttribute('meshwire.peer.address', init.target.address);
  if (init.request) span.setAttribute('meshwire.request', true);
}

export interface ProducerSpanInit {
  /** This node's id (the sender). */
  localPeer: string;
  target?: SendTarget;
  /** True for a Request (a reply is awaited). */
  request?: boolean;
}

/**
 * Starts `send <topic>` (PRODUCER) as a child of the active context (the gRPC server
 * span) and injects its context into `msg.headers`. Returns undefined when tracing is off.
 * The caller ends it with endSpan() once the message is handed off (queued locally or
 * written to the peer's connection); until then addSpanEvent(msg, ...) finds it.
 */
export function startProducerSpan(msg: TracedMessage, init: ProducerSpanInit): Span | undefined {
  if (!enabled) return undefined;
  const active = context.active();
  const unsampled = unsampledSpanContext(active);
  if (unsampled) {
    propagateUnsampled(msg, active, unsampled);
    return undefined;
  }
  return startSampledProducerSpan(msg, init, active, false);
}

/** `adopt`: the call's offered server span may be the producer span (traceSend only). */
function startSampledProducerSpan(
  msg: TracedMessage,
  init: ProducerSpanInit,
  active: Context,
  adopt: boolean
): Span {
  if (adopt) {
    const server = trace.getSpan(active);
    // delete: the first message takes the span, a second one gets its own
    if (server && offeredSpans.delete(server) && server.isRecording()) {
      return adoptServerSpan(msg, server, init, active);
    }
  }
  const span = startMessageSpan(`send ${msg.topic}`, SpanKind.PRODUCER, active);
  if (span.isRecording()) setSendAttributes(span, msg, init);
  // Copy: a client's header map may be shared with something we must not change.
  const headers = { ...msg.headers };
  injectChild(active, span, headers);
  msg.headers = headers;
  // A sampler that said no here after all: nothing to end or annotate later.
  if (span.isRecording()) producerSpans.set(msg, span);
  return span;
}

/**
 * The call's server span (the active span) as `msg`'s producer span: the send attributes
 * on it, its context in the headers, events and hooks through producerSpans; ended by the
 * gRPC interceptor with the call's status.
 */
function adoptServerSpan(
  msg: TracedMessage,
  span: Span,
  init: ProducerSpanInit,
  active: Context
): Span {
  setSendAttributes(span, msg, init);
  const headers = { ...msg.headers };
  injectSpan(active, span.spanContext(), headers);
  msg.headers = headers;
  adoptedSpans.add(span);
  producerSpans.set(msg, span);
  return span;
}

/**
 * Runs `fn` (the hand-off of `msg`) inside its `send <topic>` producer span and ends the
 * span when `fn`'s result settles: at once for a synchronous hand-off, on completion for
 * a promise (a DELIVERED ack or a request's reply), as an error when it throws/rejects.
 * Inside `fn` the producer span is the active span. With tracing off: `fn()` and nothing
 * else.
 */
export function traceSend<T>(msg: TracedMessage, init: ProducerSpanInit, fn: () => T): T {
  if (!enabled) return fn();
  const active = context.active();
  const unsampled = unsampledSpanContext(active);
  if (unsampled) {
    // The common case under ratio sampling: no span, no context, no closures.
    propagateUnsampled(msg, active, unsampled);
    return fn();
  }
  const span = startSampledProducerSpan(msg, init, active, true);
  // An adopted server span is the active span already.
  const ctx = adoptedSpans.has(span) ? active : trace.setSpan(active, span);
  if (!span.isRecording()) return context.with(ctx, fn);
  let result: T;
  try {
    result = context.with(ctx, fn);
  } catch (err) {
    endProducerSpan(msg, err);
    throw err;
  }
  if (result instanceof Promise) {
    result.then(
      () => endProducerSpan(msg),
      (err: unknown) => endProducerSpan(msg, err)
    );
  } else {
    endProducerSpan(msg);
  }
  return result;
}

/** The live producer span of a message, if it has one. */
export function producerSpanOf(msg: object): Span | undefined {
  return enabled ? producerSpans.get(msg) : undefined;
}

/** A consumer span handle: the message to route (with rewritten headers) and `end`. */
export interface ReceiveScope {
  span: Span;
  /** The message to hand to the router: same fields, headers carrying the receive span. */
  message: TracedMessage;
  /** Ends the span, recording how many subscriptions took the message. */
  end(delivered: number, err?: unknown): void;
}

export interface ReceiveInit {
  /** This node's id (the receiver). */
  localPeer: string;
  /** Node id the message came from (this node for local delivery). */
  sourcePeer: string;
  /** True when the message is a request (one responder). */
  request?: boolean;
}

/**
 * Starts `receive <topic>` (CONSUMER) on the node that routes a message to its local
 * subscribers. The parent is the context in the message headers (the producer span,
 * possibly on another node); when the headers carry none, the active context. Returns
 * a copy of the message whose headers carry the receive span, so deliveries continue
 * the trace; the original message (possibly shared with other senders) is not changed.
 */
export function startReceiveSpan(msg: TracedMessage, init: ReceiveInit): ReceiveScope | undefined {
  // A request has one responder, and its `process` span (traceDelivery, child of the
  // producer) is the consumer span on this node: a `receive` span would cover the same
  // moment of the same message. Requests get none (one span fewer per Request).
  if (!enabled || init.request) return undefined;
  const tp = msg.headers?.traceparent;
  let parent: Context;
  if (typeof tp === 'string') {
    const flags = traceparentFlags(tp);
    // An unsampled trace: the message keeps the headers that say so, no span.
    if (flags >= 0 && (flags & TraceFlags.SAMPLED) === 0) return undefined;
    const active = context.active();
    // A message sent on this node: the producer span that injected these headers is still
    // the active span, so its context is the parent without parsing the headers again.
    parent = sameSpan(trace.getSpanContext(active), tp) ? active : extractContext(msg.headers);
  } else {
    parent = context.active();
    if (unsampledSpanContext(parent)) return undefined;
  }
  const span = startMessageSpan(`receive ${msg.topic}`, SpanKind.CONSUMER, parent);
  if (span.isRecording()) {
    setBaseAttributes(span, msg, 'receive', 'receive');
    span.setAttribute('meshwire.source_peer.id', init.sourcePeer);
    span.setAttribute('meshwire.peer.id', init.localPeer);
  }
  const headers = { ...msg.headers };
  injectChild(parent, span, headers);
  return new ReceiveSpanScope(span, { ...msg, headers });
}

class ReceiveSpanScope implements ReceiveScope {
  constructor(
    readonly span: Span,
    readonly message: TracedMessage
  ) {}

  end(delivered: number, err?: unknown): void {
    this.span.setAttribute('meshwire.delivered_count', delivered);
    endSpan(this.span, err);
  }
}

export interface ProcessInit {
  /** Subscription id on this node. */
  subscriptionId: string;
  /** Queue group ('' when none). */
  queueGroup: string;
  /** Node id the message came from. */
  sourcePeer: string;
  /** True when the delivery carries a reply token. */
  request: boolean;
}

/**
 * One `process <topic>` (CONSUMER) span for a delivery written to a Subscribe stream,
 * child of the context in the message headers. Returns the message with headers
 * carrying the process span, so a subscriber that continues the trace (or Responds
 * with these headers) becomes its child. The span ends at once: the node's part of the
 * processing is the hand-over to the stream.
 */
export function traceDelivery<M extends TracedMessage>(msg: M, init: ProcessInit): M {
  // An unsampled trace records nothing below it: the delivery keeps the headers it has
  // (most traces under ratio sampling; this runs once per delivery).
  if (!enabled || !sampledTraceContext(msg.headers)) return msg;
  return processSpan(msg, init.subscriptionId, init.queueGroup, init.sourcePeer, init.request);
}

/** traceDelivery of a sampled delivery (no init object: this runs per delivery). */
function processSpan<M extends TracedMessage>(
  msg: M,
  subscriptionId: string,
  queueGroup: string,
  sourcePeer: string,
  request: boolean
): M {
  const parent = extractContext(msg.headers);
  const span = startMessageSpan(`process ${msg.topic}`, SpanKind.CONSUMER, parent);
  if (span.isRecording()) {
    setBaseAttributes(span, msg, 'process', 'process');
    span.setAttribute('meshwire.source_peer.id', sourcePeer);
    span.setAttribute('messaging.destination.subscription.name', subscriptionId);
    if (queueGroup) span.setAttribute('messaging.consumer.group.name', queueGroup);
    if (request) span.setAttribute('meshwire.request', true);
  }
  const headers = { ...msg.headers };
  injectChild(parent, span, headers);
  span.end();
  return { ...msg, headers };
}

/** The shape of a node Delivery, as traceDeliveries needs it. */
export interface TracedDelivery<M extends TracedMessage = TracedMessage> {
  message: M;
  sourcePeer: string;
  replyTo: string;
}

/**
 * traceDelivery for every delivery of a batch about to be written to a Subscribe
 * stream (entries are replaced in place; the batch is the caller's own). With tracing
 * off: returns the batch untouched after one check.
 */
export function traceDeliveries<
  M extends TracedMessage,
  B extends { deliveries: TracedDelivery<M>[] },
>(batch: B, subscription: { id: string; queueGroup: string }): B {
  if (!enabled) return batch;
  const list = batch.deliveries;
  for (let i = 0; i < list.length; i++) {
    const d = list[i];
    // Unsampled (most traces under ratio sampling) or untraced: nothing to build.
    if (!sampledTraceContext(d.message.headers)) continue;
    const message = processSpan(
      d.message,
      subscription.id,
      subscription.queueGroup,
      d.sourcePeer,
      d.replyTo !== ''
    );
    list[i] = { ...d, message };
  }
  return batch;
}

/**
 * Starts `respond` (PRODUCER) for a reply. When the reply's headers carry a trace
 * context (the subscriber passed on the delivered headers), that is the parent, and the
 * Respond RPC's own server span is linked; otherwise the active context is the parent.
 * The reply's headers are rewritten to carry the respond span, so the requester sees it.
 */
export function startRespondSpan(reply: TracedMessage, localPeer: string): Span | undefined {
  if (!enabled) return undefined;
  const active = context.active();
  let parent = active;
  let links: Link[] | undefined;
  const tp = reply.headers?.traceparent;
  if (typeof tp === 'string') {
    const flags = traceparentFlags(tp);
    // The request's trace is unsampled: the reply keeps the headers that say so, no span.
    if (flags >= 0 && (flags & TraceFlags.SAMPLED) === 0) return undefined;
    parent = extractContext(reply.headers);
    const rpcSc = trace.getSpanContext(active);
    if (rpcSc && rpcSc.traceId !== trace.getSpanContext(parent)?.traceId) {
      links = [{ context: rpcSc }];
    }
  } else {
    const unsampled = unsampledSpanContext(active);
    if (unsampled) {
      propagateUnsampled(reply, active, unsampled);
      return undefined;
    }
  }
  const span = startMessageSpan('respond', SpanKind.PRODUCER, parent, links);
  if (span.isRecording()) {
    span.setAttribute('messaging.system', MESSAGING_SYSTEM);
    span.setAttribute('messaging.operation.name', 'respond');
    span.setAttribute('messaging.operation.type', 'send');
    span.setAttribute('messaging.destination.temporary', true);
    span.setAttribute('messaging.destination.anonymous', true);
    span.setAttribute('messaging.message.id', reply.id);
    span.setAttribute('messaging.message.body.size', reply.payload.length);
    span.setAttribute('meshwire.source_peer.id', localPeer);
    if (reply.topic) span.setAttribute('messaging.destination.name', reply.topic);
  }
  const headers = { ...reply.headers };
  injectChild(parent, span, headers);
  reply.headers = headers;
  return span;
}

/** Ends a span, marking it as an error when `err` is given. Accepts undefined (tracing off). */
export function endSpan(span: Span | undefined, err?: unknown): void {
  if (!span) return;
  recordError(span, err);
  span.end();
}

/**
 * Records `err` on `span` when given: exception event, error.type and (`setStatus`) status
 * ERROR.
 */
function recordError(span: Span, err: unknown, setStatus = true): void {
  if (err === undefined || err === null) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  if (setStatus) span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') span.setAttribute('error.type', code);
}

/**
 * Ends the producer span of a message (the dispatch layer calls this once the message
 * was written to the peer's connection, expired or was dropped).
 */
export function endProducerSpan(msg: object, err?: unknown): void {
  if (!enabled) return;
  const span = producerSpans.get(msg);
  if (!span) return;
  producerSpans.delete(msg);
  const hook = endHooks.get(msg);
  if (hook) {
    endHooks.delete(msg);
    try {
      hook(span);
    } catch {
      // telemetry never breaks the message path
    }
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'DEADLINE_EXCEEDED') span.addEvent('expired');
  // An adopted server span records the error; the interceptor ends it and sets its status
  // from the call's status code (RPC conventions: a client's mistake is not a server error).
  if (adoptedSpans.has(span)) recordError(span, err, false);
  else endSpan(span, err);
}

/**
 * Runs `fn(span)` just before the message's producer span ends (e.g. to record what the
 * transport did while the message was in flight). A no-op without a live span.
 */
export function onProducerSpanEnd(msg: object, fn: (span: Span) => void): void {
  if (!enabled || !producerSpans.has(msg)) return;
  endHooks.set(msg, fn);
}

/** Span event names for the transport-aware detail (docs/observability.md). */
export type MessageEvent =
  | 'waited_for_peer_resolution'
  | 'waited_for_send_window'
  | 'retransmitted'
  | 'expired'
  | 'dropped'
  | 'handed_to_transport'
  | 'reply_received'
  | (string & {});

/**
 * Adds an event to a span: given a Span, to it; given a message, to its live producer
 * span. A no-op when tracing is off or the message has no live span, so lower layers
 * call it unconditionally, e.g.
 * `addSpanEvent(msg, 'waited_for_peer_resolution', { 'meshwire.wait_ms': 12 })`.
 */
export function addSpanEvent(
  target: Span | object | undefined,
  name: MessageEvent,
  attributes?: Attributes
): void {
  if (!enabled || !target) return;
  const span = isSpan(target) ? target : producerSpans.get(target);
  span?.addEvent(name, attributes);
}

/**
 * Sets attributes on a span or a message's live producer span (e.g. the resolved peer
 * address and its srtt: `{ 'network.peer.address': ..., 'meshwire.peer.srtt_ms': ... }`).
 */
export function setSpanAttributes(target: Span | object | undefined, attributes: Attributes): void {
  if (!enabled || !target) return;
  const span = isSpan(target) ? target : producerSpans.get(target);
  if (!span) return;
  const peerAddress = attributes['network.peer.address'];
  if (peerAddress !== undefined && adoptedSpans.has(span)) {
    // On a server span network.peer.address is the client's: the peer node's goes under
    // the name the send span gives a target address.
    const { 'network.peer.address': _client, ...rest } = attributes;
    span.setAttributes({ ...rest, 'meshwire.peer.address': peerAddress });
    return;
  }
  span.setAttributes(attributes);
}

function isSpan(x: object): x is Span {
  return typeof (x as Partial<Span>).spanContext === 'function';
}
