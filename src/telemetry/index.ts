/**
 * Telemetry: tracing bootstrap (OpenTelemetry NodeSDK, OTLP only when OTEL_* asks for
 * it), pino logging with trace ids, and the Prometheus metrics endpoint. Used by all
 * layers above.
 */
export { startTracing, tracingRequested } from './tracing';
export type { TracingHandle } from './tracing';
export { createLogger, silentLogger } from './logger';
export type { Logger, LoggerInit } from './logger';
export { startMetrics } from './metrics';
export type { MetricsServer } from './metrics';
