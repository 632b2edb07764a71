/**
 * Metrics: an OpenTelemetry MeterProvider read by a Prometheus exporter serving
 * /metrics on the metrics port. Layers keep plain counters (DropCounter, stats objects);
 * observable instruments read them at scrape time, so the hot path pays nothing.
 */
import type { Server } from 'node:http';
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

/** Starts /metrics on host:port; resolves once it listens. */
export async function startMetrics(
  host: string,
  port: number,
  serviceName = process.env.OTEL_SERVICE_NAME ?? 'meshwire'
): Promise<MetricsServer> {
  const exporter = new PrometheusExporter({ host, port, preventServerStart: true });
  const provider = new MeterProvider({
    readers: [exporter],
    resource: resourceFromAttributes({ 'service.name': serviceName }),
  });
  await exporter.startServer();
  // The exporter keeps its http.Server private; read the bound port for port 0.
  const server = (exporter as unknown as { _server?: Server })._server;
  const addr = server?.address();
  const bound = addr && typeof addr === 'object' ? addr.port : port;
  let done: Promise<void> | undefined;
  return {
    meter: provider.getMeter('meshwire'),
    port: bound,
    shutdown: () =>
      (done ??= (async () => {
        await provider.shutdown().catch(() => undefined);
        await exporter.stopServer().catch(() => undefined);
      })()),
  };
}
