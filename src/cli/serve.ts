/**
 * `meshwire serve`: tracing first (before grpc-js loads), then config, logger and the
 * node. SIGTERM/SIGINT drain and exit 0; a second signal exits at once.
 */
import { startTracing } from '../telemetry/tracing';

export async function serve(argv: string[]): Promise<void> {
  const tracing = startTracing('meshwire');
  // Loaded after tracing so the gRPC instrumentation can patch grpc-js.
  const { loadConfig } = await import('../node/config');
  const { createLogger } = await import('../telemetry/logger');
  const { startMeshwire } = await import('../api/server');
  const { routeGrpcLogs } = await import('../api/grpc-log');

  const config = loadConfig({ argv, env: process.env });
  const log = createLogger({ level: config.logLevel, base: { node_id: config.nodeId } });
  routeGrpcLogs(log); // grpc-js's own messages as JSON lines, not raw "E ..." on stderr
  const server = await startMeshwire({ config, logger: log });
  if (tracing.enabled) log.info('exporting traces over OTLP');
  else log.info('traces off: set OTEL_EXPORTER_OTLP_ENDPOINT to export them over OTLP');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      server.forceShutdown();
      process.exit(130);
    }
    log.info({ signal }, 'signal received: draining');
    void server
      .shutdown()
      .then(() => tracing.shutdown())
      .then(() => {
        log.flush();
        process.exit(0);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
