/**
 * Metrics: an OpenTelemetry MeterProvider read by a Prometheus exporter serving
 * /metrics on the metrics port. Layers keep plain counters (DropCounter, stats objects);
 * observable instruments read them at scrape time, so the hot path pays nothing.
 *
 * Names: instruments keep OpenTelemetry names and units (`meshwire.transport.srtt`, `s`);
 * at scrape time the unit becomes a Prometheus suffix (`_seconds`, `_bytes`, see
 * prometheusUnitSuffix) and the serializer adds `_total` to counters, so every series
 * follows the Prometheus naming conventions (docs/observability.md).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { diag } from '@opentelemetry/api';
import type { MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { otelExportErrors } from './otel-diagnostics';
import { startProcessMetrics } from './process-metrics';

export interface MetricsServer {
  readonly meter: Meter;
  /** The bound port (useful with port 0 in tests). */
  readonly port: number;
  shutdown(): Promise<void>;
}

export interface MetricsInit {
  /** `service.name` of target_info. @default OTEL_SERVICE_NAME or 'meshwire' */
  serviceName?: string;
  /** `service.instance.id` of target_info: the node id, so each node is told apart. */
  nodeId?: string;
  /** Process and runtime metrics (RSS, heap, GC, event loop). @default true */
  processMetrics?: boolean;
}

/** OpenTelemetry unit -> Prometheus name suffix (units without one add nothing). */
const UNIT_SUFFIXES: Record<string, string> = { s: 'seconds', By: 'bytes' };

/** The suffix a metric of `unit` gets, or '' (`{message}`, `1` and friends add none). */
export function prometheusUnitSuffix(unit: string): string {
  return UNIT_SUFFIXES[unit] ?? '';
}

/**
 * The instrument name with its unit suffix: `meshwire.transport.srtt` (s) ->
 * `meshwire.transport.srtt_seconds`; a name already ending in the unit keeps it.
 */
export function withUnitSuffix(name: string, unit: string): string {
  const suffix = prometheusUnitSuffix(unit);
  if (!suffix) return name;
  const flat = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return flat.endsWith(`_${suffix}`) || flat.endsWith(`_${suffix}_total`)
    ? name
    : `${name}_${suffix}`;
}

function renameByUnit(rm: ResourceMetrics): ResourceMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map(sm => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m): MetricData => ({
        ...m,
        descriptor: { ...m.descriptor, name: withUnitSuffix(m.descriptor.name, m.descriptor.unit) },
      })),
    })),
  };
}

/**
 * Starts /metrics on host:port; resolves once it listens. We own the HTTP server (the
 * exporter's own treats port 0 as "use 9464"), collect through the exporter and
 * serialize with unit suffixes.
 */
export async function startMetrics(
  host: string,
  port: number,
  init: MetricsInit = {}
): Promise<MetricsServer> {
  // Loaded here, not at import: processes without /metrics (CLI clients) skip the SDK.
  const { PrometheusExporter, PrometheusSerializer } =
    await import('@opentelemetry/exporter-prometheus');
  const { MeterProvider } = await import('@opentelemetry/sdk-metrics');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const serializer = new PrometheusSerializer();
  const attributes: Record<string, string> = {
    'service.name': init.serviceName ?? process.env.OTEL_SERVICE_NAME ?? 'meshwire',
  };
  if (init.nodeId) attributes['service.instance.id'] = init.nodeId;
  const provider = new MeterProvider({
    readers: [exporter],
    resource: resourceFromAttributes(attributes),
  });
  const meter = provider.getMeter('meshwire');
  const processMetrics = (init.processMetrics ?? true) ? startProcessMetrics(meter) : undefined;
  meter
    .createObservableCounter('meshwire.trace.export.errors', {
      description:
        'Errors reported by the OpenTelemetry SDK (failed span export batches); each is logged, rate-limited',
      unit: '{error}',
    })
    .addCallback(r => r.observe(otelExportErrors()));
  const serve = (res: ServerResponse): void => {
    exporter.collect().then(
      ({ resourceMetrics, errors }) => {
        if (errors.length > 0) diag.error('metrics collection errors', ...errors);
        res.statusCode = 200;
        res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
        res.end(serializer.serialize(renameByUnit(resourceMetrics)));
      },
      (err: unknown) => {
        res.statusCode = 500;
        res.end(`# failed to collect metrics: ${String(err)}\n`);
      }
    );
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      serve(res);
    } else {
      res.statusCode = 404;
      res.end('not found: metrics are at /metrics\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  server.unref();
  const addr = server.address();
  const bound = addr && typeof addr === 'object' ? addr.port : port;
  let done: Promise<void> | undefined;
  return {
    meter,
    port: bound,
    shutdown: () =>
      (done ??= (async () => {
        processMetrics?.stop();
        await provider.shutdown().catch(() => undefined);
        await new Promise<void>(resolve => server.close(() => resolve()));
      })()),
  };
}
