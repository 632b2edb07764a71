/**
 * Tracing bootstrap, configured by the standard OTEL_* variables and checked before
 * anything starts (resolveTraceConfig):
 *
 * - OTEL_TRACES_EXPORTER: `otlp` (the default when an OTLP endpoint is set), `console`
 *   (one JSON line per span on stdout) or `none`; anything else is refused.
 * - OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT must be an http:// or https:// URL and
 *   OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL one of grpc, http/protobuf, http/json.
 *
 * With nothing set the SDK does not start and the API stays on its no-op path. The SDK's
 * diagnostics and export failures are logged through pino (otel-diagnostics.ts). gRPC
 * server spans come from our own interceptor (src/api/grpc-server-spans.ts) and the context
 * manager is synchronous (sync-context-manager.ts): no monkey patching, no async hooks.
 */
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode, hrTimeToMilliseconds } from '@opentelemetry/core';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkNode from '@opentelemetry/sdk-node';
import type { NodeSDK, NodeSDKConfiguration } from '@opentelemetry/sdk-node';
import type * as TraceBase from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { InvalidArgumentError } from '../common';
import type { Logger } from './logger';
import { silentLogger } from './logger';
import { setMessagingTracing } from './messaging-spans';
import type { ExportTarget } from './otel-diagnostics';
import { routeOtelDiagnostics } from './otel-diagnostics';
import { SyncContextManager } from './sync-context-manager';

type Env = Record<string, string | undefined>;

export const TRACE_EXPORTERS = ['otlp', 'console', 'none'] as const;
export type TraceExporterName = (typeof TRACE_EXPORTERS)[number];
export const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface TraceConfig {
  exporter: TraceExporterName;
  /** The URL spans are sent to (otlp only), as the SDK resolves it. */
  endpoint?: string;
  protocol?: OtlpProtocol;
  /** Which variable named the endpoint (for messages). */
  endpointVariable?: string;
}

export interface TracingHandle {
  /** True when spans are exported. */
  readonly enabled: boolean;
  readonly config: TraceConfig;
  /** Flushes and stops the exporter; safe to call more than once. */
  shutdown(): Promise<void>;
}

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/**
 * Reads the OTEL_* variables the way the SDK does and refuses what it would silently
 * ignore or misread. Throws InvalidArgumentError with one line naming the variable.
 */
export function resolveTraceConfig(env: Env = process.env): TraceConfig {
  if ((value(env, 'OTEL_SDK_DISABLED') ?? '').toLowerCase() === 'true') return { exporter: 'none' };
  const tracesEndpoint = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const baseEndpoint = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const raw = value(env, 'OTEL_TRACES_EXPORTER');
  const names = raw
    ? [
        ...new Set(
          raw
            .toLowerCase()
            .split(',')
            .map(s => s.trim())
            .filter(Boolean)
        ),
      ]
    : [];
  for (const n of names) {
    if (!(TRACE_EXPORTERS as readonly string[]).includes(n)) {
      throw new InvalidArgumentError(
        `OTEL_TRACES_EXPORTER="${raw}": unsupported exporter "${n}" (use one of ${TRACE_EXPORTERS.join(', ')})`
      );
    }
  }
  if (names.length > 1) {
    throw new InvalidArgumentError(
      `OTEL_TRACES_EXPORTER="${raw}": name one exporter (${TRACE_EXPORTERS.join(', ')})`
    );
  }
  // Unset: OTLP when an endpoint is set, else off (no collector is assumed).
  const exporter = (names[0] ??
    (tracesEndpoint || baseEndpoint ? 'otlp' : 'none')) as TraceExporterName;
  if (exporter !== 'otlp') return { exporter };

  const protocolVar = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = value(env, protocolVar) ?? 'http/protobuf';
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new InvalidArgumentError(
      `${protocolVar}="${protocol}": unsupported protocol (use one of ${OTLP_PROTOCOLS.join(', ')})`
    );
  }
  const endpointVariable = tracesEndpoint
    ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
    : baseEndpoint
      ? 'OTEL_EXPORTER_OTLP_ENDPOINT'
      : undefined;
  const given = tracesEndpoint ?? baseEndpoint;
  const fallback = protocol === 'grpc' ? 'http://localhost:4317' : 'http://localhost:4318';
  let url: URL;
  try {
    url = new URL(given ?? fallback);
  } catch {
    throw new InvalidArgumentError(
      `${endpointVariable}="${given}": not a URL (expected e.g. http://collector:${protocol === 'grpc' ? 4317 : 4318})`
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(
      `${endpointVariable}="${given}": unsupported scheme "${url.protocol.replace(/:$/, '')}" (use http:// or https://)`
    );
  }
  if (!url.hostname) {
    throw new InvalidArgumentError(`${endpointVariable}="${given}": no host`);
  }
  // The SDK appends the signal path to the generic endpoint for HTTP, not for gRPC.
  let endpoint = url.toString();
  if (protocol !== 'grpc' && !tracesEndpoint) {
    endpoint = `${endpoint.replace(/\/$/, '')}/v1/traces`;
  }
  return { exporter, protocol: protocol as OtlpProtocol, endpoint, endpointVariable };
}

