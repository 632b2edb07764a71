/**
 * The trace context a message carries in its headers (W3C traceparent/tracestate/baggage):
 * writing it for a span, reading it back, and the cheap checks on a traceparent string
 * that let messaging-spans.ts skip unsampled traces without building a context.
 * messaging-spans.ts turns it on and off with the spans (setMessagingTracing).
 */
import type { Context, Span, SpanContext, TextMapGetter, TextMapSetter } from '@opentelemetry/api';
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
  TraceFlags,
} from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import type { TracedMessage } from './messaging-spans';

let enabled = false;
/**
 * True when the registered propagators are W3C trace context (and W3C baggage): then
 * injectSpan writes traceparent/tracestate itself instead of going through the composite
 * propagator. Anything else (B3, Jaeger, ...) takes the generic path.
 */
let w3cPropagation = false;

/** On with message spans (setMessagingTracing); reads which propagators are registered. */
export function setTraceContextPropagation(on: boolean): void {
  enabled = on;
  if (on) {
    const fields = propagation.fields();
    w3cPropagation =
      fields.includes('traceparent') &&
      fields.every(f => f === 'traceparent' || f === 'tracestate' || f === 'baggage');
  }
}

const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

const headerGetter: TextMapGetter<Record<string, string>> = {
  keys: carrier => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** Writes the context's trace headers (traceparent, tracestate, baggage) into `headers`. */
export function injectContext(
  headers: Record<string, string>,
  ctx: Context = context.active()
): void {
  if (!enabled) return;
  propagation.inject(ctx, headers, headerSetter);
}

/** The context carried by message headers (ROOT_CONTEXT plus the remote span, if any). */
export function extractContext(headers: Record<string, string> | undefined): Context {
  if (!enabled || !headers) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, headers, headerGetter);
}

/**
 * What propagation.inject(ctx, headers) writes when `ctx`'s span context is `sc`: with W3C
 * propagators and no baggage in `ctx`, traceparent (and tracestate) written directly;
 * otherwise through the registered propagators.
 */
export function injectSpan(ctx: Context, sc: SpanContext, headers: Record<string, string>): void {
  if (!w3cPropagation || propagation.getBaggage(ctx) !== undefined) {
    propagation.inject(ctx, headers, headerSetter);
    return;
  }
  if (isTracingSuppressed(ctx) || !isSpanContextValid(sc)) return;
  writeTraceparent(sc, headers);
}

/**
 * injectSpan for a span just started under `parent`, without building the child context
 * unless the generic path needs it (baggage and suppression are the parent's).
 */
export function injectChild(parent: Context, span: Span, headers: Record<string, string>): void {
  if (!w3cPropagation || propagation.getBaggage(parent) !== undefined) {
    propagation.inject(trace.setSpan(parent, span), headers, headerSetter);
    return;
  }
  const sc = span.spanContext();
  // A recording span's context is valid (the SDK made it).
  if (isTracingSuppressed(parent) || (!span.isRecording() && !isSpanContextValid(sc))) return;
  writeTraceparent(sc, headers);
}

/** What the W3C trace context propagator writes for `sc`. */
function writeTraceparent(sc: SpanContext, headers: Record<string, string>): void {
  const flags = sc.traceFlags & 0xff;
  headers.traceparent = `00-${sc.traceId}-${sc.spanId}-${flags < 16 ? '0' : ''}${flags.toString(16)}`;
  const ts = sc.traceState?.serialize();
  if (ts) headers.tracestate = ts;
}

/** The span context of `ctx` when it is valid and its trace is not sampled. */
export function unsampledSpanContext(ctx: Context): SpanContext | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || (sc.traceFlags & TraceFlags.SAMPLED) !== 0 || !isSpanContextValid(sc))
    return undefined;
  return sc;
}

/**
 * A message sent under an unsampled parent: no span; its headers (a copy: the caller's map
 * may be shared) carry the parent's context, so the next hop keeps the decision.
 */
export function propagateUnsampled(msg: TracedMessage, ctx: Context, sc: SpanContext): void {
  const headers = { ...msg.headers };
  injectSpan(ctx, sc, headers);
  msg.headers = headers;
}

/**
 * The trace flags of a well-formed version-00-style traceparent ("vv-<32 hex>-<16 hex>-ff"),
 * or -1 when there is none or it is malformed (then the propagator decides, as before).
 */
export function traceparentFlags(tp: string | undefined): number {
  if (typeof tp !== 'string' || tp.length < 55 || tp[2] !== '-' || tp[35] !== '-' || tp[52] !== '-')
    return -1;
  const flags = parseInt(tp.slice(53, 55), 16);
  return Number.isNaN(flags) ? -1 : flags;
}

/** True when `sc` is the span a traceparent names (same trace and span id). */
export function sameSpan(sc: SpanContext | undefined, tp: string): boolean {
  return (
    sc !== undefined &&
    tp.length >= 55 &&
    tp.startsWith(sc.traceId, 3) &&
    tp.startsWith(sc.spanId, 36) &&
    isSpanContextValid(sc)
  );
}

/** True when the headers carry a W3C trace context. */
export function hasTraceContext(headers: Record<string, string> | undefined): boolean {
  return headers !== undefined && typeof headers.traceparent === 'string';
}

/**
 * True when the headers carry a W3C traceparent whose sampled flag is set (the last
 * field, "-01"; version 00 is 55 characters, later versions may append fields).
 */
export function sampledTraceContext(headers: Record<string, string> | undefined): boolean {
  const tp = headers?.traceparent;
  if (typeof tp !== 'string' || tp.length < 55) return false;
  const flags = parseInt(tp.slice(53, 55), 16);
  return (flags & 1) === 1;
}
