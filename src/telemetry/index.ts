/**
 * Telemetry: tracing bootstrap (OpenTelemetry NodeSDK, OTLP only when OTEL_* asks for
 * it), pino logging with trace ids, and the Prometheus metrics endpoint. Used by all
 * layers above.
 */
export {
  startTracing,
  tracingRequested,
  resolveTraceConfig,
  JsonLineSpanExporter,
  TRACE_EXPORTERS,
  OTLP_PROTOCOLS,
} from './tracing';
export type {
  TracingHandle,
  TracingInit,
  TraceConfig,
  TraceExporterName,
  OtlpProtocol,
} from './tracing';
export {
  RateLimitedLog,
  routeOtelDiagnostics,
  pinoDiagLogger,
  diagLevelFromEnv,
  otelExportErrors,
  DIAG_INTERVAL_MS,
} from './otel-diagnostics';
export type { ExportTarget, OtelDiagnostics } from './otel-diagnostics';
export { createLogger, silentLogger } from './logger';
export type { Logger, LoggerInit } from './logger';
export { startMetrics, withUnitSuffix, prometheusUnitSuffix } from './metrics';
export type { MetricsServer, MetricsInit } from './metrics';
export { startProcessMetrics } from './process-metrics';
export type { ProcessMetricsHandle } from './process-metrics';
export {
  setMessagingTracing,
  messagingTracingEnabled,
  startProducerSpan,
  traceSend,
  producerSpanOf,
  endProducerSpan,
  onProducerSpanEnd,
  endSpan,
  addSpanEvent,
  setSpanAttributes,
  offerServerSpan,
  MESSAGING_SYSTEM,
} from './messaging-spans';
export { injectContext, extractContext, hasTraceContext } from './message-trace-context';
export {
  startReceiveSpan,
  startRespondSpan,
  traceDelivery,
  traceDeliveries,
  traceGatherReply,
} from './consumer-spans';
export type { ReceiveScope, ReceiveInit, ProcessInit, TracedDelivery } from './consumer-spans';
export type { TracedMessage, SendTarget, ProducerSpanInit, MessageEvent } from './messaging-spans';
export {
  MessagingTelemetry,
  REQUEST_DURATION_BUCKETS_S,
  STREAM_END_EVENTS,
} from './messaging-metrics';
export type { RequestOutcome } from './messaging-metrics';
export { TransportMetrics } from './transport-metrics';
export type {
  TransportStatsLike,
  TransportStatsSource,
  SocketStatsSource,
  PeerName,
  QueueKind,
} from './transport-metrics';
export { SyncContextManager } from './sync-context-manager';
