/**
 * Tracing bootstrap. The OpenTelemetry NodeSDK starts only when an OTLP endpoint is set
 * through the standard OTEL_* variables; otherwise nothing is exported and the API stays
 * on its no-op path. gRPC server spans come from our own interceptor (grpc-server-spans.ts)
 * and the context manager is synchronous (sync-context-manager.ts): no monkey patching,
 * no async hooks.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';
import { setMessagingTracing } from './messaging-spans';
import { SyncContextManager } from './sync-context-manager';

export interface TracingHandle {
  /** True when spans are exported. */
  readonly enabled: boolean;
  /** Flushes and stops the exporter; safe to call more than once. */
  shutdown(): Promise<void>;
}

/** True when the environment asks for trace export. */
export function tracingRequested(env: Record<string, string | undefined> = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts the SDK when requested; `serviceName` is used unless OTEL_SERVICE_NAME is set. */
export function startTracing(serviceName = 'meshwire'): TracingHandle {
  if (!tracingRequested()) {
    return { enabled: false, shutdown: async () => undefined };
  }
  process.env.OTEL_SERVICE_NAME ??= serviceName;
  // Metrics go through our own Prometheus reader (telemetry/metrics.ts), logs through pino.
  process.env.OTEL_METRICS_EXPORTER ??= 'none';
  process.env.OTEL_LOGS_EXPORTER ??= 'none';
  const sdk = new NodeSDK({ contextManager: new SyncContextManager(), instrumentations: [] });
  sdk.start();
  // Message spans (messaging-spans.ts) stay on their no-op path unless this runs.
  setMessagingTracing(true);
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    shutdown: () =>
      (done ??= sdk
        .shutdown()
        .catch(() => undefined)
        .finally(() => setMessagingTracing(false))),
  };
}