/** True when the environment asks for trace export (invalid settings count as no). */
export function tracingRequested(env: Env = process.env): boolean {
  try {
    return resolveTraceConfig(env).exporter !== 'none';
  } catch {
    return false;
  }
}

const SPAN_KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];

/** OTEL_TRACES_EXPORTER=console: one JSON line per span through pino, not a console.dir dump. */
export class JsonLineSpanExporter implements SpanExporter {
  constructor(private readonly log: Logger) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    for (const s of spans) {
      const ctx = s.spanContext();
      // trace_id/span_id at the top, as on every log line, name this span (not the one
      // active while it is exported).
      this.log.info(
        {
          trace_id: ctx.traceId,
          span_id: ctx.spanId,
          span: {
            name: s.name,
            kind: SPAN_KINDS[s.kind] ?? String(s.kind),
            parent_span_id: s.parentSpanContext?.spanId,
            start_ms: hrTimeToMilliseconds(s.startTime),
            duration_ms: hrTimeToMilliseconds(s.duration),
            status: s.status.code === 2 ? 'error' : s.status.code === 1 ? 'ok' : 'unset',
            status_message: s.status.message,
            attributes: s.attributes,
            events: s.events.map(e => e.name),
          },
        },
        'span'
      );
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface TracingInit {
  /** Used unless OTEL_SERVICE_NAME is set. @default 'meshwire' */
  serviceName?: string;
  /** Resource attribute `service.instance.id` (OTEL_RESOURCE_ATTRIBUTES may override it). */
  nodeId?: string;
  /** Where the SDK's diagnostics, export errors and console spans go. */
  logger?: Logger;
}

/**
 * Starts the SDK when the environment asks for it. Throws InvalidArgumentError (before
 * starting anything) when the OTEL_* settings are invalid.
 */
export function startTracing(init: TracingInit = {}): TracingHandle {
  // The SDK reads process.env itself, so this reads and sets the same object.
  const env = process.env;
  const config = resolveTraceConfig(env);
  const log = init.logger ?? silentLogger();
  const target: ExportTarget = {
    exporter: config.exporter,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.protocol ? { protocol: config.protocol } : {}),
  };
  // The SDK's own diagnostics go to pino whether or not traces are exported.
  routeOtelDiagnostics(log, target, env);
  if (config.exporter === 'none') {
    return { enabled: false, config, shutdown: async () => undefined };
  }
  // Loaded only when exporting: with tracing off (CLI clients, most nodes) the SDK's
  // module graph is never required. require(), not import(): startTracing is synchronous.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const sdkNode = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const traceBase = require('@opentelemetry/sdk-trace-base') as typeof TraceBase;
  const resources = require('@opentelemetry/resources') as typeof Resources;
  /* eslint-enable @typescript-eslint/no-require-imports */
  env.OTEL_SERVICE_NAME ??= init.serviceName ?? 'meshwire';
  // Metrics go through our own Prometheus reader (telemetry/metrics.ts), logs through pino.
  env.OTEL_METRICS_EXPORTER ??= 'none';
  env.OTEL_LOGS_EXPORTER ??= 'none';
  env.OTEL_TRACES_EXPORTER = config.exporter;
  const options: Partial<NodeSDKConfiguration> = {
    contextManager: new SyncContextManager(),
    instrumentations: [],
    ...(init.nodeId
      ? { resource: resources.resourceFromAttributes({ 'service.instance.id': init.nodeId }) }
      : {}),
  };
  if (config.exporter === 'console') {
    const spanLog = log.child({ component: 'trace' }, { level: 'info' });
    options.spanProcessors = [new traceBase.SimpleSpanProcessor(new JsonLineSpanExporter(spanLog))];
  }
  // NodeSDK installs a console diag logger when OTEL_LOG_LEVEL is set, over ours; hide the
  // variable while it is built (ours already honours it).
  const logLevel = env.OTEL_LOG_LEVEL;
  delete env.OTEL_LOG_LEVEL;
  let sdk: NodeSDK;
  try {
    sdk = new sdkNode.NodeSDK(options);
  } finally {
    if (logLevel !== undefined) env.OTEL_LOG_LEVEL = logLevel;
  }
  sdk.start();
  // Message spans (messaging-spans.ts) stay on their no-op path unless this runs.
  setMessagingTracing(true);
  let done: Promise<void> | undefined;
  return {
    enabled: true,
    config,
    shutdown: () =>
      (done ??= sdk
        .shutdown()
        .catch(() => undefined)
        .finally(() => setMessagingTracing(false))),
  };
}
