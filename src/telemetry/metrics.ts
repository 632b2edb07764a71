/**
 * Metrics: an OpenTelemetry MeterProvider read by a Prometheus exporter serving
 * /metrics on the metrics port. Layers keep plain counters (DropCounter, stats objects);
 * observable instruments read them at scrape time, so the hot path pays nothing.
 */
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

export interface MetricsServer {
  readonly meter: Meter;
  /** The bound port (useful with port 0 in tests). */
  readonly port: number;
  shutdown(): Promise<void>;
}

/**
 * Starts /metrics on host:port; resolves once it listens. We own the HTTP server (the
 * exporter's own treats port 0 as "use 9464"), and hand /metrics to the exporter.
 */
export async function startMetrics(
  host: string,
  port: number,
  serviceName = process.env.OTEL_SERVICE_NAME ?? 'meshwire'
): Promise<MetricsServer> {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    readers: [exporter],
    resource: resourceFromAttributes({ 'service.name': serviceName }),
  });
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
      exporter.getMetricsRequestHandler(req, res);
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
    meter: provider.getMeter('meshwire'),
    port: bound,
    shutdown: () =>
      (done ??= (async () => {
        await provider.shutdown().catch(() => undefined);
        await new Promise<void>(resolve => server.close(() => resolve()));
      })()),
  };
}
