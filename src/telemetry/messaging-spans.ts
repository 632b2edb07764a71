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
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  injectChild,
  propagateUnsampled,
  injectSpan,
  setTraceContextPropagation,
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
export function startMessageSpan(
  name: string,
  kind: SpanKind,
  parent: Context,
  links?: Link[]
): Span {
  return tracer().startSpan(name, links ? { kind, links } : { kind }, parent);
}

/** The attributes every message span has, set one by one (no intermediate map). */
export function setBaseAttributes(
  span: Span,
  msg: TracedMessage,
  operation: string,
  type: string
): void {
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
