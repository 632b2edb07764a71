/**
 * `meshwire serve`: config and logger, then tracing (before grpc-js loads: src/app loads
 * the node side, and with it the gRPC modules, only in startNode), then the node. Invalid
 * OTEL_* settings stop the start with one line and exit code 2 (startTracing throws
 * InvalidArgumentError, which main.ts prints). SIGTERM/SIGINT drain and exit 0; a second
 * signal exits at once. SIGHUP reloads the cluster secrets at once (they are also polled).
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LATENCY_TRACE, dumpLatencyTrace } from '../common';
import { loadConfig, loadProcessTelemetry, startNode } from '../app';

export async function serve(argv: string[]): Promise<void> {
  const config = loadConfig({ argv, env: process.env });
  const { createLogger, startTracing } = await loadProcessTelemetry();
  const log = createLogger({ level: config.logLevel, base: { node_id: config.nodeId } });
  const tracing = startTracing({ serviceName: 'meshwire', nodeId: config.nodeId, logger: log });

  // Signals are handled from here on, before start-up ends: a SIGTERM that arrives while the
  // node is starting (after its listeners are up and its first lines are logged) still
  // drains it and exits 0, once it has started.
  const node: { app?: Awaited<ReturnType<typeof startNode>> } = {};
  let signals = 0;
  const drain = (): void => {
    const app = node.app;
    if (!app) return;
    void app
      .shutdown()
      .then(() => tracing.shutdown())
      .then(() => {
        log.flush();
        process.exit(0);
      });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      node.app?.forceShutdown();
      process.exit(130);
    }
    log.info(
      { signal },
      node.app
        ? 'signal received: draining'
        : 'signal received while starting: draining once started'
    );
    drain();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Installed before start-up ends: SIGHUP's default action would kill the process.
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'signal received: reloading the cluster secrets');
    node.app?.reloadClusterSecrets();
  });

  // Loaded after tracing, so the SDK is in place before grpc-js is. grpcLogs: grpc-js's
  // own messages as JSON lines, not raw "E ..." on stderr.
  node.app = await startNode({ config, logger: log, grpcLogs: true });
  const { exporter, endpoint, protocol } = tracing.config;
  if (exporter === 'otlp') log.info({ endpoint, protocol }, 'exporting traces over OTLP');
  else if (exporter === 'console')
    log.info('printing spans as JSON lines (OTEL_TRACES_EXPORTER=console)');
  else log.info('traces off: set OTEL_EXPORTER_OTLP_ENDPOINT to export them over OTLP');
  if (signals > 0) drain();
  if (LATENCY_TRACE) {
    // The latency budget's stamps (bench/budget/run.ts reads them after the node exits).
    const path = join(
      process.env.MESHWIRE_LATENCY_TRACE_DIR || tmpdir(),
      `meshwire-latency-${config.nodeId}.json`
    );
    log.info({ path }, 'latency trace on (MESHWIRE_LATENCY_TRACE=1): stamps written on exit');
    process.on('exit', () => dumpLatencyTrace(path));
  }
}
