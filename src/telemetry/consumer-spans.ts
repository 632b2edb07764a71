/**
 * The consumer side of message spans: `receive` where a node routes a message to its
 * subscribers, `process` per delivery written to a Subscribe stream, and `respond` for a
 * reply (docs/observability.md has the span tree). The producer side and the shared
 * helpers are in messaging-spans.ts.
 */
import type { Context, Link, Span, SpanContext } from '@opentelemetry/api';
import { context, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import {
  extractContext,
  injectChild,
  propagateUnsampled,
  sameSpan,
  sampledTraceContext,
  traceparentFlags,
  unsampledSpanContext,
} from './message-trace-context';
import type { TracedMessage } from './messaging-spans';
import {
  endSpan,
  MESSAGING_SYSTEM,
  messagingTracingEnabled,
  producerSpanOf,
  setBaseAttributes,
  startMessageSpan,
} from './messaging-spans';

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
  if (!messagingTracingEnabled() || init.request) return undefined;
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
  if (!messagingTracingEnabled() || !sampledTraceContext(msg.headers)) return msg;
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
  if (!messagingTracingEnabled()) return batch;
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
  if (!messagingTracingEnabled()) return undefined;
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

/**
 * One span per reply of a RequestMany: `reply <topic>` (CONSUMER), a child of the
 * request's producer span (`send <topic>`, open until the gather ends), linked to the
 * reply's own `respond` span when its headers carry one. Started and ended at once: it
 * marks the moment the reply reached the requesting node. Nothing when tracing is off or
 * the request's trace is unsampled.
 */
export function traceGatherReply(
  request: object & { topic: string },
  reply: TracedMessage,
  localPeer: string,
  responderPeer: string
): void {
  if (!messagingTracingEnabled()) return;
  const producer = producerSpanOf(request);
  if (!producer) return;
  const parent = trace.setSpan(context.active(), producer);
  const tp = reply.headers?.traceparent;
  const links: Link[] | undefined =
    typeof tp === 'string' && sampledTraceContext(reply.headers)
      ? [{ context: trace.getSpanContext(extractContext(reply.headers)) as SpanContext }]
      : undefined;
  const span = startMessageSpan(`reply ${request.topic}`, SpanKind.CONSUMER, parent, links);
  if (span.isRecording()) {
    span.setAttribute('messaging.system', MESSAGING_SYSTEM);
    span.setAttribute('messaging.operation.name', 'reply');
    span.setAttribute('messaging.operation.type', 'receive');
    span.setAttribute('messaging.destination.name', request.topic);
    span.setAttribute('messaging.message.id', reply.id);
    span.setAttribute('messaging.message.body.size', reply.payload.length);
    span.setAttribute('meshwire.peer.id', localPeer);
    span.setAttribute('meshwire.responder_peer.id', responderPeer);
  }
  span.end();
}
