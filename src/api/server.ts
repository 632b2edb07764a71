/**
 * The gRPC front of a node: Messenger and Peers services, grpc.health.v1, server
 * reflection and the /metrics endpoint, with the safe close of seed 001: stop accepting,
 * drain in-flight work, end subscriber streams, close.
 */
import { readFileSync } from 'node:fs';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { formatHostPort } from '../common';
import type { NodeConfig } from '../node';
import { MeshNode } from '../node';
import type { Logger, MetricsServer } from '../telemetry';
import { silentLogger, startMetrics } from '../telemetry';
import { fastMessengerDefinition } from './codec';
import type { ActiveStreams } from './messenger-service';
import { messengerService } from './messenger-service';
import { registerNodeMetrics } from './node-metrics';
import { peersService } from './peers-service';
import { messagingPackage, serviceConstructors } from './proto';

/** Room for protobuf framing and headers above the largest payload. */
const GRPC_MESSAGE_OVERHEAD = 4 * 1024 * 1024;

export interface MeshwireServerInit {
  config: NodeConfig;
  logger?: Logger;
  /** Start the /metrics endpoint. @default true */
  metrics?: boolean;
}

export interface MeshwireServer {
  readonly node: MeshNode;
  /** Bound gRPC port (resolved when grpcListen has port 0). */
  readonly grpcPort: number;
  /** "host:port" clients connect to. */
  readonly grpcAddress: string;
  readonly metricsPort: number | undefined;
  /** Safe close; resolves when everything is closed. Idempotent. */
  shutdown(): Promise<{ drained: boolean }>;
  /** Immediate stop (second signal). */
  forceShutdown(): void;
}

function serverCredentials(cfg: NodeConfig): ServerCredentials {
  if (!cfg.tlsCertFile || !cfg.tlsKeyFile) return ServerCredentials.createInsecure();
  const ca = cfg.tlsClientCaFile ? readFileSync(cfg.tlsClientCaFile) : null;
  return ServerCredentials.createSsl(
    ca,
    [{ cert_chain: readFileSync(cfg.tlsCertFile), private_key: readFileSync(cfg.tlsKeyFile) }],
    Boolean(ca)
  );
}

/** Starts a node with its gRPC server. Rejects if a port cannot be bound. */
export async function startMeshwire(init: MeshwireServerInit): Promise<MeshwireServer> {
  const cfg = init.config;
  const log = init.logger ?? silentLogger();
  const node = new MeshNode({ config: cfg });
  const active: ActiveStreams = { subscriptions: new Set() };

  const maxMessage = cfg.maxMessageBytes + GRPC_MESSAGE_OVERHEAD;
  const server = new Server({
    'grpc.max_receive_message_length': maxMessage,
    'grpc.max_send_message_length': maxMessage,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const { Messenger, Peers } = serviceConstructors();
  server.addService(
    fastMessengerDefinition(Messenger.service),
    messengerService(node, log.child({ component: 'api' }), active)
  );
  server.addService(Peers.service, peersService(node, log.child({ component: 'peers-api' })));
  const health = new HealthImplementation({
    '': 'SERVING',
    'messaging.v1.Messenger': 'SERVING',
    'messaging.v1.Peers': 'SERVING',
  });
  health.addToServer(server);
  new ReflectionService(messagingPackage().definition).addToServer(server);

  const grpcPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formatHostPort(cfg.grpcListen), serverCredentials(cfg), (err, port) =>
      err
        ? reject(
            new Error(`cannot listen for gRPC on ${formatHostPort(cfg.grpcListen)}: ${err.message}`)
          )
        : resolve(port)
    );
  });

  let metrics: MetricsServer | undefined;
  if (init.metrics ?? true) {
    try {
      metrics = await startMetrics(cfg.metricsListen.host, cfg.metricsListen.port);
      registerNodeMetrics(metrics.meter, node);
    } catch (err) {
      server.forceShutdown();
      throw new Error(
        `cannot serve metrics on ${formatHostPort(cfg.metricsListen)}: ${(err as Error).message}`
      );
    }
  }
  log.info(
    {
      grpc: `${cfg.grpcListen.host}:${grpcPort}`,
      metrics: metrics ? `${cfg.metricsListen.host}:${metrics.port}` : 'off',
      tls: Boolean(cfg.tlsCertFile),
    },
    'meshwire node started'
  );

  let closing: Promise<{ drained: boolean }> | undefined;
  const shutdown = (): Promise<{ drained: boolean }> =>
    (closing ??= (async () => {
      log.info({ in_flight: node.inFlightCount, drain_timeout_ms: cfg.drainTimeoutMs }, 'draining');
      for (const name of ['', 'messaging.v1.Messenger', 'messaging.v1.Peers']) {
        health.setStatus(name, 'NOT_SERVING');
      }
      // New calls are refused by the node while it drains; in-flight ones finish.
      const result = await node.drain();
      for (const sub of active.subscriptions) sub.close(null);
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await metrics?.shutdown();
      log.info({ drained: result.drained }, 'meshwire node stopped');
      return result;
    })());

  const grpcHost =
    cfg.grpcListen.host === '0.0.0.0'
      ? '127.0.0.1'
      : cfg.grpcListen.host === '::'
        ? '::1'
        : cfg.grpcListen.host;
  return {
    node,
    grpcPort,
    grpcAddress: formatHostPort({ host: grpcHost, port: grpcPort }),
    metricsPort: metrics?.port,
    shutdown,
    forceShutdown: () => {
      server.forceShutdown();
      void metrics?.shutdown();
    },
  };
}
