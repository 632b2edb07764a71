/**
 * gRPC server spans (OpenTelemetry RPC semantic conventions) made by one grpc-js server
 * interceptor, instead of @opentelemetry/instrumentation-grpc.
 *
 * Why our own: the instrumentation wraps every grpc-js call in shimmer patches and needs
 * an async-hooks context manager, which taxes every promise in the process. Measured on a
 * node answering Requests (docs/benchmarks.md, bench-telemetry): the instrumentation and the
 * async context manager were most of tracing's cost. Here the span starts when the call's
 * metadata arrives (parent: the caller's traceparent), each listener step runs inside
 * context.with(span), so the handler's synchronous part sees it as the active span (the
 * message spans take it as their parent; a unary call's span is the producer span of the
 * message it sends), and it ends with the call's status.
 */
import type {
  Metadata,
  ServerInterceptingCallInterface,
  ServerInterceptor,
  ServerMethodDefinition,
} from '@grpc/grpc-js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface';
import { ServerInterceptingCall, status as grpcStatus } from '@grpc/grpc-js';
import type { Context, Span, TextMapGetter, Tracer } from '@opentelemetry/api';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import { messagingTracingEnabled, offerServerSpan } from '../telemetry';

const TRACER_NAME = 'meshwire-grpc';
let cached: { provider: unknown; tracer: Tracer } | undefined;

/** The tracer, looked up again only when the global provider changes. */
function tracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (cached?.provider !== provider) {
    cached = { provider, tracer: provider.getTracer(TRACER_NAME) };
  }
  return cached.tracer;
}
/** Probes and tooling, not traffic: the kubelet's health checks would flood the traces. */
const UNTRACED = /^\/grpc\.(health|reflection)\./;

const metadataGetter: TextMapGetter<Metadata> = {
  keys: md => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key);
    if (v.length === 0) return undefined;
    return v.map(x => (typeof x === 'string' ? x : x.toString())).join(',');
  },
};

interface MethodNames {
  /** The span name, "pkg.Service/Method". */
  name: string;
  service: string;
  method: string;
}

/** By method path: the names a span needs, worked out once per method, not per call. */
const methodNames = new Map<string, MethodNames>();

/** "/pkg.Service/Method" -> its span name, service and method. */
function namesOf(path: string): MethodNames {
  let n = methodNames.get(path);
  if (!n) {
    const i = path.lastIndexOf('/');
    const service = path.slice(1, i);
    const method = path.slice(i + 1);
    n = { name: `${service}/${method}`, service, method };
    methodNames.set(path, n);
  }
  return n;
}

/**
 * The interceptor; put it first in the grpc-js Server `interceptors` when tracing is on
 * (GrpcApi does, src/api/server.ts). With tracing off it passes the call through.
 */
export const grpcServerSpans: ServerInterceptor = (
  method: ServerMethodDefinition<unknown, unknown>,
  call: ServerInterceptingCallInterface
): ServerInterceptingCall => {
  if (!messagingTracingEnabled() || UNTRACED.test(method.path)) {
    return new ServerInterceptingCall(call);
  }
  const names = namesOf(method.path);
  const unary = !method.requestStream && !method.responseStream;
  let span: Span | undefined;
  let ctx: Context = ROOT_CONTEXT;
  let ended = false;
  const end = (code: number, details?: string): void => {
    if (!span || ended) return;
    ended = true;
    span.setAttribute('rpc.grpc.status_code', code);
    // RPC semconv: for servers, only some codes are errors (the caller's fault is not).
    if (SERVER_ERROR_CODES.has(code))
      span.setStatus({ code: SpanStatusCode.ERROR, message: details });
    span.end();
  };
  return new ServerInterceptingCall(call, {
    start: next =>
      next({
        onReceiveMetadata: (metadata, mdNext) => {
          const parent = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
          // The sampler decides without the attributes (none of the OTEL_TRACES_SAMPLER
          // samplers reads them), so an unsampled call builds none and asks nothing of
          // the call: its span is the non-recording one the SDK returns.
          span = tracer().startSpan(names.name, { kind: SpanKind.SERVER }, parent);
          if (span.isRecording()) {
            span.setAttributes({
              'rpc.system': 'grpc',
              'rpc.service': names.service,
              'rpc.method': names.method,
              'network.peer.address': call.getPeer(),
            });
          }
          ctx = trace.setSpan(parent, span);
          // A unary call (Send, Request) sends at most one message: its span can be that
          // message's producer span (messaging-spans.ts, offerServerSpan).
          if (unary && span.isRecording()) offerServerSpan(span);
          context.with(ctx, () => mdNext(metadata));
        },
        onReceiveMessage: (message, msgNext) => context.with(ctx, () => msgNext(message)),
        onReceiveHalfClose: hcNext => context.with(ctx, hcNext),
        onCancel: () => end(grpcStatus.CANCELLED, 'cancelled by the client'),
      }),
    sendStatus: (st: PartialStatusObject, next) => {
      end(st.code, st.details);
      next(st);
    },
  });
};

/** Status codes that mark a server span as an error (OpenTelemetry RPC conventions). */
const SERVER_ERROR_CODES = new Set<number>([
  grpcStatus.UNKNOWN,
  grpcStatus.DEADLINE_EXCEEDED,
  grpcStatus.UNIMPLEMENTED,
  grpcStatus.INTERNAL,
  grpcStatus.UNAVAILABLE,
  grpcStatus.DATA_LOSS,
]);
